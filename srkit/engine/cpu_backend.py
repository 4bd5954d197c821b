"""The CPU execution backend: an SR network run by OpenVINO on the CPU instead of PyTorch's reference kernels.

The torch module is converted to OpenVINO's IR once per model (batch and spatial size left open) and saved
under `$SRKIT_CACHE/openvino/` (default `~/.cache/srkit/openvino/`), keyed by a hash of its weights and the
OpenVINO version, so later runs skip the conversion. Each input shape then gets its own compiled model (the IR
reshaped to that static shape and compiled once, kept for the process; OpenVINO's blob cache beside the IR keeps
the compiled form across runs). Precision: OpenVINO's CPU default, which is bf16 on CPUs with AVX512-BF16 or
AMX and f32 elsewhere; `dtype=fp32`, or a model whose ModelInfo.dtypes lacks bf16, forces f32. The PyTorch
plan runs instead when SRKIT_KERNELS is `reference` or `triton`, when SRKIT_CPU_BACKEND is `torch`, when the
device is not the CPU, or when `openvino` is not installed; `describe()` says which and why (`srkit info`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from .. import kernels as K
from ..errors import SrkitError
from ..kernels._autotune import cache_path
from .plan import Plan

CPU_BACKEND_ENV = "SRKIT_CPU_BACKEND"
CPU_BACKENDS = ("openvino", "torch")
FORMAT = 1  # bumped when what a cached IR means changes (input layout, outputs)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


class CpuBackendSettingError(SrkitError, ValueError):
    """SRKIT_CPU_BACKEND names no backend: a bad setting, reported in one line like a bad option."""

    exit_code = 2


def _cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX), which OpenVINO then uses by default."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_FLAGS)


def unavailable_reason(device: torch.device | str = "cpu") -> str | None:
    """Why the OpenVINO backend does not run for `device`, or None when it does."""
    if torch.device(device).type != "cpu":
        return f"not used on {torch.device(device).type} (it runs CPU work only)"
    if K.requested_backend() != "auto":
        return f"off: {K.BACKEND_ENV}={K.requested_backend()} keeps srkit's own kernels"
    choice = os.environ.get(CPU_BACKEND_ENV, "openvino").strip().lower() or "openvino"
    if choice not in CPU_BACKENDS:
        raise CpuBackendSettingError(f"{CPU_BACKEND_ENV}={choice!r} is not one of {', '.join(CPU_BACKENDS)}")
    if choice == "torch":
        return f"off: {CPU_BACKEND_ENV}=torch"
    if importlib.util.find_spec("openvino") is None:
        return "off: the openvino package is not installed (pip install openvino)"
    return None


def precision(dtype: torch.dtype | None, bf16_ok: bool = True) -> str:
    """OpenVINO inference precision for a requested dtype: bf16 where the CPU has it natively, else f32."""
    if dtype == torch.float32 or not bf16_ok:
        return "f32"
    if dtype in (torch.float16, torch.bfloat16) or _cpu_has_bf16():
        return "bf16"
    return "f32"


def describe() -> str:
    """One line saying which CPU backend runs and why (for `srkit info`)."""
    reason = unavailable_reason("cpu")
    if reason:
        return f"PyTorch reference kernels, fp32 (OpenVINO {reason})"
    import openvino

    why = "CPU has AVX512-BF16/AMX" if _cpu_has_bf16() else "no native bf16 on this CPU"
    return (f"OpenVINO {openvino.get_version().split('-')[0]}, {precision(None)} ({why}; --dtype fp32 forces f32); "
            f"IR cache {cache_folder()}")


def cache_folder() -> Path:
    """Where converted models are kept: the `openvino` folder of srkit's cache."""
    return cache_path().parent / "openvino"


def _weights_key(module: nn.Module) -> str:
    """Hash of the module's class, weights and the OpenVINO version (the cached IR's name)."""
    import openvino

    digest = hashlib.sha256(f"{FORMAT} {openvino.get_version()} {type(module).__qualname__}".encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name} {tuple(tensor.shape)} {tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def _converted(module: nn.Module, channels: int) -> Path:
    """Path of the module's IR, converting and saving it (written under a temporary name, then renamed) if new."""
    import openvino as ov

    folder = cache_folder()
    xml = folder / f"{_weights_key(module)}.xml"
    if xml.exists() and xml.with_suffix(".bin").exists():
        return xml
    folder.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, channels, 64, 64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the converter traces with torch.jit.trace
        model = ov.convert_model(module.eval(), example_input=example,
                                 input=[ov.PartialShape([-1, channels, -1, -1])])
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


class OpenVinoPlan:
    """A Plan's network run by OpenVINO: run(x, clamp, out_dtype) as Plan.run, one compiled model per input shape."""

    def __init__(self, plan: Plan, module: nn.Module, dtype: torch.dtype | None) -> None:
        import openvino as ov

        self.reference = plan
        self.info, self.device, self.dtype = plan.info, plan.device, plan.dtype
        self.precision = precision(dtype, "bf16" in plan.info.dtypes)
        self.name = f"OpenVINO {self.precision}"
        self.core = ov.Core()
        self.core.set_property({"CACHE_DIR": str(cache_folder() / "compiled")})
        self.xml = _converted(module, plan.info.in_channels)
        self.compiled: dict[tuple[int, ...], object] = {}
        self.lock = threading.Lock()  # one infer request per shape: calls from several threads take turns

    def _request(self, shape: tuple[int, ...]):
        if shape not in self.compiled:
            model = self.core.read_model(self.xml)
            model.reshape({0: list(shape)})
            config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": self.precision}
            self.compiled[shape] = self.core.compile_model(model, "CPU", config).create_infer_request()
        return self.compiled[shape]

    def run(self, x: torch.Tensor, clamp: tuple[float, float] | None = None,
            out_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The network's output for x (N, C, H, W) in [0, 1]; clamped and converted as Plan.run does."""
        pixels = x.detach().to("cpu", torch.float32).contiguous().numpy()
        with self.lock:
            request = self._request(tuple(pixels.shape))
            request.infer({0: pixels}, share_outputs=True)  # no numpy copy of the output (a full tile of floats)
            y = torch.from_numpy(request.get_output_tensor(0).data)  # the request's buffer: copied before unlocking
            if out_dtype is not None:
                return K.pixel_shuffle_add(y, 1, clamp=clamp, out_dtype=out_dtype)
            return y.clone() if clamp is None else y.clamp(float(clamp[0]), float(clamp[1]))

    def activation_bytes_per_pixel(self) -> float:
        """As the PyTorch plan's (fp32 activations: an upper bound for bf16)."""
        return self.reference.activation_bytes_per_pixel()


def cpu_plan(plan: Plan, module: nn.Module, dtype: torch.dtype | None) -> Plan | OpenVinoPlan:
    """`plan` run by OpenVINO where that backend applies (see the module docstring), else `plan` itself."""
    if unavailable_reason(plan.device) is not None:
        return plan
    try:
        return OpenVinoPlan(plan, module, dtype)
    except Exception as error:  # an op OpenVINO cannot convert: the PyTorch plan still gives the right result
        warnings.warn(f"OpenVINO could not take this model ({type(error).__name__}: {error}); "
                      "running srkit's PyTorch kernels instead", RuntimeWarning, stacklevel=2)
        return plan
