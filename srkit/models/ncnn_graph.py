"""Reading any ncnn model: the .param graph, every parameter checked where it is read (one line naming the file,
the line, the layer and the fix), and the .bin weights, whose sizes are checked against the graph before anything
is allocated and whose fp16 / fp32 / quantized-table storage is read as ncnn reads it.

.bin layout (ncnn's ModelBin): for each layer in .param order, its blobs in a fixed order. A "tagged" blob (the
weights of Convolution, ConvolutionDepthWise, Deconvolution, InnerProduct) starts with a 4-byte little-endian tag:
0x01306B47 fp16 values (padded to 4 bytes), 0 or 0x0002C056 fp32 values, 0x000D4B38 int8 (refused), any other
tag a 256-entry fp32 table followed by one uint8 index per value (padded to 4 bytes). Biases, PReLU slopes, Scale
data and MemoryData are raw fp32 with no tag.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFormatError

PARAM_MAGIC = 7767517
ARRAY_KEY_BASE = -23300  # ncnn writes array parameter k as key -23300 - k
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_SCALED = 0x0002C056  # fp32 values (ncnn's "raw data with extra scaling" tag, read as plain fp32)
TABLE_ENTRIES = 256
SAME_UPPER, SAME_LOWER = -233, -234  # ncnn's SAME padding forms (extra pixel at the end / at the start)
WHOLE = -233  # ncnn's "the rest of the axis" for Crop sizes and "from the second input" for Scale

MAX_CHANNELS = 1 << 16
MAX_KERNEL = 64
MAX_STEP = 64  # strides, dilations, shuffle and pooling factors
MAX_PAD = 4096
MAX_VALUES = 1 << 28  # weights of one layer (1 GiB of fp32)
MAX_LAYERS = 100_000
MAX_SCALE = 64.0  # Interp factors: 1/64 .. 64
FLT_MAX = float(np.finfo(np.float32).max)
ACTIVATIONS = {0: "none", 1: "relu", 2: "leaky_relu", 3: "clip", 4: "sigmoid", 5: "mish", 6: "hardswish"}


class NcnnGraphError(ModelFormatError):
    """A .param/.bin pair srkit cannot run: a bad value, an unsupported layer, weights that do not fit."""

    exit_code = 2


# A parameter's value: an int, a float, or a tuple of them ('ints', 'floats'), as its Spec's kind says. Which one a
# name holds is fixed by the layer type's specs, which a checker cannot follow through a dict keyed by name.
ParamValue = Any


@dataclass(frozen=True)
class Spec:
    """One layer parameter: its name, kind ('int', 'float', 'ints', 'floats'), default (a value, or the name of
    an earlier parameter it copies, as ncnn's kernel_h copies kernel_w) and the values it may take."""

    name: str
    kind: str = "int"
    default: ParamValue = 0
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None


def _conv_specs(*, deconv: bool = False, group: bool = False) -> dict[int, Spec]:
    pad_low = 0 if deconv else SAME_LOWER
    specs = {
        0: Spec("num_output", low=1, high=MAX_CHANNELS),
        1: Spec("kernel_w", low=1, high=MAX_KERNEL),
        11: Spec("kernel_h", default="kernel_w", low=1, high=MAX_KERNEL),
        2: Spec("dilation_w", default=1, low=1, high=MAX_STEP),
        12: Spec("dilation_h", default="dilation_w", low=1, high=MAX_STEP),
        3: Spec("stride_w", default=1, low=1, high=MAX_STEP),
        13: Spec("stride_h", default="stride_w", low=1, high=MAX_STEP),
        4: Spec("pad_left", low=pad_low, high=MAX_PAD),
        15: Spec("pad_right", default="pad_left", low=pad_low, high=MAX_PAD),
        14: Spec("pad_top", default="pad_left", low=pad_low, high=MAX_PAD),
        16: Spec("pad_bottom", default="pad_top", low=pad_low, high=MAX_PAD),
        5: Spec("bias_term", choices=(0, 1)),
        6: Spec("weight_data_size", low=1, high=MAX_VALUES),
        8: Spec("int8_scale_term", choices=(0,)),
        9: Spec("activation_type", choices=tuple(ACTIVATIONS)),
        10: Spec("activation_params", "floats", ()),
    }
    if deconv:
        specs.update(
            {
                18: Spec("output_pad_right", low=0, high=MAX_STEP),
                19: Spec("output_pad_bottom", default="output_pad_right", low=0, high=MAX_STEP),
                20: Spec("output_w", choices=(0,)),
                21: Spec("output_h", choices=(0,)),
                28: Spec("dynamic_weight", choices=(0,)),
            }
        )
    else:
        specs.update({18: Spec("pad_value", "float", 0.0, -FLT_MAX, FLT_MAX), 19: Spec("dynamic_weight", choices=(0,))})
    if group:
        specs[7] = Spec("group", default=1, low=1, high=MAX_CHANNELS)
    return specs


SPECS: dict[str, dict[int, Spec]] = {
    "Input": {0: Spec("w", low=0), 1: Spec("h", low=0), 11: Spec("d", low=0), 2: Spec("c", low=0)},
    "Convolution": _conv_specs(),
    "ConvolutionDepthWise": _conv_specs(group=True),
    "Deconvolution": _conv_specs(deconv=True),
    "ReLU": {0: Spec("slope", "float", 0.0, -1e3, 1e3)},
    "PReLU": {0: Spec("num_slope", default=1, low=1, high=MAX_CHANNELS)},
    "Sigmoid": {},
    "Swish": {},
    "Clip": {0: Spec("min", "float", -FLT_MAX, -FLT_MAX, FLT_MAX), 1: Spec("max", "float", FLT_MAX, -FLT_MAX, FLT_MAX)},
    "Eltwise": {0: Spec("op_type", default=1, choices=(0, 1, 2)), 1: Spec("coeffs", "floats", ())},
    "BinaryOp": {
        0: Spec("op_type", choices=tuple(range(12))),
        1: Spec("with_scalar", choices=(0, 1)),
        2: Spec("b", "float", 0.0, -FLT_MAX, FLT_MAX),
    },
    "Split": {},
    "Noop": {},
    "Concat": {0: Spec("axis", low=-3, high=2)},
    "Crop": {
        0: Spec("woffset", low=0, high=MAX_PAD),
        1: Spec("hoffset", low=0, high=MAX_PAD),
        2: Spec("coffset", low=0, high=MAX_CHANNELS),
        13: Spec("doffset", choices=(0,)),
        3: Spec("outw", low=WHOLE, high=1 << 20),
        4: Spec("outh", low=WHOLE, high=1 << 20),
        5: Spec("outc", low=WHOLE, high=MAX_CHANNELS),
        14: Spec("outd", choices=(0,)),
        6: Spec("woffset2", low=0, high=MAX_PAD),
        7: Spec("hoffset2", low=0, high=MAX_PAD),
        8: Spec("coffset2", low=0, high=MAX_CHANNELS),
        15: Spec("doffset2", choices=(0,)),
        9: Spec("starts", "ints", ()),
        10: Spec("ends", "ints", ()),
        11: Spec("axes", "ints", ()),
    },
    "Interp": {
        0: Spec("resize_type", default=1, choices=(1, 2, 3)),
        1: Spec("height_scale", "float", 1.0, 1 / MAX_SCALE, MAX_SCALE),
        2: Spec("width_scale", "float", 1.0, 1 / MAX_SCALE, MAX_SCALE),
        3: Spec("output_height", low=0, high=1 << 16),
        4: Spec("output_width", low=0, high=1 << 16),
        5: Spec("dynamic_target_size", choices=(0,)),
        6: Spec("align_corner", choices=(0, 1)),
    },
    "PixelShuffle": {0: Spec("upscale_factor", default=1, low=1, high=MAX_STEP), 1: Spec("mode", choices=(0, 1))},
    "Pooling": {
        0: Spec("pooling_type", choices=(0, 1)),
        1: Spec("kernel_w", low=0, high=MAX_KERNEL),
        11: Spec("kernel_h", default="kernel_w", low=0, high=MAX_KERNEL),
        2: Spec("stride_w", default=1, low=1, high=MAX_STEP),
        12: Spec("stride_h", default="stride_w", low=1, high=MAX_STEP),
        3: Spec("pad_left", low=0, high=MAX_KERNEL),
        14: Spec("pad_right", default="pad_left", low=0, high=MAX_KERNEL),
        13: Spec("pad_top", default="pad_left", low=0, high=MAX_KERNEL),
        15: Spec("pad_bottom", default="pad_top", low=0, high=MAX_KERNEL),
        4: Spec("global_pooling", choices=(0, 1)),
        5: Spec("pad_mode", choices=(0, 1)),
        6: Spec("avgpool_count_include_pad", choices=(0, 1)),
        7: Spec("adaptive_pooling", choices=(0,)),
    },
    "Reduction": {
        0: Spec("operation", choices=(0, 1, 2, 3, 4, 5, 6)),
        1: Spec("reduce_all", default=1, choices=(0, 1)),
        2: Spec("coeff", "float", 1.0, -FLT_MAX, FLT_MAX),
        3: Spec("axes", "ints", ()),
        4: Spec("keepdims", choices=(0, 1)),
        5: Spec("fixbug0", choices=(0, 1)),
    },
    "InnerProduct": {
        0: Spec("num_output", low=1, high=MAX_CHANNELS),
        1: Spec("bias_term", choices=(0, 1)),
        2: Spec("weight_data_size", low=1, high=MAX_VALUES),
        8: Spec("int8_scale_term", choices=(0,)),
        9: Spec("activation_type", choices=tuple(ACTIVATIONS)),
        10: Spec("activation_params", "floats", ()),
    },
    "Padding": {
        0: Spec("top", low=0, high=MAX_PAD),
        1: Spec("bottom", low=0, high=MAX_PAD),
        2: Spec("left", low=0, high=MAX_PAD),
        3: Spec("right", low=0, high=MAX_PAD),
        4: Spec("type", choices=(0, 1, 2)),
        5: Spec("value", "float", 0.0, -FLT_MAX, FLT_MAX),
        6: Spec("per_channel_pad_data_size", choices=(0,)),
        7: Spec("front", choices=(0,)),
        8: Spec("behind", choices=(0,)),
    },
    "MemoryData": {
        0: Spec("w", low=1, high=1 << 20),
        1: Spec("h", low=0, high=1 << 20),
        11: Spec("d", choices=(0, 1)),
        2: Spec("c", low=0, high=MAX_CHANNELS),
        21: Spec("load_type", default=1, choices=(1,)),
    },
    "Scale": {
        0: Spec("scale_data_size", default=WHOLE, low=WHOLE, high=MAX_CHANNELS),
        1: Spec("bias_term", choices=(0, 1)),
    },
}
"""Every layer type srkit runs, with every parameter it reads; any other id changes what the layer computes."""


@dataclass
class Layer:
    """One .param line: type, name, line number, input and output blobs, parameters by name (defaults filled)."""

    type: str
    name: str
    line: int
    bottoms: list[str]
    tops: list[str]
    values: dict[str, ParamValue] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ParamValue:
        return self.values[name]


@dataclass
class Graph:
    """A checked ncnn graph: its layers (Split and Noop resolved away), input and output blob, weights by layer
    index and the .param text it came from."""

    layers: list[Layer]
    input: str
    output: str
    text: str
    weights: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)


def _where(path: Path | str, line: int, layer: str | None = None, kind: str | None = None) -> str:
    return f"{path}: line {line}" + (f", layer {layer} ({kind})" if layer else "")


def _number(text: str, spec: Spec, where: str) -> int | float:
    """One value of `spec`'s kind, checked against its range."""
    integer = spec.kind in ("int", "ints")
    try:
        value: int | float = int(text) if integer else float(text)
    except ValueError:
        raise NcnnGraphError(
            f"{where}: parameter {spec.name} = {text!r} is not "
            f"{'an integer' if integer else 'a number'}; fix the .param file"
        ) from None
    if not integer and not math.isfinite(value):
        raise NcnnGraphError(f"{where}: parameter {spec.name} = {text} is not finite; fix the .param file")
    if spec.choices is not None and value not in spec.choices:
        raise NcnnGraphError(
            f"{where}: parameter {spec.name} = {text} is not one srkit runs "
            f"(it takes {', '.join(map(str, spec.choices))})"
        )
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise NcnnGraphError(
            f"{where}: parameter {spec.name} = {text} is outside {spec.low:g} .. {spec.high:g}; fix the .param file"
        )
    return value


def _parameters(kind: str, items: list[str], where: str) -> dict[str, ParamValue]:
    """The layer's k=v items read by its specs, every absent one at ncnn's default."""
    specs = SPECS[kind]
    found: dict[int, ParamValue] = {}
    for item in items:
        key_text, sep, value_text = item.partition("=")
        try:
            key = int(key_text)
        except ValueError:
            key = None
        if not sep or key is None:
            raise NcnnGraphError(f"{where}: {item!r} is not a key=value parameter; fix the .param file")
        array = key <= ARRAY_KEY_BASE
        spec = specs.get(ARRAY_KEY_BASE - key if array else key)
        if spec is None or array != (spec.kind in ("ints", "floats")):
            raise NcnnGraphError(
                f"{where}: parameter id {key} is not one srkit reads for {kind} layers, so the "
                "layer would compute something else; re-export the model without it"
            )
        if array:
            count, *entries = value_text.split(",")
            if not count.isdigit() or int(count) != len(entries) or len(entries) > 64:
                raise NcnnGraphError(
                    f"{where}: array parameter {spec.name} declares {count} values and holds "
                    f"{len(entries)} (at most 64); fix the .param file"
                )
            found[ARRAY_KEY_BASE - key] = tuple(_number(v, spec, where) for v in entries)
        else:
            found[key] = _number(value_text, spec, where)
    values: dict[str, ParamValue] = {}
    for key, spec in specs.items():
        default = values[spec.default] if isinstance(spec.default, str) else spec.default
        values[spec.name] = found.get(key, default)
    return values


def _check_layer(layer: Layer, where: str) -> None:
    """Rules between a layer's parameters and its blob counts."""
    v, kind = layer.values, layer.type
    inputs = {
        "Input": (0,),
        "MemoryData": (0,),
        "Split": None,
        "Concat": None,
        "Eltwise": None,
        "BinaryOp": (1, 2),
        "Crop": (1, 2),
        "Scale": (1, 2),
    }.get(kind, (1,))
    if inputs is not None and len(layer.bottoms) not in inputs:
        raise NcnnGraphError(
            f"{where}: takes {len(layer.bottoms)} inputs, expected {' or '.join(map(str, inputs))}; fix the .param file"
        )
    if kind != "Split" and len(layer.tops) != 1:
        raise NcnnGraphError(f"{where}: has {len(layer.tops)} outputs; only Split has more than one")
    if kind in ("Concat", "Eltwise") and not layer.bottoms:
        raise NcnnGraphError(f"{where}: has no inputs; fix the .param file")
    if kind in ("Convolution", "ConvolutionDepthWise", "Deconvolution", "InnerProduct") and len(
        v["activation_params"]
    ) < {2: 1, 3: 2, 6: 2}.get(v["activation_type"], 0):
        raise NcnnGraphError(
            f"{where}: activation {ACTIVATIONS[v['activation_type']]} needs its parameters "
            "(-23310=n,...); fix the .param file"
        )
    if kind in ("Convolution", "ConvolutionDepthWise", "Deconvolution"):
        pads = [v[name] for name in ("pad_left", "pad_right", "pad_top", "pad_bottom")]
        if any(p < 0 for p in pads) and not all(p == pads[0] for p in pads):
            raise NcnnGraphError(f"{where}: SAME padding (-233/-234) must be set on all four sides alike")
        group = v.get("group", 1)
        per_input = v["num_output"] // group * v["kernel_w"] * v["kernel_h"]
        if v["num_output"] % group or v["weight_data_size"] % per_input:
            raise NcnnGraphError(
                f"{where}: weight_data_size {v['weight_data_size']} is not num_output "
                f"{v['num_output']} x inputs / group {group} x kernel {v['kernel_h']}x"
                f"{v['kernel_w']}; fix the .param file"
            )
    if kind == "InnerProduct" and v["weight_data_size"] % v["num_output"]:
        raise NcnnGraphError(
            f"{where}: weight_data_size {v['weight_data_size']} is not a multiple of num_output "
            f"{v['num_output']}; fix the .param file"
        )
    if kind == "Clip" and v["min"] > v["max"]:
        raise NcnnGraphError(f"{where}: min {v['min']} is above max {v['max']}; fix the .param file")
    if kind == "Eltwise" and v["coeffs"] and len(v["coeffs"]) != len(layer.bottoms):
        raise NcnnGraphError(f"{where}: {len(v['coeffs'])} coefficients for {len(layer.bottoms)} inputs")
    if kind == "Pooling" and not v["global_pooling"] and v["kernel_w"] * v["kernel_h"] == 0:
        raise NcnnGraphError(f"{where}: a pooling kernel of 0 pixels; set kernel_w (1=) or global_pooling (4=1)")
    if kind == "Crop" and not (len(v["starts"]) == len(v["ends"]) == len(v["axes"])):
        raise NcnnGraphError(f"{where}: starts, ends and axes must have as many values each")
    if kind == "Crop" and any(not -3 <= axis <= 2 for axis in v["axes"]):
        raise NcnnGraphError(f"{where}: crop axes must lie in -3 .. 2 (channels, rows, columns)")
    if kind == "Reduction" and not v["reduce_all"] and not v["fixbug0"]:
        raise NcnnGraphError(
            f"{where}: reduction axes without fixbug0 (5=1) have the meaning of old ncnn versions; "
            "re-export the model with a current converter"
        )
    if kind == "Reduction" and any(not -3 <= axis <= 2 for axis in v["axes"]):
        raise NcnnGraphError(f"{where}: reduction axes must lie in -3 .. 2 (channels, rows, columns)")
    if kind == "Scale" and v["scale_data_size"] != WHOLE and (v["scale_data_size"] < 1) != (len(layer.bottoms) == 2):
        raise NcnnGraphError(
            f"{where}: scale_data_size {v['scale_data_size']} does not fit "
            f"{len(layer.bottoms)} inputs (-233 takes the scale from a second input)"
        )
    if kind == "Scale" and v["scale_data_size"] == WHOLE and (len(layer.bottoms) != 2 or v["bias_term"]):
        raise NcnnGraphError(
            f"{where}: a Scale whose scale comes from its second input (-233) needs two inputs and no bias"
        )


def parse_param(text: str, path: Path | str) -> Graph:
    """The checked graph of a text .param file (weights not read yet)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != str(PARAM_MAGIC):
        raise NcnnGraphError(f"{path}: not an ncnn text .param file (magic number {PARAM_MAGIC} missing on line 1)")
    counts = lines[1].split() if len(lines) > 1 else []
    if len(counts) != 2 or not all(c.isdigit() for c in counts) or not 0 < int(counts[0]) <= MAX_LAYERS:
        raise NcnnGraphError(f"{path}: line 2 must hold the layer and blob counts; fix the .param file")
    layers: list[Layer] = []
    produced: dict[str, int] = {}
    consumed: set[str] = set()
    alias: dict[str, str] = {}
    inputs: list[str] = []
    for number, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        if not tokens:
            continue
        where = _where(path, number)
        if len(tokens) < 4 or not tokens[2].isdigit() or not tokens[3].isdigit():
            raise NcnnGraphError(f"{where} is not an ncnn layer (type name inputs outputs ...): {line[:60]}")
        kind, name, n_in, n_out = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
        where = _where(path, number, name, kind)
        if kind not in SPECS:
            raise NcnnGraphError(f"{where}: srkit cannot run {kind} layers (it runs {', '.join(sorted(SPECS))})")
        if len(tokens) < 4 + n_in + n_out or n_out < 1:
            raise NcnnGraphError(f"{where}: declares {n_in} inputs and {n_out} outputs but names fewer blobs")
        bottoms, tops = tokens[4 : 4 + n_in], tokens[4 + n_in : 4 + n_in + n_out]
        layer = Layer(kind, name, number, bottoms, tops, _parameters(kind, tokens[4 + n_in + n_out :], where))
        _check_layer(layer, where)
        for blob in bottoms:
            if blob not in produced:
                raise NcnnGraphError(f"{where}: reads blob {blob!r}, which no earlier layer writes")
            consumed.add(blob)
        for blob in tops:
            if blob in produced:
                raise NcnnGraphError(f"{where}: writes blob {blob!r}, which line {produced[blob]} already wrote")
            produced[blob] = number
        layer.bottoms = [alias.get(b, b) for b in bottoms]
        if kind in ("Split", "Noop"):
            alias.update({top: layer.bottoms[0] for top in tops})
            continue
        if kind == "Input":
            inputs.append(tops[0])
        layers.append(layer)
    if len(layers) + len(alias) == 0 or len(inputs) != 1:
        raise NcnnGraphError(f"{path}: an SR graph has exactly one Input layer, this one has {len(inputs)}")
    outputs = [blob for blob in produced if blob not in consumed]
    if len(outputs) != 1:
        raise NcnnGraphError(
            f"{path}: an SR graph has one output blob; this one leaves {', '.join(outputs[:4]) or 'none'} unread"
        )
    return Graph(layers, inputs[0], alias.get(outputs[0], outputs[0]), text)


@dataclass(frozen=True)
class Blob:
    """One weight array a layer reads from the .bin: its name in the layer, its count, tagged or raw fp32."""

    name: str
    count: int
    tagged: bool


def blobs_of(layer: Layer) -> list[Blob]:
    """The arrays `layer` reads from the .bin, in ncnn's order."""
    v = layer.values
    if layer.type in ("Convolution", "ConvolutionDepthWise", "Deconvolution", "InnerProduct"):
        size = v["weight_data_size"]
        return [Blob("weight", size, True)] + ([Blob("bias", v["num_output"], False)] if v["bias_term"] else [])
    if layer.type == "PReLU":
        return [Blob("slope", v["num_slope"], False)]
    if layer.type == "MemoryData":
        return [Blob("data", v["w"] * max(v["h"], 1) * max(v["c"], 1), False)]
    if layer.type == "Scale" and v["scale_data_size"] != WHOLE:
        size = v["scale_data_size"]
        return [Blob("scale", size, False)] + ([Blob("bias", size, False)] if v["bias_term"] else [])
    return []


def _tagged_bytes(tag: int, count: int) -> int:
    """Bytes after the tag of a tagged blob of `count` values."""
    if tag == TAG_FP16:
        return (2 * count + 3) // 4 * 4
    if tag in (0, TAG_FP32_SCALED):
        return 4 * count
    return 4 * TABLE_ENTRIES + (count + 3) // 4 * 4


class _BinFile:
    """The .bin opened as a regular file, read front to back with every length checked before it is read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            info = os.stat(path)
        except OSError as error:
            raise NcnnGraphError(f"{path}: cannot read ncnn weights ({error.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            raise NcnnGraphError(f"{path}: not a regular file; give the .bin weights file beside the .param")
        self.size = info.st_size
        self.offset = 0

    def check_bounds(self, blobs: list[Blob]) -> None:
        """Refuse a file shorter than the smallest or longer than the largest storage of `blobs`."""
        smallest = sum(
            4 + min(_tagged_bytes(TAG_FP16, b.count), _tagged_bytes(1, b.count)) if b.tagged else 4 * b.count
            for b in blobs
        )
        largest = sum(
            4 + max(_tagged_bytes(0, b.count), _tagged_bytes(1, b.count)) if b.tagged else 4 * b.count for b in blobs
        )
        if self.size < smallest:
            raise NcnnGraphError(
                f"{self.path}: holds {self.size} bytes, but the graph's weights need at least "
                f"{smallest} (truncated, or it does not belong to this .param)"
            )
        if self.size > largest:
            raise NcnnGraphError(
                f"{self.path}: holds {self.size} bytes, more than the {largest} the graph's weights "
                "can take (it does not belong to this .param)"
            )

    def take(self, handle, size: int, layer: Layer) -> bytes:
        if self.offset + size > self.size:
            raise NcnnGraphError(
                f"{self.path}: ends after {self.size} bytes, before the weights of layer "
                f"{layer.name} (line {layer.line}) were read (truncated, or another model's)"
            )
        data = handle.read(size)
        self.offset += size
        return data

    def read(self, handle, blob: Blob, layer: Layer) -> np.ndarray:
        """One array as float32, stored as ncnn stores it."""
        if not blob.tagged:
            return np.frombuffer(self.take(handle, 4 * blob.count, layer), dtype="<f4").astype(np.float32)
        tag = int.from_bytes(self.take(handle, 4, layer), "little")
        if tag == TAG_INT8:
            raise NcnnGraphError(
                f"{self.path}: layer {layer.name} (line {layer.line}) holds int8-quantized weights "
                f"(tag {TAG_INT8:#010x}); srkit reads fp32 and fp16 models only"
            )
        raw = self.take(handle, _tagged_bytes(tag, blob.count), layer)
        if tag == TAG_FP16:
            return np.frombuffer(raw[: 2 * blob.count], dtype="<f2").astype(np.float32)
        if tag in (0, TAG_FP32_SCALED):
            return np.frombuffer(raw, dtype="<f4").astype(np.float32)
        table = np.frombuffer(raw[: 4 * TABLE_ENTRIES], dtype="<f4")
        return table[np.frombuffer(raw[4 * TABLE_ENTRIES : 4 * TABLE_ENTRIES + blob.count], dtype=np.uint8)].copy()


def read_weights(graph: Graph, path: Path) -> None:
    """Fill `graph.weights` from the .bin at `path` (sizes checked against the graph first)."""
    reader = _BinFile(path)
    plan = [(index, blobs_of(layer)) for index, layer in enumerate(graph.layers)]
    reader.check_bounds([blob for _, blobs in plan for blob in blobs])
    with open(path, "rb") as handle:
        for index, blobs in plan:
            if blobs:
                graph.weights[index] = {blob.name: reader.read(handle, blob, graph.layers[index]) for blob in blobs}
    if reader.offset != reader.size:
        raise NcnnGraphError(
            f"{path}: {reader.size - reader.offset} bytes left after the last layer's weights "
            "(the .bin does not belong to this .param)"
        )


def read_param(path: Path) -> Graph:
    """The checked graph of the .param file at `path` (a regular file)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NcnnGraphError(f"{path}: not a regular file; give the model's .param file")
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise NcnnGraphError(f"{path}: cannot read ncnn param file ({error})") from None
    return parse_param(text, path)


def load_graph(param_path: str | os.PathLike, bin_path: str | os.PathLike | None = None) -> Graph:
    """The graph of an ncnn model with its weights (the .bin defaults to the .param's stem + .bin)."""
    param_path = Path(param_path)
    graph = read_param(param_path)
    read_weights(graph, Path(bin_path) if bin_path is not None else param_path.with_suffix(".bin"))
    return graph
