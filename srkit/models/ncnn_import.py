"""Import Real-ESRGAN networks from ncnn .param/.bin pairs as srkit (Real-ESRGAN / basicsr-keyed) state dicts.

The .param text becomes a small typed graph. The graph is then matched layer by layer, with its wiring,
activations and coefficients, against the two shapes Real-ESRGAN's ncnn exports take: SRVGGNetCompact
(`compact`) and RRDBNet (`rrdb`), each optionally followed by a bicubic resize (the animevideov3 x2/x3
files). Anything else is refused with a ModelFormatError naming the file and the first layer not understood.
Only then is the .bin read, in .param order, and checked to be consumed exactly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelFormatError
from . import compact, rrdb

MAGIC = 7767517
ARRAY_KEY_BASE = -23300  # a key k <= this holds an array for parameter id (-k - 23300)
FP16_TAG = 0x01306B47
FP32_TAG = 0
LEAKY_SLOPE = 0.2
RESIDUAL_SCALE = 0.2
NEAREST, BICUBIC = 1, 3  # Interp 0=resize_type
RESIZE_MODES = {BICUBIC: "bicubic"}
ACTIVATION_NONE, ACTIVATION_LEAKY = 0, 2  # Convolution 9=activation_type
INHERITED = object()  # default of a parameter that copies an earlier one (kernel_h copies kernel_w, ...)

ParamValue = int | float | tuple[int | float, ...]

# Per layer type: parameter id -> (name, the only value srkit reads, ncnn's default when absent).
FIXED_PARAMS: dict[str, dict[int, tuple[str, object, object]]] = {
    "Convolution": {1: ("kernel_w", 3, 0), 11: ("kernel_h", 3, INHERITED), 2: ("dilation_w", 1, 1),
                    12: ("dilation_h", 1, INHERITED), 3: ("stride_w", 1, 1), 13: ("stride_h", 1, INHERITED),
                    4: ("pad_left", 1, 0), 14: ("pad_top", 1, INHERITED), 15: ("pad_right", 1, INHERITED),
                    16: ("pad_bottom", 1, INHERITED), 18: ("pad_value", 0, 0), 5: ("bias_term", 1, 0),
                    8: ("int8_scale_term", 0, 0), 19: ("dynamic_weight", 0, 0)},
    "Interp": {3: ("output_height", 0, 0), 4: ("output_width", 0, 0), 5: ("dynamic_target_size", 0, 0),
               6: ("align_corner", 0, 0)},
    "PixelShuffle": {1: ("mode", 0, 0)},
    "BinaryOp": {0: ("op_type", 0, 0), 1: ("with_scalar", 0, 0)},
    "Eltwise": {0: ("op_type", 1, 0)},
    "Concat": {0: ("axis", 0, 0)},
}
# Parameters whose values the pattern checks itself (counts, factors, activations, coefficients).
FREE_PARAMS: dict[str, frozenset[int]] = {
    "Input": frozenset({0, 1, 2}), "Convolution": frozenset({0, 6, 9, 10}), "PReLU": frozenset({0}),
    "Interp": frozenset({0, 1, 2}), "PixelShuffle": frozenset({0}), "Eltwise": frozenset({1}),
}


@dataclass(frozen=True)
class Layer:
    """One .param line: layer type and name, input and output blob names, `id=value` parameters."""

    type: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict[int, ParamValue] = field(hash=False)


@dataclass(frozen=True)
class Graph:
    """A parsed .param file: its path (for messages) and its layers in file order."""

    path: Path
    layers: tuple[Layer, ...]


@dataclass
class ImportedModel:
    """What an ncnn pair holds, in srkit terms."""

    state_dict: dict[str, torch.Tensor]
    """float32 weights under Real-ESRGAN (compact) or basicsr (rrdb) key names."""
    arch: str
    """'compact' or 'rrdb'."""
    output_resize: float | None = None
    """Factor of a resize the graph applies after the network (0.5 / 0.75 for animevideov3 x2 / x3), or None."""
    resize_mode: str | None = None
    """Interpolation of that resize ('bicubic': torch's align_corners=False, A=-0.75, no antialias)."""


def _number(text: str) -> int | float:
    """An ncnn parameter value: a float where it has '.', 'e' or 'E', else an int."""
    return float(text) if any(c in text for c in ".eE") else int(text)


def _parse_params(path: Path, line_no: int, items: list[str]) -> dict[int, ParamValue]:
    """`k=v` items of one layer line; keys <= -23300 hold `count,v1,...,vcount` arrays."""
    params: dict[int, ParamValue] = {}
    for item in items:
        key_text, sep, value_text = item.partition("=")
        try:
            key = int(key_text)
            if key > ARRAY_KEY_BASE:
                params[key] = _number(value_text)
                continue
            count, *values = value_text.split(",")
            if not sep or int(count) != len(values):
                raise ValueError
            params[ARRAY_KEY_BASE - key] = tuple(_number(v) for v in values)
        except ValueError:
            raise ModelFormatError(f"{path}: line {line_no}: parameter {item!r} is not `id=value` "
                                   "or `-233xx=count,values`") from None
    return params


def _parse_layer(path: Path, line_no: int, line: str) -> Layer:
    """One layer line: type, name, bottom and top counts, blob names, parameters."""
    fields = line.split()
    try:
        kind, name, n_bottom, n_top = fields[0], fields[1], int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        raise ModelFormatError(f"{path}: line {line_no} is not `type name bottoms tops ...`") from None
    blobs = fields[4:4 + n_bottom + n_top]
    if n_bottom < 0 or n_top < 0 or len(blobs) != n_bottom + n_top:
        raise ModelFormatError(f"{path}: line {line_no}: layer {name} lists fewer blobs than it declares")
    params = _parse_params(path, line_no, fields[4 + n_bottom + n_top:])
    return Layer(kind, name, tuple(blobs[:n_bottom]), tuple(blobs[n_bottom:]), params)


def parse_param(path: str | os.PathLike) -> Graph:
    """Parse an ncnn .param text file; checks the magic number, the counts and that blobs are well formed."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFormatError(f"{path}: cannot read it as an ncnn .param text file ({error})") from None
    if not lines or lines[0].strip() != str(MAGIC):
        raise ModelFormatError(f"{path}: not an ncnn .param file (first line must be the magic {MAGIC})")
    try:
        layer_count, blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise ModelFormatError(f"{path}: line 2 must hold the layer and blob counts") from None
    layers = tuple(_parse_layer(path, i + 3, line) for i, line in enumerate(lines[2:]) if line.strip())
    if len(layers) != layer_count:
        raise ModelFormatError(f"{path}: declares {layer_count} layers but holds {len(layers)}")
    _check_blobs(path, layers, blob_count)
    return Graph(path, layers)


def _check_blobs(path: Path, layers: tuple[Layer, ...], blob_count: int) -> None:
    """Every blob is produced once, before it is read, and the blob count matches."""
    produced: set[str] = set()
    for layer in layers:
        missing = next((b for b in layer.bottoms if b not in produced), None)
        if missing is not None:
            raise ModelFormatError(f"{path}: layer {layer.name} reads blob {missing!r} before any layer makes it")
        twice = next((t for t in layer.tops if t in produced), None)
        if twice is not None:
            raise ModelFormatError(f"{path}: blob {twice!r} is produced twice (again by layer {layer.name})")
        produced.update(layer.tops)
    if len(produced) != blob_count:
        raise ModelFormatError(f"{path}: declares {blob_count} blobs but its layers make {len(produced)}")


class _Matcher:
    """Walks a graph's layers in order against a pattern; Split layers only give blobs more names."""

    def __init__(self, graph: Graph) -> None:
        self.path = graph.path
        self.alias: dict[str, str] = {}
        self.layers: list[Layer] = []
        for layer in graph.layers:
            if layer.type != "Split":
                self.layers.append(layer)
            elif len(layer.bottoms) != 1 or layer.params:
                self.refuse(layer, "is a Split that is not one blob copied unchanged")
            else:
                self.alias.update((top, self.source(layer.bottoms[0])) for top in layer.tops)
        self.position = 0
        self.channels: dict[str, int] = {}
        self.weighted: list[tuple[Layer, str]] = []
        """Convolution and PReLU layers in file order, with the state-dict key prefix each one fills."""

    def refuse(self, layer: Layer, reason: str) -> None:
        """Stop: `layer` is the first one that does not fit the pattern."""
        raise ModelFormatError(f"{self.path}: layer {layer.name} ({layer.type}) {reason}; srkit imports "
                               "Real-ESRGAN SRVGGNetCompact and RRDBNet graphs only")

    def source(self, blob: str) -> str:
        """The blob a Split-made name copies (itself when it is no copy)."""
        return self.alias.get(blob, blob)

    def peek(self) -> Layer | None:
        """The next unmatched layer, or None at the end."""
        return self.layers[self.position] if self.position < len(self.layers) else None

    def done(self) -> bool:
        """True when every layer has been matched."""
        return self.peek() is None

    def take(self, kind: str, bottoms: tuple[str, ...], ordered: bool = True) -> Layer:
        """Match the next layer: its type, fixed parameters, inputs (as canonical blobs) and single output."""
        layer = self.peek()
        if layer is None:
            last = self.layers[-1]
            raise ModelFormatError(f"{self.path}: the graph ends after layer {last.name} where a {kind} layer "
                                   "belongs; srkit imports Real-ESRGAN SRVGGNetCompact and RRDBNet graphs only")
        if layer.type != kind:
            self.refuse(layer, f"is not understood here (a {kind} layer belongs there)")
        got = [self.source(b) for b in layer.bottoms]
        if (got != list(bottoms)) if ordered else (sorted(got) != sorted(bottoms)):
            self.refuse(layer, f"reads {', '.join(got) or 'nothing'} where the pattern reads "
                               f"{', '.join(bottoms) or 'nothing'}")
        if len(layer.tops) != 1:
            self.refuse(layer, f"has {len(layer.tops)} outputs, not 1")
        self._check_params(layer)
        self.position += 1
        return layer

    def _check_params(self, layer: Layer) -> None:
        fixed, free = FIXED_PARAMS.get(layer.type, {}), FREE_PARAMS.get(layer.type, frozenset())
        unknown = next((k for k in layer.params if k not in fixed and k not in free), None)
        if unknown is not None:
            self.refuse(layer, f"has parameter {unknown}={layer.params[unknown]}, which srkit does not read")
        for key, (name, wanted, default) in fixed.items():
            value = layer.params.get(key, wanted if default is INHERITED else default)
            if value != wanted:
                self.refuse(layer, f"has {name}={value} (srkit reads {name}={wanted} only)")

    def param(self, layer: Layer, key: int, default: ParamValue) -> ParamValue:
        """A parameter that the pattern checks itself."""
        return layer.params.get(key, default)

    def input(self) -> str:
        """The Input layer; returns its blob."""
        layer = self.take("Input", ())
        return layer.tops[0]

    def conv(self, bottom: str, activation: int, key: str) -> str:
        """A 3x3 convolution with bias reading `bottom`, with no or leaky-0.2 activation; returns its blob."""
        layer = self.take("Convolution", (bottom,))
        out_channels = self.param(layer, 0, 0)
        size = self.param(layer, 6, 0)
        in_channels = self.channels.get(bottom, size // max(out_channels, 1) // 9)
        if not isinstance(out_channels, int) or out_channels < 1 or size != out_channels * in_channels * 9:
            self.refuse(layer, f"has weight_data_size={size}, not num_output x {in_channels} inputs x 3 x 3")
        act, act_params = self.param(layer, 9, ACTIVATION_NONE), self.param(layer, 10, ())
        wanted = (ACTIVATION_LEAKY, (LEAKY_SLOPE,)) if activation == ACTIVATION_LEAKY else (ACTIVATION_NONE, ())
        if act != wanted[0] or not _close(act_params, wanted[1]):
            self.refuse(layer, f"has activation {act} {act_params} where the pattern has {wanted[0]} {wanted[1]}")
        self.channels.setdefault(bottom, in_channels)
        return self._made(layer, out_channels, key)

    def _made(self, layer: Layer, channels: int, key: str | None = None) -> str:
        top = layer.tops[0]
        self.channels[top] = channels
        if key is not None:
            self.weighted.append((layer, key))
        return top

    def prelu(self, bottom: str, key: str) -> str:
        """A PReLU with one slope per channel of `bottom`."""
        layer = self.take("PReLU", (bottom,))
        if self.param(layer, 0, 0) != self.channels[bottom]:
            self.refuse(layer, f"has {self.param(layer, 0, 0)} slopes for {self.channels[bottom]} channels")
        return self._made(layer, self.channels[bottom], key)

    def interp(self, bottom: str, mode: int) -> tuple[str, float]:
        """An Interp of `mode` with one factor for both axes; returns its blob and the factor."""
        layer = self.take("Interp", (bottom,))
        kind, fy, fx = self.param(layer, 0, 0), self.param(layer, 1, 1.0), self.param(layer, 2, 1.0)
        if kind != mode or fy != fx or not isinstance(fx, (int, float)) or fx <= 0:
            self.refuse(layer, f"resizes with type {kind} by {fy} x {fx} where the pattern has type {mode}, "
                               "one positive factor")
        return self._made(layer, self.channels[bottom]), float(fx)

    def pixel_shuffle(self, bottom: str) -> tuple[str, int]:
        """PyTorch-order PixelShuffle; returns its blob and factor."""
        layer = self.take("PixelShuffle", (bottom,))
        factor = self.param(layer, 0, 1)
        if not isinstance(factor, int) or factor < 1 or self.channels[bottom] % (factor * factor):
            self.refuse(layer, f"shuffles {self.channels[bottom]} channels by {factor}")
        return self._made(layer, self.channels[bottom] // (factor * factor)), factor

    def add(self, a: str, b: str) -> str:
        """BinaryOp add of two same-shaped blobs (either order)."""
        layer = self.take("BinaryOp", (a, b), ordered=False)
        if self.channels[a] != self.channels[b]:
            self.refuse(layer, f"adds {self.channels[a]} to {self.channels[b]} channels")
        return self._made(layer, self.channels[a])

    def scaled_residual(self, branch: str, skip: str) -> str:
        """Eltwise sum branch * 0.2 + skip * 1.0 (bottoms in either order, coefficients to match)."""
        layer = self.take("Eltwise", (branch, skip), ordered=False)
        coefficients = self.param(layer, 1, ())
        pairs = sorted(zip((self.source(b) for b in layer.bottoms), coefficients if
                           isinstance(coefficients, tuple) else ()))
        if len(pairs) != 2 or not _close(tuple(c for _, c in pairs),
                                         tuple(dict(((branch, RESIDUAL_SCALE), (skip, 1.0)))[s] for s, _ in pairs)):
            self.refuse(layer, f"has coefficients {coefficients}, not {RESIDUAL_SCALE} for {branch} and 1 for {skip}")
        return self._made(layer, self.channels[skip])

    def concat(self, bottoms: list[str]) -> str:
        """Channel concatenation of `bottoms` in that order."""
        layer = self.take("Concat", tuple(bottoms))
        return self._made(layer, sum(self.channels[b] for b in bottoms))


def _close(got: ParamValue, wanted: tuple[float, ...]) -> bool:
    """Float parameter arrays compared at float32 precision."""
    return (isinstance(got, tuple) and len(got) == len(wanted)
            and all(math.isclose(g, w, rel_tol=1e-6) for g, w in zip(got, wanted)))


def _match_compact(m: _Matcher, image: str, feat: str) -> str:
    """SRVGGNetCompact after its first conv: (PReLU, conv)+, pixel shuffle, + nearest(input)."""
    index = 1
    while m.peek() is not None and m.peek().type == "PReLU":
        feat = m.prelu(feat, f"body.{index}")
        feat = m.conv(feat, ACTIVATION_NONE, f"body.{index + 1}")
        index += 2
    shuffled, factor = m.pixel_shuffle(feat)
    upsampled, up = m.interp(image, NEAREST)
    if up != factor or m.channels[shuffled] != m.channels[image]:
        raise ModelFormatError(f"{m.path}: the nearest x{up:g} skip and the x{factor} pixel shuffle of "
                               f"{m.channels[shuffled]} channels do not make one {m.channels[image]}-channel image")
    return m.add(shuffled, upsampled)


def _match_dense_block(m: _Matcher, x: str, prefix: str) -> str:
    """Five convs, each reading the concatenation of the block input and all earlier outputs; x5*0.2 + x."""
    outputs = [x]
    for i in range(1, 5):
        source = x if i == 1 else m.concat(outputs)
        outputs.append(m.conv(source, ACTIVATION_LEAKY, f"{prefix}.conv{i}"))
    last = m.conv(m.concat(outputs), ACTIVATION_NONE, f"{prefix}.conv5")
    return m.scaled_residual(last, x)


def _match_rrdb(m: _Matcher, image: str, first: str) -> str:
    """RRDBNet after conv_first: RRDBs, conv_body + skip, two nearest x2 + conv, conv_hr, conv_last."""
    feat, block = first, 0
    while m.peek() is not None and m.peek().type == "Convolution" and m.param(m.peek(), 9, 0) == ACTIVATION_LEAKY:
        inner = feat
        for rdb in (1, 2, 3):
            inner = _match_dense_block(m, inner, f"body.{block}.rdb{rdb}")
        feat, block = m.scaled_residual(inner, feat), block + 1
    feat = m.add(first, m.conv(feat, ACTIVATION_NONE, "conv_body"))
    for name in ("conv_up1", "conv_up2"):
        upsampled, factor = m.interp(feat, NEAREST)
        if factor != 2:
            raise ModelFormatError(f"{m.path}: RRDBNet upsamples by 2 before {name}, this graph by {factor:g}")
        feat = m.conv(upsampled, ACTIVATION_LEAKY, name)
    out = m.conv(m.conv(feat, ACTIVATION_LEAKY, "conv_hr"), ACTIVATION_NONE, "conv_last")
    if m.channels[out] != m.channels[image]:
        raise ModelFormatError(f"{m.path}: RRDBNet graph maps {m.channels[image]} to {m.channels[out]} channels "
                               "(srkit reads x4 graphs that keep the channel count)")
    return out


def _recognise(graph: Graph) -> tuple[_Matcher, str, float | None]:
    """Match the whole graph; returns the matcher (weighted layers, key prefixes), arch and trailing resize."""
    m = _Matcher(graph)
    image = m.input()
    first = m.conv(image, ACTIVATION_NONE, "body.0")
    is_compact = m.peek() is not None and m.peek().type == "PReLU"
    if is_compact:
        out = _match_compact(m, image, first)
    else:
        m.weighted[-1] = (m.weighted[-1][0], "conv_first")
        out = _match_rrdb(m, image, first)
    resize = None
    if not m.done():
        _, resize = m.interp(out, BICUBIC)
    if not m.done():
        m.refuse(m.peek(), "follows the network's output")
    return m, compact.ARCH if is_compact else rrdb.ARCH, resize


class _BinReader:
    """Sequential reader of an ncnn .bin: tagged weight arrays and raw fp32 arrays."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as error:
            raise ModelFormatError(f"{path}: cannot read the ncnn weights ({error.strerror})") from None
        self.offset = 0

    def _bytes(self, count: int, what: str) -> bytes:
        if self.offset + count > len(self.data):
            raise ModelFormatError(f"{self.path}: ends at byte {len(self.data)} inside {what}, which needs "
                                   f"{self.offset + count} (truncated, or not the .bin of this .param)")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def raw(self, count: int, what: str) -> np.ndarray:
        """`count` untagged little-endian fp32 values."""
        return np.frombuffer(self._bytes(4 * count, what), "<f4").astype(np.float32)

    def tagged(self, count: int, what: str) -> np.ndarray:
        """A 4-byte tag, then `count` fp16 values (padded to 4 bytes) or fp32 values."""
        tag = int.from_bytes(self._bytes(4, what), "little")
        if tag == FP16_TAG:
            values = np.frombuffer(self._bytes(2 * count, what), "<f2").astype(np.float32)
            self._bytes(2 * count % 4, what)
            return values
        if tag == FP32_TAG:
            return self.raw(count, what)
        raise ModelFormatError(f"{self.path}: {what} has storage tag 0x{tag:08X}, which srkit does not read "
                               f"(0x{FP16_TAG:08X} fp16 and 0 fp32 only; quantised weights are not supported)")

    def finish(self) -> None:
        """Check that nothing is left over."""
        if self.offset != len(self.data):
            raise ModelFormatError(f"{self.path}: {len(self.data) - self.offset} bytes left after the last weights "
                                   f"({len(self.data)} bytes, the .param accounts for {self.offset}); "
                                   "not the .bin of this .param")


def _read_weights(path: Path, weighted: list[tuple[Layer, str]]) -> dict[str, torch.Tensor]:
    """Read the .bin in file order into float32 tensors keyed `{prefix}.weight` / `{prefix}.bias`."""
    reader = _BinReader(path)
    state: dict[str, torch.Tensor] = {}
    for layer, prefix in weighted:
        what = f"the weights of layer {layer.name}"
        if layer.type == "PReLU":
            state[f"{prefix}.weight"] = torch.from_numpy(reader.raw(layer.params[0], what))
            continue
        out_channels, size = layer.params[0], layer.params[6]
        weight = reader.tagged(size, what).reshape(out_channels, size // (out_channels * 9), 3, 3)
        state[f"{prefix}.weight"] = torch.from_numpy(weight)
        state[f"{prefix}.bias"] = torch.from_numpy(reader.raw(out_channels, f"the bias of layer {layer.name}"))
    reader.finish()
    return state


def import_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike | None = None) -> ImportedModel:
    """Read a Real-ESRGAN ncnn pair (.bin defaults to the .param's stem) as an srkit state dict and arch."""
    param_path = Path(param_path)
    bin_path = param_path.with_suffix(".bin") if bin_path is None else Path(bin_path)
    matcher, arch, resize = _recognise(parse_param(param_path))
    state = _read_weights(bin_path, matcher.weighted)
    return ImportedModel(state, arch, resize, RESIZE_MODES[BICUBIC] if resize else None)
