"""ONNX export of any model srkit loads (its own, Real-ESRGAN's, imported ones): float32 NCHW RGB in [0, 1] in,
the upscaled image out, batch / height / width dynamic, so TensorRT, ONNX Runtime, vs-mlrt and the ncnn
converters can run it. A model with a resize after its network (animevideov3 x2/x3) exports with that resize."""

from __future__ import annotations

import importlib
import io
import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..defaults import DEFAULT_ONNX_OPSET
from ..errors import SrkitError
from ..io.atomic import write_bytes
from .zoo import LoadedModel

INPUT, OUTPUT = "input", "output"
HINT = "pass --overwrite to replace it"
EXAMPLE_SIZE = 24  # traced with this many pixels per side (a multiple of every size rule srkit knows)


class _Resized(nn.Module):
    """The network followed by its bicubic output resize (half-pixel centres, no antialias, clamped)."""

    def __init__(self, network: nn.Module, factor: float) -> None:
        super().__init__()
        self.network, self.factor = network, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(self.network(x), scale_factor=self.factor, mode="bicubic", align_corners=False)
        return y.clamp(0.0, 1.0)


def export_onnx(
    model: LoadedModel, target: str | os.PathLike, opset: int = DEFAULT_ONNX_OPSET, overwrite: bool = False
) -> Path:
    """Write `model` as an ONNX graph to `target` (through io.atomic: an existing file, another run's included,
    replaced only with `overwrite`; a full disk or read-only folder is one line and leaves nothing)."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise SrkitError(f"{target} exists; {HINT}")
    if target.suffix.lower() != ".onnx":
        raise SrkitError(f"{target}: the output file must end in .onnx")
    try:  # torch's exporter wraps a missing onnx in its own error type, after tracing
        importlib.import_module("onnx")
    except ModuleNotFoundError as error:
        raise SrkitError(f"ONNX export needs the package {error.name}: pip install 'srkit[onnx]'") from None
    network = model.module.float().eval()
    graph = _Resized(network, model.output_resize) if model.output_resize else network
    example = torch.rand(1, model.info.in_channels, EXAMPLE_SIZE, EXAMPLE_SIZE)
    dynamic = {INPUT: {0: "batch", 2: "height", 3: "width"}, OUTPUT: {0: "batch", 2: "out_height", 3: "out_width"}}
    graph_bytes = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on shape arithmetic and the legacy exporter's notice
        # (the TorchScript exporter writes to a file object too; torch's annotation names paths only)
        torch.onnx.export(
            graph,
            (example,),
            graph_bytes,  # pyright: ignore[reportArgumentType]
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes=dynamic,
        )
    return write_bytes(target, graph_bytes.getvalue(), overwrite, HINT)
