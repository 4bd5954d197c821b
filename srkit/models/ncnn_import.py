"""Import ncnn .param/.bin models: graphs of the compact (SRVGGNetCompact) and RRDB families become those
architectures' state dicts (fused plans); RealCUGAN, waifu2x and every other graph the reader accepts run as the
graph itself (`ncnn_module`), with the family's feeding rules where srkit knows the family.

The graph is read and checked by `ncnn_graph` (every parameter, the .bin sizes); here it is only matched layer by
layer against the shape of each fused family (layer types, wiring, fused activations, residual coefficients). A
graph that does not match runs as a graph, so nothing is guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .ncnn_graph import Graph, Layer, load_graph
from .registry import graph_arch

INTERP_NEAREST, INTERP_BICUBIC = 1, 3
ACT_NONE, ACT_LEAKY = 0, 2
LEAKY_SLOPE = 0.2
RESIDUAL_COEFFS = (0.2, 1.0)
CONV3X3 = dict(
    kernel_w=3,
    kernel_h=3,
    stride_w=1,
    stride_h=1,
    dilation_w=1,
    dilation_h=1,
    pad_left=1,
    pad_right=1,
    pad_top=1,
    pad_bottom=1,
    bias_term=1,
    pad_value=0.0,
)


@dataclass
class ImportedModel:
    """Weights recovered from an ncnn model, the resize its graph applies after the network, and the facts its
    architecture needs beside the weights (a graph's .param text)."""

    state_dict: dict[str, torch.Tensor]
    arch: str
    output_resize: float | None = None
    resize_mode: str | None = None
    hints: dict = field(default_factory=dict)


class _NoMatch(Exception):
    """The graph is not the fused family being matched (the graph path takes it)."""


class _Matcher:
    """The layers of a graph consumed in order while checking them against one family's structure."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.position = 0

    def peek(self, offset: int = 0) -> Layer | None:
        index = self.position + offset
        return self.graph.layers[index] if index < len(self.graph.layers) else None

    def expect(self, kind: str, bottoms: list[str] | None = None, **values: object) -> Layer:
        layer = self.peek()
        if (
            layer is None
            or layer.type != kind
            or (bottoms is not None and layer.bottoms != bottoms)
            or any(layer[name] != value for name, value in values.items())
        ):
            raise _NoMatch
        self.position += 1
        return layer

    def weights(self, layer: Layer) -> dict:
        return self.graph.weights[self.graph.layers.index(layer)]

    def conv(self, bottom: str, act: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        """A 3x3 stride-1 pad-1 Convolution with bias and the given fused activation; returns (top, w, b)."""
        layer = self.expect("Convolution", [bottom], activation_type=act, **CONV3X3)
        if act == ACT_LEAKY and tuple(layer["activation_params"]) != (LEAKY_SLOPE,):
            raise _NoMatch
        out_channels = layer["num_output"]
        data = self.weights(layer)
        weight = torch.from_numpy(data["weight"].copy()).reshape(out_channels, -1, 3, 3)
        return layer.tops[0], weight, torch.from_numpy(data["bias"].copy())

    def done(self) -> None:
        if self.position != len(self.graph.layers):
            raise _NoMatch


def _import_compact(graph: Graph) -> ImportedModel:
    match = _Matcher(graph)
    data = match.expect("Input").tops[0]
    state: dict[str, torch.Tensor] = {}
    blob, index = data, 0
    while True:
        blob, state[f"body.{index}.weight"], state[f"body.{index}.bias"] = match.conv(blob, ACT_NONE)
        nxt = match.peek()
        if nxt is None or nxt.type != "PReLU":
            break
        prelu = match.expect("PReLU", [blob])
        state[f"body.{index + 1}.weight"] = torch.from_numpy(match.weights(prelu)["slope"].copy())
        blob, index = prelu.tops[0], index + 2
    if index == 0:
        raise _NoMatch
    scale = round((state[f"body.{index}.weight"].shape[0] / 3) ** 0.5)
    shuffled = match.expect("PixelShuffle", [blob], upscale_factor=scale, mode=0).tops[0]
    base = match.expect(
        "Interp",
        [data],
        resize_type=INTERP_NEAREST,
        height_scale=float(scale),
        width_scale=float(scale),
        output_height=0,
        output_width=0,
        align_corner=0,
    ).tops[0]
    added = match.expect("BinaryOp", [shuffled, base], op_type=0, with_scalar=0).tops[0]
    resize = None
    if match.peek() is not None:
        layer = match.expect(
            "Interp", [added], resize_type=INTERP_BICUBIC, output_height=0, output_width=0, align_corner=0
        )
        if layer["height_scale"] != layer["width_scale"] or not layer["height_scale"] < 1:
            raise _NoMatch
        resize = float(layer["height_scale"])
    match.done()
    return ImportedModel(state, "compact", resize, "bicubic" if resize else None)


def _import_rrdb(graph: Graph) -> ImportedModel:
    match = _Matcher(graph)
    data = match.expect("Input").tops[0]
    state: dict[str, torch.Tensor] = {}
    feat, state["conv_first.weight"], state["conv_first.bias"] = match.conv(data, ACT_NONE)
    x, block = feat, 0
    while (following := match.peek(1)) is not None and following.type == "Concat":
        rrdb_in = x
        for r in (1, 2, 3):
            rdb_in, outputs = x, []
            for i in range(1, 6):
                bottom = rdb_in if i == 1 else match.expect("Concat", [rdb_in, *outputs], axis=0).tops[0]
                prefix = f"body.{block}.rdb{r}.conv{i}"
                top, state[f"{prefix}.weight"], state[f"{prefix}.bias"] = match.conv(
                    bottom, ACT_LEAKY if i < 5 else ACT_NONE
                )
                outputs.append(top)
            x = match.expect("Eltwise", [outputs[-1], rdb_in], op_type=1, coeffs=RESIDUAL_COEFFS).tops[0]
        x = match.expect("Eltwise", [x, rrdb_in], op_type=1, coeffs=RESIDUAL_COEFFS).tops[0]
        block += 1
    if block == 0:
        raise _NoMatch
    body, state["conv_body.weight"], state["conv_body.bias"] = match.conv(x, ACT_NONE)
    added = match.expect("BinaryOp", [feat, body], op_type=0, with_scalar=0).tops[0]
    for name in ("conv_up1", "conv_up2"):
        up = match.expect(
            "Interp",
            [added],
            resize_type=INTERP_NEAREST,
            height_scale=2.0,
            width_scale=2.0,
            output_height=0,
            output_width=0,
            align_corner=0,
        ).tops[0]
        added, state[f"{name}.weight"], state[f"{name}.bias"] = match.conv(up, ACT_LEAKY)
    hr, state["conv_hr.weight"], state["conv_hr.bias"] = match.conv(added, ACT_LEAKY)
    _, state["conv_last.weight"], state["conv_last.bias"] = match.conv(hr, ACT_NONE)
    match.done()
    return ImportedModel(state, "rrdb")


def import_graph(graph: Graph) -> ImportedModel:
    """A read graph as a fused family's state dict where it is one, else as the graph architecture's."""
    for family in (_import_compact, _import_rrdb):
        try:
            return family(graph)
        except _NoMatch:
            continue
    arch = graph_arch(graph)
    return ImportedModel(arch.state_dict_of(graph), arch.id, hints={"ncnn_param": graph.text})


def import_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike | None = None) -> ImportedModel:
    """Read an ncnn model (bin defaults to the .param's stem + .bin)."""
    return import_graph(load_graph(Path(param_path), bin_path))
