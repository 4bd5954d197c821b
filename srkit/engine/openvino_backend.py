"""OpenVINO as a CPU executor: the torch module converted to OpenVINO's IR once per model (batch and spatial size
left open) and saved under `<srkit cache>/openvino/`, keyed by a hash of its weights and the OpenVINO version, so
later runs skip the conversion. Each input shape then gets its own compiled model (the IR reshaped to that static
shape and compiled once, kept for the process; OpenVINO's blob cache beside the IR keeps the compiled form across
runs). Precision (`precision`): bf16 on CPUs with AVX512-BF16 or AMX, fp16 on CPUs with AVX512-FP16 / AMX-FP16
but no bf16, f32 elsewhere; `dtype=fp32`, or a model whose ModelInfo.dtypes lacks the reduced type, forces f32;
`dtype=torch.int8` runs the NNCF-quantized IR (engine/openvino_int8.py). Asked for uint8 codes, the compiled
model packs them itself (clamp, scale, round half up, HWC) in OpenVINO's threads: faster than srkit's own pass over
a float output (benchmarks/NOTES.md, issue 32) and at most one code from it (OpenVINO may then keep the last
layer's output in bf16, which is below one 8-bit code but not below one 16-bit code: uint16 is packed by srkit).
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..models.zoo import LoadedModel
from .cpu_support import cache_folder as srkit_cache
from .cpu_support import cpu_flags, finish, threads, weights_key
from .openvino_int8 import quantized
from .plan import Plan

FORMAT = 1  # bumped when what a cached IR means changes (input layout, outputs)
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
FP16_FLAGS = frozenset({"avx512_fp16", "amx_fp16"})


def precision(dtype: torch.dtype | None, model_dtypes: tuple[str, ...] = ("fp32", "fp16", "bf16")) -> str:
    """OpenVINO inference precision for a requested dtype on this CPU (see the module docstring)."""
    flags = cpu_flags()
    bf16 = "bf16" in model_dtypes and (dtype in (torch.float16, torch.bfloat16) or bool(flags & BF16_FLAGS))
    fp16 = "fp16" in model_dtypes and bool(flags & FP16_FLAGS) and dtype != torch.bfloat16
    if dtype == torch.float32:
        return "f32"
    if fp16 and (dtype == torch.float16 or not flags & BF16_FLAGS):
        return "f16"
    return "bf16" if bf16 else "f32"


def why(precision_name: str) -> str:
    """The CPU feature behind a precision, in words."""
    return {"bf16": "CPU has AVX512-BF16/AMX", "f16": "CPU has AVX512-FP16"}.get(
        precision_name, "no native bf16/fp16 on this CPU"
    )


def cache_folder() -> Path:
    """Where converted models are kept: the `openvino` folder of srkit's cache."""
    return srkit_cache() / "openvino"


def _converted(module: nn.Module, channels: int) -> Path:
    """Path of the module's IR, converting and saving it (written under a temporary name, then renamed) if new."""
    import openvino as ov

    folder = cache_folder()
    xml = folder / f"{weights_key(module, str(FORMAT), ov.get_version())}.xml"
    if xml.exists() and xml.with_suffix(".bin").exists():
        return xml
    folder.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, channels, 64, 64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the converter traces with torch.jit.trace
        model = ov.convert_model(module.eval(), example_input=example, input=[ov.PartialShape([-1, channels, -1, -1])])
    _stop_telemetry_threads()
    tmp = xml.with_name(f"{xml.stem}.{os.getpid()}.tmp.xml")
    ov.save_model(model, tmp, compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    tmp.replace(xml)  # the .xml appears last, so a present .xml means a complete pair
    return xml


def _stop_telemetry_threads() -> None:
    """The converter starts openvino-telemetry's sender thread pool, which would outlive the conversion: stop it."""
    try:
        import openvino_telemetry
    except ImportError:
        return
    openvino_telemetry.Telemetry().force_shutdown(0.5)


def _packing(model):
    """`model` with its (N, C, H, W) unit output packed to (N, H, W, C) uint8 codes: clamped to [0, 1], scaled,
    rounded half up (as srkit's kernels pack), converted."""
    import openvino as ov
    import openvino.opset13 as ops
    from openvino.preprocess import PrePostProcessor

    def pack(node):
        unit = ops.clamp(node, 0.0, 1.0)
        scaled = ops.add(ops.multiply(unit, ops.constant(np.float32(255.0))), ops.constant(np.float32(0.5)))
        return ops.convert(ops.floor(scaled), "u8").output(0)

    steps = PrePostProcessor(model)
    steps.output().model().set_layout(ov.Layout("NCHW"))
    steps.output().postprocess().custom(pack)
    steps.output().tensor().set_layout(ov.Layout("NHWC"))
    return steps.build()


class OpenVinoPlan:
    """A Plan's network run by OpenVINO: run(x, clamp, out_dtype) as Plan.run, one compiled model per input shape
    and output form (unit floats, or uint8 codes packed in the graph)."""

    def __init__(self, plan: Plan, model: LoadedModel, dtype: torch.dtype | None) -> None:
        import openvino as ov

        self.reference = plan
        self.info, self.device, self.dtype = plan.info, plan.device, plan.dtype
        self.precision = "int8" if dtype == torch.int8 else precision(dtype, plan.info.dtypes)
        self.name = f"OpenVINO {self.precision}"
        self.threads = threads()
        self.core = ov.Core()
        self.core.set_property({"CACHE_DIR": str(cache_folder() / "compiled")})
        self.xml = _converted(model.module, plan.info.in_channels)
        if dtype == torch.int8:
            self.xml = quantized(self.xml, plan.info.in_channels)
        self.compiled: dict[tuple[tuple[int, ...], bool], Any] = {}
        self.lock = threading.Lock()  # one infer request per shape: calls from several threads take turns

    def _request(self, shape: tuple[int, ...], packed: bool):
        """The infer request for inputs of `shape`, its output packed to uint8 codes or unit floats."""
        key = (shape, packed)
        if key not in self.compiled:
            model = self.core.read_model(self.xml)
            model.reshape({0: list(shape)})
            if packed:
                model = _packing(model)
            # int8: the layers left unquantized run f32
            hint = "f32" if self.precision == "int8" else self.precision
            config = {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": hint}
            self.compiled[key] = self.core.compile_model(model, "CPU", config).create_infer_request()
        return self.compiled[key]

    def run(
        self, x: torch.Tensor, clamp: tuple[float, float] | None = None, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The network's output for x (N, C, H, W) in [0, 1]; clamped and converted as Plan.run does."""
        pixels = x.detach().to("cpu", torch.float32).contiguous().numpy()
        unit = clamp is None or (float(clamp[0]), float(clamp[1])) == (0.0, 1.0)
        packed = out_dtype == torch.uint8 and unit
        with self.lock:
            request = self._request(tuple(pixels.shape), packed)
            request.infer({0: pixels}, share_outputs=True)  # no numpy copy of the output (a full tile)
            # the request's buffer: copied before unlocking
            y = torch.from_numpy(request.get_output_tensor(0).data)
            return y.clone() if packed else finish(y, clamp, out_dtype)

    def activation_bytes_per_pixel(self) -> float:
        """As the PyTorch plan's (fp32 activations: an upper bound for bf16)."""
        return self.reference.activation_bytes_per_pixel()
