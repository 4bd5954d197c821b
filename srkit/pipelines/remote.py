"""What the runners of units on other processes share (pipelines.processes, pipelines.ray_actors): a worker's
Upscaler with its share of the cores, errors that travel back to the driver, and the tries of a unit whose worker
was lost (at most UNIT_TRIES runs; finished units are never redone)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from tqdm import tqdm

from ..errors import SrkitError
from ..request import UpscaleRequest
from ..upscaler import Upscaler

UNIT_TRIES = 3  # a unit whose worker (its process, or on Ray its node) is lost runs at most this often
WORKER_DIED, NODE_LOST = "worker process died", "node lost"  # why a unit was retried, as summaries count it


class WorkerError(SrkitError):
    """A worker process or Ray actor stopped without finishing its unit (killed, out of memory, crashed)."""


class RemoteTraceback(Exception):
    """The traceback of an error raised in a worker, attached as the cause of the error raised in the driver."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\n(in the worker)\n{self.text}"


def cpu_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_threads(workers: int) -> int:
    """CPU threads per worker when `workers` share this machine's cores (at least one)."""
    return max(1, cpu_cores() // workers)


def host_upscaler(request: UpscaleRequest, device: str | None, threads: int) -> Upscaler:
    """A worker's Upscaler on `device` (None: the request's), with torch's (and so OpenVINO's) CPU threads set to
    the worker's share of the cores."""
    import torch

    torch.set_num_threads(threads)
    return Upscaler.from_request(request.on(device))


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
            raise WorkerError(
                f"unit {index} lost its worker {UNIT_TRIES} times (last: {reason}: {detail}); the run is stopped"
            )
        tqdm.write(
            f"srkit: warning: unit {index}: its worker stopped ({reason}: {detail}); handed to another "
            f"worker (try {self.lost_runs[index] + 1} of {UNIT_TRIES})",
            file=sys.stderr,
        )
        if self.on_retry:
            self.on_retry(index, reason)
