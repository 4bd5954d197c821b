"""Any checked ncnn graph (`ncnn_graph.Graph`) as a torch module computing what ncnn computes, layer by layer.

Blobs carry a batch axis in front of ncnn's own: a 3-D ncnn Mat (c, h, w) is an (N, C, H, W) tensor, a 1-D one (w)
is (N, W), a 2-D one (h, w) is (N, H, W). Weights are parameters named `layers.<index>.<blob>` in the torch
layout of the op (convolution OIHW, deconvolution IOHW), so a state dict round-trips through srkit's safetensors
with the .param text beside it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ncnn_graph import SAME_LOWER, WHOLE, Graph, Layer, blobs_of

CONVOLUTIONS = ("Convolution", "ConvolutionDepthWise", "Deconvolution")


def _activation(x: torch.Tensor, kind: int, params: tuple) -> torch.Tensor:
    """ncnn's fused activation `kind` (activation_type) with its parameters."""
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        return F.leaky_relu(x, params[0])
    if kind == 3:
        return x.clamp(params[0], params[1])
    if kind == 4:
        return torch.sigmoid(x)
    if kind == 5:
        return F.mish(x)
    if kind == 6:
        return x * (x * params[0] + params[1]).clamp(0.0, 1.0)
    return x


def _same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    """(before, after) of ncnn's SAME padding along one axis (-233 upper, -234 lower)."""
    total = max(dilation * (kernel - 1) + 1 + (size - 1) // stride * stride - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


def _spatial(x: torch.Tensor) -> torch.Tensor:
    """A (N, K) vector as (N, K, 1, 1) and an (N, H, W) plane as (N, 1, H, W), to broadcast against maps."""
    return x[:, :, None, None] if x.dim() == 2 else x[:, None] if x.dim() == 3 else x


def _broadcast(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Operands shaped for torch broadcasting as ncnn broadcasts them (a vector runs along channels)."""
    if a.dim() == b.dim():
        return a, b
    return (a, _spatial(b)) if a.dim() > b.dim() else (_spatial(a), b)


BINARY = {
    0: torch.add,
    1: torch.sub,
    2: torch.mul,
    3: torch.div,
    4: torch.maximum,
    5: torch.minimum,
    6: torch.pow,
    7: lambda a, b: b - a,
    8: lambda a, b: b / a,
    9: lambda a, b: torch.pow(b, a),
    10: torch.atan2,
    11: lambda a, b: torch.atan2(b, a),
}
REDUCE = {  # Reduction's operation -> f(x, dims, keepdim)
    0: lambda x, d, k: x.sum(d, keepdim=k),
    1: lambda x, d, k: x.abs().sum(d, keepdim=k),
    2: lambda x, d, k: (x * x).sum(d, keepdim=k),
    3: lambda x, d, k: x.mean(d, keepdim=k),
    4: lambda x, d, k: x.amax(d, keepdim=k),
    5: lambda x, d, k: x.amin(d, keepdim=k),
    6: lambda x, d, k: _prod(x, d, k),
}


def _prod(x: torch.Tensor, dims: tuple[int, ...], keep: bool) -> torch.Tensor:
    """The product over several dimensions (torch's prod takes one)."""
    for dim in sorted(dims, reverse=True):
        x = x.prod(dim, keepdim=keep)
    return x


def _axis(axis: int, x: torch.Tensor) -> int:
    """The tensor dimension of ncnn axis `axis` (negative counts from the end) of blob `x`."""
    rank = x.dim() - 1
    return (axis + rank if axis < 0 else axis) + 1


class NcnnLayer(nn.Module):
    """One ncnn layer: its parameters (by name), its weights as torch parameters, and its computation."""

    # The torch parameters registered from the layer's blobs (blobs_of); which of them exist depends on its type.
    weight: torch.Tensor
    bias: torch.Tensor
    slope: torch.Tensor
    scale: torch.Tensor
    data: torch.Tensor

    def __init__(self, layer: Layer, weights: dict | None) -> None:
        super().__init__()
        self.kind, self.values = layer.type, dict(layer.values)
        for blob in blobs_of(layer):
            shape = self._shape(blob.name, blob.count)
            if weights is None:
                data = torch.zeros(shape)
            elif blob.name == "weight" and self.kind == "Deconvolution":  # stored (out, in, kh, kw)
                data = torch.from_numpy(weights[blob.name]).reshape(shape[1], shape[0], *shape[2:]).transpose(0, 1)
            else:
                data = torch.from_numpy(weights[blob.name]).reshape(shape)
            self.register_parameter(blob.name, nn.Parameter(data.contiguous().clone(), requires_grad=False))

    def _shape(self, name: str, count: int) -> tuple[int, ...]:
        v = self.values
        if name != "weight" or self.kind == "InnerProduct":
            return (v["num_output"], count // v["num_output"]) if name == "weight" else (count,)
        kh, kw, out, group = v["kernel_h"], v["kernel_w"], v["num_output"], v.get("group", 1)
        inputs = count // (out // group * kh * kw)
        return (inputs, out, kh, kw) if self.kind == "Deconvolution" else (out, inputs // group, kh, kw)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return getattr(self, f"_run_{self.kind}")(inputs)

    def _bias(self) -> torch.Tensor | None:
        return getattr(self, "bias", None)

    def _run_Convolution(self, inputs):
        v, x = self.values, inputs[0]
        k, s, d = (v["kernel_h"], v["kernel_w"]), (v["stride_h"], v["stride_w"]), (v["dilation_h"], v["dilation_w"])
        if v["pad_left"] < 0:
            lower = v["pad_left"] == SAME_LOWER
            top, bottom = _same_pads(x.shape[2], k[0], s[0], d[0], lower)
            left, right = _same_pads(x.shape[3], k[1], s[1], d[1], lower)
        else:
            top, bottom, left, right = v["pad_top"], v["pad_bottom"], v["pad_left"], v["pad_right"]
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=v["pad_value"])
        group = x.shape[1] // self.weight.shape[1]
        y = F.conv2d(x, self.weight, self._bias(), s, 0, d, group)
        return _activation(y, v["activation_type"], v["activation_params"])

    _run_ConvolutionDepthWise = _run_Convolution

    def _run_Deconvolution(self, inputs):
        v = self.values
        s, d = (v["stride_h"], v["stride_w"]), (v["dilation_h"], v["dilation_w"])
        y = F.conv_transpose2d(inputs[0], self.weight, None, s, 0, 0, 1, d)
        y = F.pad(y, (0, v["output_pad_right"], 0, v["output_pad_bottom"]))
        if self._bias() is not None:
            y = y + self.bias[:, None, None]
        y = y[:, :, v["pad_top"] : -v["pad_bottom"] or None, v["pad_left"] : -v["pad_right"] or None]
        return _activation(y, v["activation_type"], v["activation_params"])

    def _run_InnerProduct(self, inputs):
        v = self.values
        y = F.linear(inputs[0].flatten(1), self.weight, self._bias())
        return _activation(y, v["activation_type"], v["activation_params"])

    def _run_ReLU(self, inputs):
        slope = self.values["slope"]
        return F.leaky_relu(inputs[0], slope) if slope else F.relu(inputs[0])

    def _run_PReLU(self, inputs):
        x = inputs[0]
        slope = self.slope if self.slope.numel() > 1 else self.slope.reshape(())
        return torch.where(x >= 0, x, x * (_spatial(slope[None]) if slope.dim() else slope))

    def _run_Sigmoid(self, inputs):
        return torch.sigmoid(inputs[0])

    def _run_Swish(self, inputs):
        return inputs[0] * torch.sigmoid(inputs[0])

    def _run_Clip(self, inputs):
        return inputs[0].clamp(self.values["min"], self.values["max"])

    def _run_Eltwise(self, inputs):
        v = self.values
        if v["op_type"] == 0:
            out = inputs[0]
            for x in inputs[1:]:
                out = out * x
            return out
        if v["op_type"] == 2:
            out = inputs[0]
            for x in inputs[1:]:
                out = torch.maximum(out, x)
            return out
        coeffs = v["coeffs"] or (1.0,) * len(inputs)
        out = inputs[0] * coeffs[0] if coeffs[0] != 1.0 else inputs[0]
        for x, c in zip(inputs[1:], coeffs[1:]):
            out = out + (x * c if c != 1.0 else x)
        return out

    def _run_BinaryOp(self, inputs):
        v = self.values
        a = inputs[0]
        b = torch.tensor(v["b"], dtype=a.dtype, device=a.device) if v["with_scalar"] else inputs[1]
        return BINARY[v["op_type"]](*_broadcast(a, b))

    def _run_Scale(self, inputs):
        scale = inputs[1] if self.values["scale_data_size"] == WHOLE else self.scale[None]
        y = inputs[0] * _spatial(scale)
        return y + _spatial(self.bias[None]) if self._bias() is not None else y

    def _run_Concat(self, inputs):
        return torch.cat(inputs, _axis(self.values["axis"], inputs[0]))

    def _run_Crop(self, inputs):
        """Slices from the parameters alone (Python slicing clamps as ncnn does), so traced exports stay dynamic."""
        v, x = self.values, inputs[0]
        window = [slice(None)] * x.dim()
        if v["axes"]:
            for axis, start, end in zip(v["axes"], v["starts"], v["ends"]):
                window[_axis(axis, x)] = slice(start, end)
            return x[tuple(window)]
        offsets = [
            (v["coffset"], v["coffset2"], v["outc"]),
            (v["hoffset"], v["hoffset2"], v["outh"]),
            (v["woffset"], v["woffset2"], v["outw"]),
        ][-(x.dim() - 1) :]
        reference = inputs[1] if len(inputs) == 2 else None
        for position, (offset, offset2, out) in enumerate(offsets):
            ref_dim = reference.dim() - len(offsets) + position if reference is not None else 0
            if reference is not None and ref_dim >= 1:
                window[position + 1] = slice(offset, offset + reference.shape[ref_dim])
            elif reference is not None or out == WHOLE:
                window[position + 1] = slice(offset, None)
            elif out == 0:
                window[position + 1] = slice(offset, -offset2 or None)
            else:
                window[position + 1] = slice(offset, offset + out)
        return x[tuple(window)]

    def _run_Interp(self, inputs):
        v, x = self.values, inputs[0]
        mode = ("nearest", "bilinear", "bicubic")[v["resize_type"] - 1]
        corners = None if mode == "nearest" else bool(v["align_corner"])
        if v["output_height"] or v["output_width"]:
            size = (v["output_height"] or x.shape[2], v["output_width"] or x.shape[3])
            y = F.interpolate(x, size=size, mode=mode, align_corners=corners)
        else:  # ncnn samples at 1 / factor, as torch does when given the factor
            y = F.interpolate(x, scale_factor=(v["height_scale"], v["width_scale"]), mode=mode, align_corners=corners)
        return y

    def _run_PixelShuffle(self, inputs):
        v, x = self.values, inputs[0]
        r = v["upscale_factor"]
        if v["mode"] == 0:
            return F.pixel_shuffle(x, r)
        n, c, h, w = x.shape
        return x.reshape(n, r, r, c // (r * r), h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c // (r * r), h * r, w * r)

    def _run_Pooling(self, inputs):
        v, x = self.values, inputs[0]
        if v["global_pooling"]:
            return x.amax((2, 3)) if v["pooling_type"] == 0 else x.mean((2, 3))
        k, s = (v["kernel_h"], v["kernel_w"]), (v["stride_h"], v["stride_w"])
        top, bottom, left, right = v["pad_top"], v["pad_bottom"], v["pad_left"], v["pad_right"]
        if v["pad_mode"] == 0:  # full padding: extra pixels at the end so the last window fits
            bottom += (s[0] - (x.shape[2] + top + bottom - k[0]) % s[0]) % s[0]
            right += (s[1] - (x.shape[3] + left + right - k[1]) % s[1]) % s[1]
        if v["pooling_type"] == 0:
            padded = F.pad(x, (left, right, top, bottom), value=float("-inf"))
            return F.max_pool2d(padded, k, s)
        padded = F.pad(x, (left, right, top, bottom))
        total = F.avg_pool2d(padded, k, s, divisor_override=1)
        if v["avgpool_count_include_pad"]:
            return total / (k[0] * k[1])
        ones = F.pad(torch.ones_like(x[:, :1]), (left, right, top, bottom))
        return total / F.avg_pool2d(ones, k, s, divisor_override=1)

    def _run_Reduction(self, inputs):
        v, x = self.values, inputs[0]
        dims = (
            tuple(range(1, x.dim()))
            if v["reduce_all"] or not v["axes"]
            else tuple(sorted({_axis(a, x) for a in v["axes"]}))
        )
        y = REDUCE[v["operation"]](x, dims, bool(v["keepdims"]))
        if y.dim() == 1:
            y = y[:, None]
        return y * v["coeff"] if v["coeff"] != 1.0 else y

    def _run_Padding(self, inputs):
        v = self.values
        mode = ("constant", "replicate", "reflect")[v["type"]]
        pads = (v["left"], v["right"], v["top"], v["bottom"])
        return (
            F.pad(inputs[0], pads, mode=mode, value=v["value"])
            if mode == "constant"
            else F.pad(inputs[0], pads, mode=mode)
        )

    def _run_MemoryData(self, inputs):
        v = self.values
        shape = [s for s in (v["c"], v["h"]) if s] + [v["w"]]
        return self.data.reshape(1, *shape)


class NcnnGraphNet(nn.Module):
    """The whole graph: forward(x) runs every layer in .param order on named blobs and returns the output blob."""

    def __init__(self, graph: Graph, with_weights: bool = True) -> None:
        super().__init__()
        self.text = graph.text
        self.input, self.output = graph.input, graph.output
        self.wiring = [(layer.bottoms, layer.tops[0]) for layer in graph.layers if layer.type != "Input"]
        self.layers = nn.ModuleList(
            NcnnLayer(layer, graph.weights.get(index) if with_weights else None)
            for index, layer in enumerate(graph.layers)
            if layer.type != "Input"
        )

    def forward(self, x: torch.Tensor, replace: dict[int, Callable] | None = None) -> torch.Tensor:
        """The output blob for input `x`; `replace` maps layer indices to callables run in their place (a plan's
        fused convolutions)."""
        blobs = {self.input: x}
        replace = replace or {}
        for index, (layer, (bottoms, top)) in enumerate(zip(self.layers, self.wiring)):
            blobs[top] = replace.get(index, layer)([blobs[name] for name in bottoms])
        return blobs[self.output]
