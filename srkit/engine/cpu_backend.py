"""The CPU backend: which runtime executes a model's network on the CPU. Candidates are OpenVINO (at its best
precision for this CPU, engine/openvino_backend.py), the ncnn runtime (engine/ncnn_backend.py), ONNX Runtime
(engine/onnxruntime_backend.py) and srkit's own PyTorch kernel plan; every one implements the executor contract
(engine/executor.py). By default (`SRKIT_CPU_BACKEND=auto`) the fastest is chosen by measurement on first use of
a model on this CPU and cached (engine/cpu_choice.py); SRKIT_CPU_BACKEND=openvino|ncnn|onnxruntime|torch forces
one (a forced runtime that is missing or cannot take the model leaves the PyTorch kernels, with a warning). The
PyTorch plan also runs when SRKIT_KERNELS is `reference` or `triton` and off the CPU. `describe()` says what
applies here (`srkit info`); `cpu_plan` returns which ran and why (the run summary). `dtype=torch.int8`
(`--dtype int8`) is never chosen by itself: asked for, it runs OpenVINO on the NNCF-quantized network.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import warnings
from collections.abc import Callable

import torch

from .. import kernels as K
from ..errors import SrkitError
from ..models.zoo import LoadedModel
from . import ncnn_backend, onnxruntime_backend
from .cpu_choice import Choice, choose, timed_tile
from .cpu_support import cache_folder, threads, weights_key
from .executor import Executor
from .ncnn_backend import NcnnPlan
from .onnxruntime_backend import OnnxRuntimePlan
from .openvino_backend import OpenVinoPlan, precision, why
from .openvino_int8 import Int8UnavailableError
from .openvino_int8 import unavailable_reason as int8_unavailable_reason
from .plan import Plan

CPU_BACKEND_ENV = "SRKIT_CPU_BACKEND"
RUNTIMES = ("openvino", "ncnn", "onnxruntime")
CPU_BACKENDS = ("auto", *RUNTIMES, "torch")


class CpuBackendSettingError(SrkitError, ValueError):
    """SRKIT_CPU_BACKEND names no backend: a bad setting, reported in one line like a bad option."""

    exit_code = 2


def requested() -> str:
    """SRKIT_CPU_BACKEND, checked (default auto)."""
    choice = os.environ.get(CPU_BACKEND_ENV, "auto").strip().lower() or "auto"
    if choice not in CPU_BACKENDS:
        raise CpuBackendSettingError(f"{CPU_BACKEND_ENV}={choice!r} is not one of {', '.join(CPU_BACKENDS)}")
    return choice


def _openvino_reason(model: LoadedModel | None = None) -> str | None:
    if importlib.util.find_spec("openvino") is None:
        return "the openvino package is not installed (pip install openvino)"
    return None


REASONS: dict[str, Callable[[LoadedModel], str | None]] = {
    "openvino": _openvino_reason,
    "ncnn": ncnn_backend.unavailable_reason,
    "onnxruntime": onnxruntime_backend.unavailable_reason,
}
EXECUTORS = {"openvino": OpenVinoPlan, "ncnn": NcnnPlan, "onnxruntime": OnnxRuntimePlan}


def unavailable_reason(device: torch.device | str = "cpu") -> str | None:
    """Why only srkit's PyTorch kernels run for `device`, or None when a CPU runtime may."""
    if torch.device(device).type != "cpu":
        return f"not used on {torch.device(device).type} (it runs CPU work only)"
    if K.requested_backend() != "auto":
        return f"off: {K.BACKEND_ENV}={K.requested_backend()} keeps srkit's own kernels"
    if requested() == "torch":
        return f"off: {CPU_BACKEND_ENV}=torch"
    if requested() == "openvino" and _openvino_reason():
        return f"off: {_openvino_reason()}"
    return None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package).split("-")[0]
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _runtime_line(name: str) -> str:
    """A CPU backend in words, with its version and precision."""
    if name == "openvino":
        ov = precision(None)
        return f"OpenVINO {_version('openvino')} {ov} ({why(ov)}; --dtype fp32 forces f32)"
    if name == "torch":
        return "srkit's PyTorch kernels fp32"
    if name == "ncnn":
        return f"ncnn {_version('ncnn')} fp32"
    return f"ONNX Runtime {_version('onnxruntime')} fp32"


def describe() -> str:
    """One line saying which CPU backend runs and why (for `srkit info`)."""
    reason = unavailable_reason("cpu")
    if reason:
        return f"PyTorch reference kernels, fp32 (CPU runtimes {reason})"
    where = f"{threads()} threads; cache {cache_folder()}"
    if requested() != "auto":
        return f"{_runtime_line(requested())}, forced by {CPU_BACKEND_ENV}; {where}"
    runtimes = ", ".join(_runtime_line(name) for name in CPU_BACKENDS[1:])
    return (
        f"auto: the fastest of {runtimes}; measured per model on first use, then cached; {CPU_BACKEND_ENV} "
        f"forces one; {where}"
    )


def _builders(
    plan: Plan, model: LoadedModel, dtype: torch.dtype | None, names: tuple[str, ...]
) -> tuple[dict[str, Callable[[], Executor]], dict[str, str]]:
    """(name -> executor builder for the runtimes that can take `model`, name -> why not for the others)."""
    builders: dict[str, Callable[[], Executor]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        reason = REASONS[name](model)
        if reason:
            skipped[name] = reason
        else:
            builders[name] = lambda name=name: EXECUTORS[name](plan, model, dtype)
    return builders, skipped


def _int8(plan: Plan, model: LoadedModel) -> Executor:
    """OpenVINO on the int8 network: asked for by name, so every reason it cannot run is the user's to fix."""
    if plan.device.type != "cpu":
        raise Int8UnavailableError(
            f"--dtype int8 runs on the CPU only (OpenVINO), not on {plan.device}: add "
            "--device cpu or choose fp16/bf16/fp32"
        )
    reason = int8_unavailable_reason()
    if reason:
        raise Int8UnavailableError(reason)
    return OpenVinoPlan(plan, model, torch.int8)


def cpu_plan(plan: Plan, model: LoadedModel, dtype: torch.dtype | None) -> tuple[Executor, Choice | None]:
    """(the executor for `plan`'s network, which CPU backend and why: None where no CPU runtime applies), as the
    module docstring says."""
    if dtype == torch.int8:
        return _int8(plan, model), Choice("openvino", "--dtype int8 asked for OpenVINO's NNCF-quantized network")
    if unavailable_reason(plan.device) is not None:
        return plan, None
    forced = requested()
    if forced != "auto":
        builders, skipped = _builders(plan, model, dtype, (forced,))
        try:
            executor = builders[forced]() if forced in builders else None
        except Exception as error:  # an op the runtime cannot take: the PyTorch plan still gives the right result
            skipped[forced] = f"{type(error).__name__}: {error}"
            executor = None
        if executor is None:
            warnings.warn(
                f"{CPU_BACKEND_ENV}={forced} cannot run this model ({skipped[forced]}); running srkit's "
                "PyTorch kernels instead",
                RuntimeWarning,
                stacklevel=2,
            )
            return plan, Choice("torch", f"{CPU_BACKEND_ENV}={forced} cannot run this model")
        return executor, Choice(forced, f"forced by {CPU_BACKEND_ENV}")
    builders, _ = _builders(plan, model, dtype, RUNTIMES)
    builders["torch"] = lambda: plan
    return choose(builders, weights_key(model.module, str(dtype)), tile=timed_tile(model.info))


def run_backend(model_name: str, dtype: str | None, where: torch.device) -> str | None:
    """The CPU backend a run of `model_name` on `where` uses on this machine (forced, cached, else measured now), so
    a segmented run can record it; None where no CPU runtime applies (another device, srkit's kernels forced)."""
    from ..models.zoo import load_model
    from .plan import DTYPE_NAMES, build_plan

    if dtype == "int8":  # asked for by name: OpenVINO whatever the settings (cpu_plan refuses it off the CPU)
        return "openvino" if where.type == "cpu" else None
    if unavailable_reason(where) is not None:
        return None
    if requested() != "auto":
        return requested()
    model = load_model(model_name)
    torch_dtype = next((key for key, name in DTYPE_NAMES.items() if name == dtype), None)
    _, choice = cpu_plan(build_plan(model, where, torch_dtype), model, torch_dtype)
    return choice.backend if choice else None


def pin(backend: str) -> None:
    """Make every Upscaler built later in this process, and in the worker processes it starts, use `backend`
    (a resumed run keeps the backend its manifest records, so its segments match the earlier ones byte for byte)."""
    if backend not in CPU_BACKENDS:
        raise CpuBackendSettingError(
            f"the run's manifest names the CPU backend {backend!r}, not one of "
            f"{', '.join(CPU_BACKENDS)}; start over with --overwrite"
        )
    os.environ[CPU_BACKEND_ENV] = backend
