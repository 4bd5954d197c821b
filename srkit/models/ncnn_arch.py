"""ncnn graphs as an architecture: the graph module behind a feeding rule (replicate prepadding, tile alignment,
output crop, optional residual), so each call takes an image and returns it upscaled, whatever the graph crops.

`GraphArch` runs any graph the reader accepts, unfused, with what shape probes of the graph show (scale, the
border it crops, the alignment it needs); the RealCUGAN and waifu2x architectures (realcugan.py, waifu2x.py)
recognise their graphs and feed them as the upstream ncnn tools do. Weights keep the graph's layer order; the
.param text travels beside them as a hint, so an imported model re-loads from srkit safetensors.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ModelFormatError
from .arch import Arch, load_strict, parameter_count
from .info import ALL_DTYPES, ModelInfo
from .lowering import ConvStep, EagerProgram, finish
from .ncnn_graph import ACTIVATIONS, SAME_LOWER, SAME_UPPER, Graph, parse_param
from .ncnn_module import CONVOLUTIONS, NcnnGraphNet, NcnnLayer

PARAM_HINT = "ncnn_param"
PROBE_SIZE = 64  # probe inputs are this plus a few alignment steps: a multiple of every UNet depth below 2^6
ALIGNMENTS = (1, 2, 4, 8, 16, 32)
MAX_CONTEXT = 64  # tile windows take at most this context (UNets reach far, little of it matters)


@dataclass(frozen=True)
class Feed:
    """How a graph is fed: `scale`, the `border` (input pixels) it crops on each side, replicated in front of it,
    the `align`ment its input sides need (replicated at the bottom/right, then cropped), and whether its output is
    a `residual` over the nearest-upsampled input; `padding` is how the border and alignment are filled
    (the ncnn tools replicate the edge, the PyTorch originals reflect, in one pad)."""

    scale: int
    border: int
    align: int
    residual: bool = False
    padding: str = "replicate"

    def __call__(self, x: torch.Tensor, network: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """`network` fed `x` (N, C, H, W) by this rule: padded, run, cropped to H*scale x W*scale, residual added."""
        height, width = x.shape[2:]
        pads = (self.border, self.border + (-width) % self.align, self.border, self.border + (-height) % self.align)
        y = network(F.pad(x, pads, mode=self.padding))[:, :, : height * self.scale, : width * self.scale]
        if self.residual:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return y


class NcnnSR(nn.Module):
    """An image in [0, 1] (N, C, H, W) -> its upscaled image: the graph fed by its feeding rule."""

    def __init__(self, network: NcnnGraphNet, feed: Feed) -> None:
        super().__init__()
        self.network, self.feed = network, feed

    def forward(self, x: torch.Tensor, replace: dict[int, Callable] | None = None) -> torch.Tensor:
        return self.feed(x, lambda padded: self.network(padded, replace))


def receptive_radius(graph: Graph) -> int:
    """Input pixels on each side that reach one output pixel through the graph's windows (global pooling, whose
    reach is the whole tile, left out)."""
    reach: dict[str, tuple[float, float]] = {graph.input: (1.0, 0.0)}  # blob -> (input px per px, radius)
    for layer in graph.layers:
        if layer.type == "Input" or layer.type == "MemoryData":
            reach[layer.tops[0]] = (1.0, 0.0)
            continue
        step = min(reach[b][0] for b in layer.bottoms)
        radius = max(reach[b][1] for b in layer.bottoms)
        v = layer.values
        if layer.type in CONVOLUTIONS or (layer.type == "Pooling" and not v["global_pooling"]):
            extent = (v["kernel_w"] - 1) * v.get("dilation_w", 1)
            if layer.type == "Deconvolution":
                step /= v["stride_w"]
                radius += math.ceil(extent / v["stride_w"]) * step * v["stride_w"]
            else:
                radius += extent * step
                step *= v["stride_w"]
        elif layer.type == "Interp":
            step /= v["width_scale"] if not v["output_width"] else 1.0
            radius += 2 * step
        elif layer.type == "PixelShuffle":
            step /= v["upscale_factor"]
        reach[layer.tops[0]] = (step, radius)
    return math.ceil(reach[graph.output][1])


def _probe(network: NcnnGraphNet, channels: int, source: str) -> Feed:
    """Scale, border and alignment of a graph from its output sizes at a few input sizes."""
    shapes = copy.deepcopy(network).to("meta")  # shapes only: no arithmetic, the weights stay where they are
    with torch.no_grad():
        for align in ALIGNMENTS:
            sizes = [PROBE_SIZE + step * align for step in (1, 2, 3)]
            try:
                outs = [shapes(torch.zeros(1, channels, size, size, device="meta")).shape for size in sizes]
            except (RuntimeError, ValueError, IndexError):
                continue
            if any(len(out) != 4 or out[2] != out[3] for out in outs):
                continue
            scale, rest = divmod(outs[1][2] - outs[0][2], align)
            border, odd = divmod(scale * sizes[0] - outs[0][2], 2 * scale) if scale > 0 else (-1, 1)
            if rest == 0 and odd == 0 and border >= 0 and outs[2][2] == scale * (sizes[2] - 2 * border):
                return Feed(scale, border, align)
    raise ModelFormatError(
        f"{source}: the graph's output size does not follow its input size as an image "
        "upscaler's does (an integer scale, a fixed border)"
    )


def fused_conv(layer: NcnnLayer, device: torch.device) -> Callable | None:
    """A stride-1 3x3 or 1x1 Convolution with no, relu or leaky_relu activation as a call of srkit's fused conv
    kernel (an unpadded 3x3 runs padded, its one-pixel rim cropped); None for any other layer."""
    if layer.kind != "Convolution":
        return None
    v = layer.values
    kernel, act = v["kernel_w"], ACTIVATIONS.get(v["activation_type"])
    pads = {v[side] for side in ("pad_left", "pad_right", "pad_top", "pad_bottom")}
    if (
        kernel not in (1, 3)
        or v["kernel_h"] != kernel
        or v["pad_value"] != 0
        or {v["stride_w"], v["stride_h"], v["dilation_w"], v["dilation_h"]} != {1}
        or act not in ("none", "relu", "leaky_relu")
        or len(pads) != 1
    ):
        return None
    pad = pads.pop()
    if pad in (SAME_UPPER, SAME_LOWER):
        pad = kernel // 2
    if pad not in (0, kernel // 2):
        return None
    slope = v["activation_params"][0] if act == "leaky_relu" else 0.2
    bias = layer.bias.detach().float().to(device) if hasattr(layer, "bias") else None
    run = cropped(ConvStep(layer.weight.detach().float().to(device), bias, act, slope), kernel // 2 - pad)
    return lambda inputs: run(inputs[0])


def cropped(step: ConvStep, rim: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """`step` (a 'same'-padded fused conv) run on a map, `rim` pixels cropped from each side of its result: an
    unpadded ('valid') convolution when `rim` is kernel // 2."""

    def run(x: torch.Tensor) -> torch.Tensor:
        y = step(x.contiguous(memory_format=torch.channels_last))
        return y[:, :, rim : y.shape[2] - rim, rim : y.shape[3] - rim] if rim else y

    return run


class ReplacingProgram(EagerProgram):
    """A module whose forward takes `replace` (its layers -> calls of srkit's fused kernels), run with those layers
    replaced and the rest as torch ops."""

    def __init__(self, module: nn.Module, info: ModelInfo, device: torch.device, replace: dict) -> None:
        super().__init__(module, info, device)
        self.replace = replace

    def forward(self, x, clamp, out_dtype):
        self.module.to(x.dtype)
        y = self.module(x, self.replace)
        return finish(y.contiguous(memory_format=torch.channels_last), clamp, out_dtype)


class GraphArch(Arch):
    """Any ncnn graph srkit's reader accepts, run unfused, fed as its shape probes show."""

    id = "ncnn"
    name = "ncnn graph (not fused)"
    max_context = MAX_CONTEXT
    layouts = ()
    fused = False
    """Whether its plan puts the stride-1 3x3/1x1 convolutions on srkit's fused kernels."""

    def detect(self, state_dict):
        """Graph weights mean nothing without their .param: never detected from keys."""
        return False

    def matches(self, graph: Graph) -> bool:
        """True if this architecture recognises `graph` (the generic one takes every graph)."""
        return True

    def feed(self, graph: Graph, probed: Feed) -> Feed:
        """How to feed `graph`, given what probing it showed."""
        return probed

    def variant(self, graph: Graph, feed: Feed) -> str:
        """What `srkit models info` calls this graph."""
        return f"ncnn graph, {len(graph.layers)} layers, border {feed.border}"

    def state_dict_of(self, graph: Graph) -> dict[str, torch.Tensor]:
        """The weights of `graph` as this architecture's module holds them."""
        return {f"network.{key}": value for key, value in NcnnGraphNet(graph).state_dict().items()}

    def load(self, state_dict, hints):
        if PARAM_HINT not in hints:
            raise ValueError("the ncnn graph (.param text) is missing from the model's metadata")
        graph = parse_param(hints[PARAM_HINT], hints.get("source", "ncnn graph"))
        network = NcnnGraphNet(graph, with_weights=False)
        load_strict(network, {key.removeprefix("network."): value for key, value in state_dict.items()})
        channels = next((layer["c"] for layer in graph.layers if layer.type == "Input"), 0) or 3
        feed = self.feed(graph, _probe(network, channels, hints.get("source", "ncnn graph")))
        module = NcnnSR(network, feed).eval()
        convs = [layer for layer in graph.layers if layer.type in CONVOLUTIONS]
        radius = receptive_radius(graph)
        info = ModelInfo(
            self.id,
            feed.scale,
            channels,
            channels,
            max((c["num_output"] for c in convs), default=0),
            len(convs),
            parameter_count(module),
            variant=self.variant(graph, feed),
            dtypes=ALL_DTYPES,
            receptive_radius=radius,
            fused=self.fused,
        )
        return module, info

    def hints(self, module):
        return {PARAM_HINT: cast(NcnnSR, module).network.text}  # this arch's load built it

    def lower(self, module, info, device):
        layers = cast(NcnnSR, module).network.layers  # this arch's load built it, of NcnnLayers
        found = {index: fused_conv(cast(NcnnLayer, layer), device) for index, layer in enumerate(layers)}
        return ReplacingProgram(module, info, device, {index: run for index, run in found.items() if run is not None})


ARCH = GraphArch()
