"""Run independent units of work (photo files, video segments) on one or many workers.

A unit is processed by `work(upscaler, unit)`, a module-level function (so it pickles), on a worker that built
its Upscaler once from the run's UpscaleRequest. Results come back in unit order and `on_done(index, result)` is called
in the driver as each unit finishes, so the caller can record progress (a resume manifest, a progress bar).
The output of a unit must not depend on which worker ran it.

Backends: one local worker runs in this process; `workers > 1` starts local worker processes (pipelines.processes,
one per device where `devices` are given); `backend='ray'` runs Ray actors (pipelines.ray_actors). The first
error a unit raises stops every worker and is raised here (a user's SrkitError as itself, a bug with the worker's
traceback as its cause); a unit that should only be reported must return its error as its result instead. A unit
whose worker is lost (its process killed or crashed, on Ray also its whole node) goes to another worker, up to
UNIT_TRIES runs (pipelines.remote.Tries); finished units are never redone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ..request import UpscaleRequest
from ..upscaler import Upscaler
from .types import LOCAL, ScaleOut, ScaleOutError

Unit = TypeVar("Unit")
Result = TypeVar("Result")
BACKENDS = ("local", "ray")


def parse_devices(text: str) -> tuple[str, ...]:
    """The CUDA devices that --devices names (cuda:0,cuda:1,...), each present here and named once."""
    import torch

    names = tuple(part.strip() for part in text.split(","))
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name in names:
        kind, _, index = name.partition(":")
        if kind != "cuda" or not index.isdigit():
            raise ScaleOutError(
                f"--devices {text}: {name!r} is not cuda:INDEX; give CUDA devices like "
                "cuda:0,cuda:1 (for CPU workers use --workers N)"
            )
        if int(index) >= available:
            raise ScaleOutError(f"--devices {text}: there is no {name} here ({available} CUDA devices)")
    if len(set(names)) != len(names):
        raise ScaleOutError(f"--devices {text}: a device is named twice; one worker runs per device")
    return names


def scale_out_options(
    backend: str, workers: int | None, devices: str | None, ray_address: str | None, device: str | None
) -> ScaleOut:
    """The ScaleOut that the command-line options describe, or a one-line ScaleOutError when they conflict."""
    if ray_address and backend != "ray":
        raise ScaleOutError("--ray-address needs --backend ray")
    if devices is None:
        return ScaleOut(backend, workers or (0 if backend == "ray" else 1), ray_address=ray_address)
    if backend == "ray":
        raise ScaleOutError("--devices is for --backend local; Ray gives each actor its own GPU (use --workers N)")
    if device:
        raise ScaleOutError("give --device (one device) or --devices (one worker per device), not both")
    names = parse_devices(devices)
    if workers not in (None, len(names)):
        raise ScaleOutError(
            f"--workers {workers} and --devices {devices} disagree: one worker runs per device (leave out --workers)"
        )
    return ScaleOut(backend, len(names), names)


def retried_text(reasons: Sequence[str]) -> str:
    """', retried N (how many for each reason)' for a summary line; empty when no unit was retried."""
    if not reasons:
        return ""
    counts = ", ".join(f"{count} {reason}" for reason, count in sorted(Counter(reasons).items()))
    return f", retried {len(reasons)} ({counts})"


def run_units(
    units: Sequence[Unit],
    work: Callable[[Upscaler, Unit], Result],
    request: UpscaleRequest,
    scale_out: ScaleOut = LOCAL,
    on_done: Callable[[int, Result], None] | None = None,
    *,
    upscaler: Upscaler | None = None,
    on_retry: Callable[[int, str], None] | None = None,
    output: Path | None = None,
) -> list[Result]:
    """`work(upscaler, unit)` for every unit; the results in unit order.

    `upscaler`: one already built from `request`, used when the units run in this process (not rebuilt).
    `on_retry(index, reason)` is called when a unit's worker was lost and the unit goes to another one; on Ray,
    every actor first checks that it can write into `output` (the folder the units write under).
    """
    if not units:
        return []
    if scale_out.backend not in BACKENDS:
        raise ScaleOutError(f"--backend {scale_out.backend!r} is not one of {', '.join(BACKENDS)}")
    if scale_out.backend == "ray":
        from .ray_actors import run_on_ray

        return run_on_ray(units, work, request, scale_out, on_done, on_retry, output)
    if scale_out.workers > 1:
        from .processes import run_in_processes

        return run_in_processes(units, work, request, scale_out, on_done, on_retry)
    upscaler = upscaler or Upscaler.from_request(request.on(scale_out.devices[0] if scale_out.devices else None))
    results = []
    for index, unit in enumerate(units):
        results.append(work(upscaler, unit))
        if on_done:
            on_done(index, results[-1])
    return results
