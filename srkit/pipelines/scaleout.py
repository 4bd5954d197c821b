"""Run independent units of work (photo files, video segments) on one or many workers.

A unit is processed by `work(upscaler, unit)`, a module-level function (so it pickles), on a worker that built
its Upscaler once from an `UpscalerSpec`. Results come back in unit order and `on_done(index, result)` is called
in the driver as each unit finishes, so the caller can record progress (a resume manifest, a progress bar).
The output of a unit must not depend on which worker ran it.

Backends: one local worker runs in this process; `workers > 1` starts local worker processes (pipelines.processes,
one per device where `devices` are given); `backend='ray'` runs Ray actors (pipelines.ray_actors). The first
error a unit raises stops every worker and is raised here (a user's SrkitError as itself, a bug with the worker's
traceback as its cause); a unit that should only be reported must return its error as its result instead. A unit
whose worker is lost (its process killed or crashed, on Ray also its whole node) goes to another worker, up to
UNIT_TRIES runs (Tries); finished units are never redone.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from tqdm import tqdm

from ..errors import SrkitError
from ..upscaler import Upscaler

Unit = TypeVar("Unit")
Result = TypeVar("Result")
BACKENDS = ("local", "ray")
UNIT_TRIES = 3  # a unit whose worker (its process, or on Ray its node) is lost runs at most this often
WORKER_DIED, NODE_LOST = "worker process died", "node lost"  # why a unit was retried, as summaries count it


class ScaleOutError(SrkitError):
    """--workers / --devices / --backend options that cannot work here: one line, like a bad option."""

    exit_code = 2


class WorkerError(SrkitError):
    """A worker process or Ray actor stopped without finishing its unit (killed, out of memory, crashed)."""


class RemoteTraceback(Exception):
    """The traceback of an error raised in a worker, attached as the cause of the error raised in the driver."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\n(in the worker)\n{self.text}"


@dataclass(frozen=True)
class UpscalerSpec:
    """What builds an Upscaler: picklable, so every worker process or Ray actor builds its own, once."""

    model: str
    device: str | None = None
    dtype: str | None = None
    tile: int | str = "auto"
    batch: int | None = None
    """None: 4 on CUDA, 1 elsewhere."""
    outscale: float | None = None

    def build(self, device: str | None = None) -> Upscaler:
        """The Upscaler, on `device` when given (a worker's own device), else the spec's (default: first GPU)."""
        from ..environment import default_device

        where = device or self.device or str(default_device())
        batch = self.batch or (4 if where.startswith("cuda") else 1)
        return Upscaler(self.model, device=where, dtype=self.dtype, tile=self.tile, batch=batch,
                        outscale=self.outscale)


@dataclass(frozen=True)
class ScaleOut:
    """Where units run: 'local' (this process when workers == 1, else worker processes) or 'ray'."""

    backend: str = "local"
    workers: int = 1
    """Ray only: 0 means one actor per GPU of the cluster on CUDA, else one actor."""
    devices: tuple[str, ...] = ()
    """One worker per device where given (cuda:0, cuda:1, ...); empty: the spec's device for every worker."""
    ray_address: str | None = None

    @property
    def parallel(self) -> bool:
        """Whether units leave this process (worker processes or Ray), so they must pickle."""
        return self.backend != "local" or self.workers > 1


def cpu_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_threads(workers: int) -> int:
    """CPU threads per worker when `workers` share this machine's cores (at least one)."""
    return max(1, cpu_cores() // workers)


def host_upscaler(spec: UpscalerSpec, device: str | None, threads: int) -> Upscaler:
    """A worker's Upscaler, with torch's (and so OpenVINO's) CPU threads set to the worker's share of the cores."""
    import torch

    torch.set_num_threads(threads)
    return spec.build(device)


def portable(error: BaseException) -> BaseException:
    """`error` if it survives pickling (to travel from a worker to the driver), else a RuntimeError naming it."""
    import pickle

    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def raise_remote(error: BaseException, trace: str | None) -> None:
    """Raise a worker's error in the driver: a SrkitError as its one line, anything else with the worker's traceback."""
    if isinstance(error, SrkitError):
        raise error from None
    raise error from RemoteTraceback(trace or "")


def parse_devices(text: str) -> tuple[str, ...]:
    """The CUDA devices that --devices names (cuda:0,cuda:1,...), each present here and named once."""
    import torch

    names = tuple(part.strip() for part in text.split(","))
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name in names:
        kind, _, index = name.partition(":")
        if kind != "cuda" or not index.isdigit():
            raise ScaleOutError(f"--devices {text}: {name!r} is not cuda:INDEX; give CUDA devices like "
                                "cuda:0,cuda:1 (for CPU workers use --workers N)")
        if int(index) >= available:
            raise ScaleOutError(f"--devices {text}: there is no {name} here ({available} CUDA devices)")
    if len(set(names)) != len(names):
        raise ScaleOutError(f"--devices {text}: a device is named twice; one worker runs per device")
    return names


def scale_out_options(backend: str, workers: int | None, devices: str | None, ray_address: str | None,
                      device: str | None) -> ScaleOut:
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
        raise ScaleOutError(f"--workers {workers} and --devices {devices} disagree: one worker runs per device "
                            "(leave out --workers)")
    return ScaleOut(backend, len(names), names)


class Tries:
    """How often each unit lost its worker: the unit goes to another worker until it has lost UNIT_TRIES."""

    def __init__(self, count: int, on_retry: Callable[[int, str], None] | None) -> None:
        self.lost_runs = [0] * count
        self.on_retry = on_retry

    def lost(self, index: int, reason: str, detail: str) -> None:
        """Count a run of unit `index` whose worker was lost (`reason`: WORKER_DIED or NODE_LOST; `detail`: one
        line on how): a one-line WorkerError once it is the UNIT_TRIES-th, else a warning and `on_retry`."""
        self.lost_runs[index] += 1
        if self.lost_runs[index] >= UNIT_TRIES:
            raise WorkerError(f"unit {index} lost its worker {UNIT_TRIES} times (last: {reason}: {detail}); the "
                              "run is stopped")
        tqdm.write(f"srkit: warning: unit {index}: its worker stopped ({reason}: {detail}); handed to another "
                   f"worker (try {self.lost_runs[index] + 1} of {UNIT_TRIES})", file=sys.stderr)
        if self.on_retry:
            self.on_retry(index, reason)


def retried_text(reasons: Sequence[str]) -> str:
    """', retried N (how many for each reason)' for a summary line; empty when no unit was retried."""
    if not reasons:
        return ""
    counts = ", ".join(f"{count} {reason}" for reason, count in sorted(Counter(reasons).items()))
    return f", retried {len(reasons)} ({counts})"


def run_units(units: Sequence[Unit], work: Callable[[Upscaler, Unit], Result], spec: UpscalerSpec,
              scale_out: ScaleOut = ScaleOut(),
              on_done: Callable[[int, Result], None] | None = None, *,
              upscaler: Upscaler | None = None, on_retry: Callable[[int, str], None] | None = None,
              output: Path | None = None) -> list[Result]:
    """`work(upscaler, unit)` for every unit; the results in unit order.

    `upscaler`: one already built from `spec`, used when the units run in this process (not rebuilt).
    `on_retry(index, reason)` is called when a unit's worker was lost and the unit goes to another one; on Ray,
    every actor first checks that it can write into `output` (the folder the units write under).
    """
    if not units:
        return []
    if scale_out.backend not in BACKENDS:
        raise ScaleOutError(f"--backend {scale_out.backend!r} is not one of {', '.join(BACKENDS)}")
    if scale_out.backend == "ray":
        from .ray_actors import run_on_ray

        return run_on_ray(units, work, spec, scale_out, on_done, on_retry, output)
    if scale_out.workers > 1:
        from .processes import run_in_processes

        return run_in_processes(units, work, spec, scale_out, on_done, on_retry)
    upscaler = upscaler or spec.build(scale_out.devices[0] if scale_out.devices else None)
    results = []
    for index, unit in enumerate(units):
        results.append(work(upscaler, unit))
        if on_done:
            on_done(index, results[-1])
    return results
