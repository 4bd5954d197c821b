"""Import ncnn .param/.bin models of the compact (SRVGGNetCompact) and RRDB families as srkit state dicts.

The .param graph is parsed and checked layer by layer against the shape of each family (layer types,
wiring through Split/Concat, fused activations, residual coefficients); anything else is refused with
the first layer that was not understood, rather than guessed. The .bin holds, for each Convolution in
.param order, a 4-byte tag (0x01306B47: fp16 weights follow, 0: fp32), the OIHW weights, then fp32 bias
with no tag; PReLU slopes are raw fp32. Keys of the result are Real-ESRGAN's / basicsr's.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelFormatError

PARAM_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
ARRAY_KEY_BASE = -23300  # ncnn writes array parameter k as key -23300 - k
INTERP_NEAREST, INTERP_BICUBIC = 1, 3
ACT_NONE, ACT_LEAKY = 0, 2
ACT_PARAMS_KEY = 10  # Convolution's fused-activation parameters (-23310 in the file)
LEAKY_SLOPE = 0.2
RESIDUAL_COEFFS = [0.2, 1.0]
# Every parameter id srkit understands per layer type, with the value it must have (None: the pattern checks
# it). Absent ids take ncnn's default, which is that value or copies a checked one (kernel_h copies kernel_w,
# pad_top pad_left, ...); any other id or value changes what the layer computes, so the graph is refused.
KNOWN_PARAMS: dict[str, dict[int, object]] = {
    "Input": {0: None, 1: None, 2: None},
    "Convolution": {0: None, 1: None, 11: 3, 2: 1, 12: 1, 3: 1, 13: 1, 4: None, 14: 1, 15: 1, 16: 1, 18: 0.0,
                    5: None, 6: None, 8: 0, 9: None, ACT_PARAMS_KEY: None, 19: 0},
    "PReLU": {0: None},
    "Interp": {0: None, 1: None, 2: None, 3: 0, 4: 0, 5: 0, 6: 0},
    "PixelShuffle": {0: None, 1: 0},
    "BinaryOp": {0: None, 1: 0},
    "Eltwise": {0: None, 1: None},
    "Concat": {0: 0},
}


@dataclass
class Layer:
    """One .param line: type, name, input and output blob names, and its k=v parameters."""

    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, object] = field(default_factory=dict)

    def param(self, key: int, default: object = 0) -> object:
        return self.params.get(key, default)


@dataclass
class ImportedModel:
    """Weights recovered from an ncnn model, and the resize its graph applies after the network."""

    state_dict: dict[str, torch.Tensor]
    arch: str
    output_resize: float | None = None
    resize_mode: str | None = None


def _value(text: str) -> object:
    return float(text) if any(ch in text for ch in ".eE") else int(text)


def read_param(path: Path) -> list[Layer]:
    """Parse a text .param file into layers."""
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFormatError(f"{path}: cannot read ncnn param file ({error})") from None
    if not lines or lines[0] != [str(PARAM_MAGIC)]:
        raise ModelFormatError(f"{path}: not an ncnn text .param file (magic number {PARAM_MAGIC} missing)")
    layers = []
    for number, tokens in enumerate(lines[2:], start=3):
        try:
            n_in, n_out = int(tokens[2]), int(tokens[3])
            params: dict[int, object] = {}
            for item in tokens[4 + n_in + n_out:]:
                key_text, value_text = item.split("=", 1)
                key = int(key_text)
                if key <= ARRAY_KEY_BASE:
                    count, *values = value_text.split(",")
                    if int(count) != len(values):
                        raise ValueError(f"array of {count} holds {len(values)} values")
                    params[ARRAY_KEY_BASE - key] = [float(v) for v in values]
                else:
                    params[key] = _value(value_text)
            layers.append(Layer(tokens[0], tokens[1], tokens[4:4 + n_in], tokens[4 + n_in:4 + n_in + n_out], params))
        except (IndexError, ValueError):
            text = " ".join(tokens)[:80]
            raise ModelFormatError(f"{path}: line {number} is not a valid ncnn layer: {text}") from None
    return layers


class _BinReader:
    """Sequential reader of an ncnn .bin file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as error:
            raise ModelFormatError(f"{path}: cannot read ncnn weights ({error})") from None
        self.offset = 0

    def _take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise ModelFormatError(f"{self.path}: ends after {len(self.data)} bytes, before all weights were read "
                                   "(truncated, or it does not belong to this .param)")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def floats(self, count: int) -> np.ndarray:
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int, layer: str) -> np.ndarray:
        (tag,) = struct.unpack("<I", self._take(4))
        if tag == TAG_FP16:
            raw = self._take((2 * count + 3) // 4 * 4)  # fp16 data is padded to 4 bytes
            return np.frombuffer(raw[:2 * count], dtype="<f2").astype(np.float32)
        if tag == TAG_FP32:
            return self.floats(count)
        raise ModelFormatError(f"{self.path}: layer {layer} has weight tag {tag:#010x}; only fp32 (0) and fp16 "
                               f"({TAG_FP16:#010x}) weights are supported (not int8-quantized models)")

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise ModelFormatError(f"{self.path}: {len(self.data) - self.offset} bytes left after the last layer "
                                   "(the .bin does not belong to this .param)")


class _Graph:
    """The layers after Split, with blob aliases resolved, consumed in order while checking the structure."""

    def __init__(self, layers: list[Layer], param_path: Path, weights: _BinReader) -> None:
        alias: dict[str, str] = {}
        self.layers = []
        for layer in layers:
            bottoms = [alias.get(b, b) for b in layer.bottoms]
            if layer.type == "Split":
                if len(bottoms) != 1 or layer.params:
                    raise ModelFormatError(f"{param_path}: graph not understood at layer {layer.name} (Split): "
                                           "expected one blob copied unchanged")
                alias.update({top: bottoms[0] for top in layer.tops})
                continue
            self.layers.append(Layer(layer.type, layer.name, bottoms, layer.tops, layer.params))
        self.position = 0
        self.path = param_path
        self.weights = weights

    def refuse(self, what: str) -> ModelFormatError:
        layer = self.layers[self.position] if self.position < len(self.layers) else None
        where = f"layer {layer.name} ({layer.type})" if layer else "the end of the graph"
        return ModelFormatError(f"{self.path}: graph not understood at {where}: expected {what}")

    def peek(self, offset: int = 0) -> Layer | None:
        index = self.position + offset
        return self.layers[index] if index < len(self.layers) else None

    def expect(self, kind: str, bottoms: list[str] | None = None, **params: object) -> Layer:
        layer = self.peek()
        if (layer is None or layer.type != kind or (bottoms is not None and layer.bottoms != bottoms)
                or any(layer.param(key) != value for key, value in _keys(params).items())  # ncnn defaults are 0
                or not _params_understood(layer)):
            raise self.refuse(f"{kind} on {bottoms or 'the previous output'} with {params or 'any parameters'}")
        self.position += 1
        return layer

    def conv(self, bottom: str, act: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        """A 3x3 stride-1 pad-1 Convolution with bias and the given fused activation; returns (top, w, b)."""
        layer = self.expect("Convolution", [bottom])
        out_channels, size = layer.param(0), layer.param(6)
        valid = isinstance(out_channels, int) and isinstance(size, int) and out_channels > 0
        in_channels = size // (out_channels * 9) if valid else 0
        if (in_channels < 1 or size != out_channels * in_channels * 9 or layer.param(1) != 3 or layer.param(4) != 1
                or layer.param(5) != 1 or layer.param(9, ACT_NONE) != act
                or (act == ACT_LEAKY and layer.param(ACT_PARAMS_KEY, [LEAKY_SLOPE]) != [LEAKY_SLOPE])):
            self.position -= 1
            raise self.refuse(f"a 3x3 stride-1 padded convolution with bias and activation {act}")
        weight = self.weights.tagged(size, layer.name).reshape(out_channels, in_channels, 3, 3)
        bias = self.weights.floats(out_channels)
        return layer.tops[0], torch.from_numpy(weight.copy()), torch.from_numpy(bias.copy())

    def done(self) -> None:
        if self.position != len(self.layers):
            raise self.refuse("the end of the graph")
        self.weights.finish()


def _params_understood(layer: Layer) -> bool:
    """True if every parameter the layer sets is one srkit reads, at the value srkit computes with."""
    known = KNOWN_PARAMS.get(layer.type, {})
    return all(key in known and known[key] in (None, value) for key, value in layer.params.items())


def _keys(params: dict[str, object]) -> dict[int, object]:
    """expect(p0=..., p1=...) keyword names to ncnn's integer parameter keys."""
    return {int(name[1:]): value for name, value in params.items()}


def _import_compact(graph: _Graph, data: str) -> ImportedModel:
    state: dict[str, torch.Tensor] = {}
    blob, index = data, 0
    while True:
        blob, state[f"body.{index}.weight"], state[f"body.{index}.bias"] = graph.conv(blob, ACT_NONE)
        nxt = graph.peek()
        if nxt is None or nxt.type != "PReLU":
            break
        prelu = graph.expect("PReLU", [blob])
        state[f"body.{index + 1}.weight"] = torch.from_numpy(graph.weights.floats(int(prelu.param(0))).copy())
        blob, index = prelu.tops[0], index + 2
    scale = round((state[f"body.{index}.weight"].shape[0] / 3) ** 0.5)
    shuffled = graph.expect("PixelShuffle", [blob], p0=scale).tops[0]
    base = graph.expect("Interp", [data], p0=INTERP_NEAREST, p1=float(scale), p2=float(scale)).tops[0]
    added = graph.expect("BinaryOp", [shuffled, base], p0=0).tops[0]
    resize = None
    if graph.peek() is not None:
        layer = graph.expect("Interp", [added], p0=INTERP_BICUBIC)
        if layer.param(1) != layer.param(2) or not 0 < float(layer.param(1)) < 1:
            graph.position -= 1
            raise graph.refuse("a uniform bicubic downscale")
        resize = float(layer.param(1))
    graph.done()
    return ImportedModel(state, "compact", resize, "bicubic" if resize else None)


def _import_rrdb(graph: _Graph, data: str) -> ImportedModel:
    state: dict[str, torch.Tensor] = {}
    feat, state["conv_first.weight"], state["conv_first.bias"] = graph.conv(data, ACT_NONE)
    x, block = feat, 0
    while graph.peek(1) is not None and graph.peek(1).type == "Concat":
        rrdb_in = x
        for r in (1, 2, 3):
            rdb_in, outputs = x, []
            for i in range(1, 6):
                bottom = rdb_in if i == 1 else graph.expect("Concat", [rdb_in, *outputs], p0=0).tops[0]
                prefix = f"body.{block}.rdb{r}.conv{i}"
                top, state[f"{prefix}.weight"], state[f"{prefix}.bias"] = graph.conv(
                    bottom, ACT_LEAKY if i < 5 else ACT_NONE)
                outputs.append(top)
            x = graph.expect("Eltwise", [outputs[-1], rdb_in], p0=1, p1=RESIDUAL_COEFFS).tops[0]
        x = graph.expect("Eltwise", [x, rrdb_in], p0=1, p1=RESIDUAL_COEFFS).tops[0]
        block += 1
    if block == 0:
        raise graph.refuse("an RRDB dense block (Convolution then Concat)")
    body, state["conv_body.weight"], state["conv_body.bias"] = graph.conv(x, ACT_NONE)
    added = graph.expect("BinaryOp", [feat, body], p0=0).tops[0]
    for name in ("conv_up1", "conv_up2"):
        up = graph.expect("Interp", [added], p0=INTERP_NEAREST, p1=2.0, p2=2.0).tops[0]
        added, state[f"{name}.weight"], state[f"{name}.bias"] = graph.conv(up, ACT_LEAKY)
    hr, state["conv_hr.weight"], state["conv_hr.bias"] = graph.conv(added, ACT_LEAKY)
    _, state["conv_last.weight"], state["conv_last.bias"] = graph.conv(hr, ACT_NONE)
    graph.done()
    return ImportedModel(state, "rrdb")


def import_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike | None = None) -> ImportedModel:
    """Read an ncnn compact or RRDB model (bin defaults to the .param's stem + .bin)."""
    param_path = Path(param_path)
    bin_path = Path(bin_path) if bin_path is not None else param_path.with_suffix(".bin")
    layers = read_param(param_path)
    graph = _Graph(layers, param_path, _BinReader(bin_path))
    data = graph.expect("Input").tops[0]
    second = graph.peek(1)
    if second is not None and second.type == "PReLU":
        return _import_compact(graph, data)
    return _import_rrdb(graph, data)
