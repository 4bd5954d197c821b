"""ONNX Runtime as a CPU executor, on srkit's ONNX export of the network (`models/export.py`, the network alone:
an output resize stays the Upscaler's), written once into `<srkit cache>/onnx/`, keyed by a hash of the weights
and the opset."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import torch

from ..defaults import DEFAULT_ONNX_OPSET
from ..models.export import INPUT, export_onnx
from ..models.zoo import LoadedModel
from .cpu_support import cache_folder, finish, threads, weights_key
from .plan import Plan

FORMAT = 1  # bumped when what an exported file means changes


def unavailable_reason(model: LoadedModel) -> str | None:
    """Why ONNX Runtime cannot run `model` here, or None."""
    for package in ("onnxruntime", "onnx"):
        if importlib.util.find_spec(package) is None:
            return f"the {package} package is not installed (pip install 'srkit[cpu]')"
    return None


def model_file(model: LoadedModel) -> Path:
    """The .onnx file of `model`'s network, exported once."""
    path = cache_folder() / "onnx" / f"{weights_key(model.module, str(FORMAT), str(DEFAULT_ONNX_OPSET))}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(dataclasses.replace(model, output_resize=None), path, overwrite=True)
    return path


class OnnxRuntimePlan:
    """A Plan's network run by ONNX Runtime's CPU execution provider in fp32."""

    def __init__(self, plan: Plan, model: LoadedModel, dtype: torch.dtype | None) -> None:
        import onnxruntime as ort

        self.reference = plan
        self.info, self.device, self.dtype = plan.info, plan.device, plan.dtype
        self.name = "ONNX Runtime fp32"
        self.path = model_file(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads(), 1
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def run(
        self, x: torch.Tensor, clamp: tuple[float, float] | None = None, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The network's output for x (N, C, H, W) in [0, 1]; clamped and converted as Plan.run does."""
        pixels = x.detach().to("cpu", torch.float32).contiguous().numpy()
        y = self.session.run(None, {INPUT: pixels})[0]  # InferenceSession.run may be called from several threads
        return finish(torch.from_numpy(y), clamp, out_dtype)

    def activation_bytes_per_pixel(self) -> float:
        """As the PyTorch plan's (fp32 activations)."""
        return self.reference.activation_bytes_per_pixel()
