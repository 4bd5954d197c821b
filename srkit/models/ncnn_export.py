"""ncnn export of srkit's fused architectures (compact, RRDB without input unshuffle, SPAN): a `.param` graph and
its `.bin` weights that the ncnn runtime runs, so srkit can time and use ncnn on models that did not come as ncnn
files. Weights are written as fp32 (tag 0), in the layout `ncnn_graph.py` documents; a blob read by several
layers gets ncnn's Split layer. Input blob `data`, output blob `output`, values in [0, 1] RGB in and out.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import SrkitError
from ..io.atomic import write_bytes
from . import compact, rrdb, span
from .ncnn_graph import PARAM_MAGIC

INPUT, OUTPUT = "data", "output"
ACT_RELU, ACT_LEAKY = 1, 2  # ncnn's Convolution activation_type values
OP_ADD, OP_SUB, OP_MUL = 0, 1, 2  # BinaryOp op_type values
ELTWISE_SUM = 1
NEAREST = 1  # Interp resize_type


class NcnnExportError(SrkitError):
    """The model's architecture has no ncnn form srkit writes."""


@dataclass
class _Layer:
    kind: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: list[str] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)


class _Writer:
    """Layers appended in order; `finish` inserts the Split layers ncnn needs and renders the two files."""

    def __init__(self) -> None:
        self.layers: list[_Layer] = [_Layer("Input", "input", [], [INPUT])]
        self.count = 0

    def add(
        self,
        kind: str,
        bottoms: list[str],
        params: list[str] | None = None,
        data: list[bytes] | None = None,
        top: str | None = None,
    ) -> str:
        """Append a layer reading `bottoms`; returns its output blob."""
        self.count += 1
        top = top or f"b{self.count}"
        self.layers.append(_Layer(kind, f"{kind.lower()}_{self.count}", list(bottoms), [top], params or [], data or []))
        return top

    def conv(
        self, bottom: str, conv: nn.Module | torch.Tensor, act: int = 0, slope: float = 0.0, top: str | None = None
    ) -> str:
        """A stride-1 'same' convolution with bias and an optional fused ReLU / LeakyReLU."""
        if not isinstance(conv, nn.Conv2d):
            raise NcnnExportError(f"ncnn export: expected a convolution, found {type(conv).__name__}")
        weight = conv.weight.detach().float().cpu().numpy()
        out, _, kh, kw = weight.shape
        if kh != kw or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
            raise NcnnExportError(f"ncnn export: convolution {tuple(weight.shape)} is not a square stride-1 one")
        params = [f"0={out}", f"1={kw}", f"4={kw // 2}", f"5={int(conv.bias is not None)}", f"6={weight.size}"]
        if act == ACT_RELU:
            params.append(f"9={ACT_RELU}")
        elif act == ACT_LEAKY:
            params += [f"9={ACT_LEAKY}", f"-23310=1,{slope:.9e}"]
        data = [np.uint32(0).tobytes() + weight.astype("<f4").tobytes()]
        if conv.bias is not None:
            data.append(conv.bias.detach().float().cpu().numpy().astype("<f4").tobytes())
        return self.add("Convolution", [bottom], params, data, top)

    def binary(self, op: int, a: str, b: str, top: str | None = None) -> str:
        """Elementwise a op b."""
        return self.add("BinaryOp", [a, b], [f"0={op}"], top=top)

    def scalar(self, op: int, a: str, value: float) -> str:
        """a op value."""
        return self.add("BinaryOp", [a], [f"0={op}", "1=1", f"2={value:.9e}"])

    def nearest(self, bottom: str, factor: int) -> str:
        """Nearest-neighbour upsampling by an integer factor."""
        return self.add("Interp", [bottom], [f"0={NEAREST}", f"1={float(factor):.9e}", f"2={float(factor):.9e}"])

    def finish(self) -> tuple[str, bytes]:
        """(.param text, .bin bytes), with a Split after every blob that several layers read."""
        uses = Counter(b for layer in self.layers for b in layer.bottoms)
        layers: list[_Layer] = []
        renamed: dict[str, list[str]] = {}
        for layer in self.layers:
            layer.bottoms = [renamed[b].pop(0) if b in renamed else b for b in layer.bottoms]
            layers.append(layer)
            for top in layer.tops:
                if uses[top] > 1:
                    outs = [f"{top}_s{i}" for i in range(uses[top])]
                    renamed[top] = list(outs)
                    layers.append(_Layer("Split", f"split_{top}", [top], outs))
        blobs = {t for layer in layers for t in layer.tops}
        lines = [str(PARAM_MAGIC), f"{len(layers)} {len(blobs)}"]
        for layer in layers:
            lines.append(
                " ".join(
                    [
                        layer.kind,
                        layer.name,
                        str(len(layer.bottoms)),
                        str(len(layer.tops)),
                        *layer.bottoms,
                        *layer.tops,
                        *layer.params,
                    ]
                )
            )
        return "\n".join(lines) + "\n", b"".join(d for layer in layers for d in layer.data)


def _compact(w: _Writer, module: compact.CompactSR) -> None:
    body = list(module.body)
    feat = INPUT
    for conv, activation in zip(body[0:-1:2], body[1::2]):
        if module.act == "prelu":
            slopes = torch.as_tensor(activation.weight).detach().float().cpu().numpy().astype("<f4")
            feat = w.add("PReLU", [w.conv(feat, conv)], [f"0={slopes.size}"], [slopes.tobytes()])
        else:
            feat = w.conv(feat, conv, ACT_RELU if module.act == "relu" else ACT_LEAKY, compact.LEAKY_SLOPE)
    shuffled = w.add("PixelShuffle", [w.conv(feat, body[-1])], [f"0={module.scale}"])
    w.binary(OP_ADD, shuffled, w.nearest(INPUT, module.scale), top=OUTPUT)


def _residual(w: _Writer, out: str, x: str) -> str:
    """out * RESIDUAL_SCALE + x in one Eltwise layer."""
    return w.add("Eltwise", [out, x], [f"0={ELTWISE_SUM}", f"-23301=2,{rrdb.RESIDUAL_SCALE:.9e},1.000000000e+00"])


def _dense_block(w: _Writer, block: nn.Module | torch.Tensor, x: str) -> str:
    if not isinstance(block, rrdb.DenseBlock):
        raise NcnnExportError(f"ncnn export: expected a dense block, found {type(block).__name__}")
    features = [x]
    for i in range(1, 5):
        joined = features[0] if i == 1 else w.add("Concat", features)
        out = w.conv(joined, getattr(block, f"conv{i}"), ACT_LEAKY, rrdb.LEAKY_SLOPE)
        if block.conv1x1 is not None and i in (2, 4):
            out = w.binary(OP_ADD, out, w.conv(x, block.conv1x1) if i == 2 else features[2])
        features.append(out)
    return _residual(w, w.conv(w.add("Concat", features), block.conv5), x)


def _rrdb(w: _Writer, module: rrdb.RRDBNet) -> None:
    if module.shuffle != 1:
        raise NcnnExportError(
            f"ncnn export: RRDB x{module.scale} unshuffles its input, which srkit does not write for ncnn"
        )
    first = w.conv(INPUT, module.conv_first)
    feat = first
    for group in module.body:
        inner = feat
        for block in (group.rdb1, group.rdb2, group.rdb3):
            inner = _dense_block(w, block, inner)
        feat = _residual(w, inner, feat)
    feat = w.binary(OP_ADD, first, w.conv(feat, module.conv_body))
    for i in range(1, module.upsamples + 1):
        feat = w.conv(w.nearest(feat, 2), getattr(module, f"conv_up{i}"), ACT_LEAKY, rrdb.LEAKY_SLOPE)
    feat = w.conv(feat, module.conv_hr, ACT_LEAKY, rrdb.LEAKY_SLOPE)
    w.conv(feat, module.conv_last, top=OUTPUT)


def _span(w: _Writer, module: span.SPAN) -> None:
    x = INPUT
    if module.norm:
        mean = np.asarray(span.RGB_MEAN, "<f4")
        scale = np.full(mean.size, span.IMAGE_RANGE, "<f4")
        # a 1x1 depthwise convolution: ncnn's Scale layer with a bias crashes its x86 runtime
        x = w.add(
            "ConvolutionDepthWise",
            [x],
            [f"0={mean.size}", "1=1", "5=1", f"6={mean.size}", f"7={mean.size}"],
            [np.uint32(0).tobytes() + scale.tobytes(), (-mean * scale).astype("<f4").tobytes()],
        )
    first = w.conv(x, module.conv_1.eval_conv)
    out, hidden, block_1 = first, "", ""
    for i in range(1, span.BLOCKS + 1):
        block = getattr(module, f"block_{i}")
        hidden = w.add("Swish", [w.conv(out, block.c1_r.eval_conv)])
        out3 = w.conv(w.add("Swish", [w.conv(hidden, block.c2_r.eval_conv)]), block.c3_r.eval_conv)
        gate = w.scalar(OP_SUB, w.add("Sigmoid", [out3]), 0.5)
        out = w.binary(OP_MUL, w.binary(OP_ADD, out3, out), gate)
        block_1 = block_1 or out
    joined = w.add("Concat", [first, w.conv(out, module.conv_2.eval_conv), block_1, hidden])
    head = w.conv(w.conv(joined, module.conv_cat), module.upsampler[0])
    w.add("PixelShuffle", [head], [f"0={module.scale}"], top=OUTPUT)


EXPORTERS = {compact.CompactSR: _compact, rrdb.RRDBNet: _rrdb, span.SPAN: _span}


def exportable(module: nn.Module) -> str | None:
    """Why `module` has no ncnn form, or None when export_ncnn writes one."""
    if type(module) not in EXPORTERS:
        return f"srkit writes ncnn files for compact, RRDB and SPAN networks, not {type(module).__name__}"
    if isinstance(module, rrdb.RRDBNet) and module.shuffle != 1:
        return f"RRDB x{module.scale} unshuffles its input, which srkit does not write for ncnn"
    return None


def ncnn_graph(module: nn.Module) -> tuple[str, bytes]:
    """(.param text, .bin bytes) of `module` (see the module docstring)."""
    reason = exportable(module)
    if reason:
        raise NcnnExportError(f"ncnn export: {reason}")
    writer = _Writer()
    with torch.no_grad():
        EXPORTERS[type(module)](writer, module)
    return writer.finish()


def export_ncnn(module: nn.Module, param_path: str | os.PathLike, overwrite: bool = False) -> tuple[Path, Path]:
    """Write `module` as `param_path` and the `.bin` beside it (each written whole under a temporary name, then
    renamed: the .param last, so a present .param means a complete pair)."""
    param, weights = ncnn_graph(module)
    target = Path(param_path)
    binary = write_bytes(target.with_suffix(".bin"), weights, overwrite)
    return write_bytes(target, param.encode(), overwrite), binary
