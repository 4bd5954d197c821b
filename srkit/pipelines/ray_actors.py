"""Units of work on Ray actors: one per GPU (num_gpus=1) on CUDA, else CPU actors that split the cores.

Each actor holds its Upscaler (built once, on its first unit) and runs `work(upscaler, unit)`; the units name
their output paths, so results are written by the actors into the shared output folder and only small results
come back. Without an address a local Ray instance is started (the embedded default) and shut down at the end;
an instance that is already running in this process (a caller's, the tests') is used and left running. The
driver keeps one unit in flight per actor, calls `on_done` as results arrive, and on the first error or a
Ctrl-C stops the actors: those on this machine with SIGTERM (Ray exits the worker gracefully, so temp-then-rename
writes clean up), all with ray.kill after JOIN_SECONDS. srkit's environment (SRKIT_*, TRITON_*) and the
driver's working folder (where it exists on the actor's machine: relative paths in units) travel with the
actors. `ray` is the optional extra srkit[ray].
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
from collections import deque
from typing import Any, Callable, Sequence

from .scaleout import ScaleOut, ScaleOutError, UpscalerSpec, WorkerError, cpu_cores, host_upscaler, raise_remote
from .workers import JOIN_SECONDS, POLL_SECONDS, TERMINATION_SIGNALS

FORWARDED_ENV = ("SRKIT_", "TRITON_")
CONNECT_SECONDS = 5.0  # how long a --ray-address may take to accept a connection


class _Host:
    """A Ray actor's state: its Upscaler, built from the spec on the first unit."""

    def __init__(self, spec: UpscalerSpec, device: str, threads: int, folder: str) -> None:
        self.spec, self.device, self.threads = spec, device, threads
        self.upscaler = None
        if os.path.isdir(folder):  # the driver's working folder, so that relative paths in units mean the same
            os.chdir(folder)

    def where(self) -> tuple[str, int]:
        """(Ray node id, process id) of this actor, so the driver can stop it with a signal."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def run(self, work: Callable, unit: Any) -> Any:
        """work(upscaler, unit) (Ray hands an error back to the driver inside a RayTaskError)."""
        if self.upscaler is None:
            self.upscaler = host_upscaler(self.spec, self.device, self.threads)
        return work(self.upscaler, unit)


def import_ray():
    """The ray module, or a one-line error naming the extra that brings it."""
    try:
        import ray
    except ImportError:
        raise ScaleOutError("--backend ray needs Ray, which is not installed here: pip install 'srkit[ray]'") \
            from None
    return ray


def _check_reachable(address: str) -> None:
    """Refuse in one line a HOST:PORT (or ray://HOST:PORT) that takes no connection: ray.init would retry for
    minutes. 'auto' and other forms are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise WorkerError(f"--ray-address {address}: no Ray cluster answers there ({error.strerror or error}); "
                          "check the address (`ray status` on the head node)") from None


def _connect(ray, address: str | None) -> bool:
    """Join the cluster at `address`, else start a local instance; True when this call started or joined it."""
    if ray.is_initialized():
        return False
    if address:
        _check_reachable(address)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, *TERMINATION_SIGNALS)}
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=cpu_cores(), include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise WorkerError(f"cannot start or join {where}: {str(error).splitlines()[0]}") from None
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in handlers.items():  # ray.init installs its own (SIGTERM: exit 1, no clean-up)
                signal.signal(signum, handler)
    return True


def _actors(ray, spec: UpscalerSpec, scale_out: ScaleOut, count: int) -> list:
    """The actors: one per GPU (at most --workers, at most one per unit) on CUDA, else CPU actors."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), resources.get("CPU", 1.0)
    on_gpu = spec.device.startswith("cuda") if spec.device else gpus > 0
    wanted = scale_out.workers or (gpus if on_gpu else 1)
    if on_gpu and wanted > gpus:
        raise ScaleOutError(f"--workers {wanted}: the Ray cluster has {gpus} GPUs, and each actor takes one")
    count = min(wanted, count)
    share = cpus / count
    threads = max(1, math.floor(share))
    needs = {"num_gpus": 1} if on_gpu else {"num_cpus": share if share < 1 else math.floor(share)}
    env = {name: value for name, value in os.environ.items() if name.startswith(FORWARDED_ENV)}
    host = ray.remote(_Host).options(**needs, runtime_env={"env_vars": env})
    return [host.remote(spec, "cuda" if on_gpu else "cpu", threads, os.getcwd()) for _ in range(count)]


def _result(ray, ref, number: int, index: int) -> Any:
    """The result of one unit; a unit's error raised as itself, a dead actor as one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        raise_remote(error.cause if error.cause is not None else error, str(error))
    except ray.exceptions.RayActorError as error:
        reason = str(error).strip().splitlines()[0]
        raise WorkerError(f"Ray actor {number} stopped while on unit {index} ({reason}); the run is stopped") \
            from None


def _stop(ray, actors: list, places: list, busy: list) -> None:
    """Stop the actors: busy ones on this node with SIGTERM first (their writes clean up), then ray.kill all."""
    here = ray.get_runtime_context().get_node_id()
    ready, _ = ray.wait(places, num_returns=len(places), timeout=0)
    for node, pid in ray.get(ready):
        if node == here:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if busy:
        ray.wait(busy, num_returns=len(busy), timeout=JOIN_SECONDS)
    for actor in actors:
        ray.kill(actor)


def run_on_ray(units: Sequence, work: Callable, spec: UpscalerSpec, scale_out: ScaleOut,
               on_done: Callable[[int, Any], None] | None) -> list:
    """`work(upscaler, unit)` for every unit on Ray actors; the results in unit order."""
    ray = import_ray()
    started = _connect(ray, scale_out.ray_address)
    try:
        actors = _actors(ray, spec, scale_out, len(units))
        places = [actor.where.remote() for actor in actors]
        todo = deque(enumerate(units))
        results: list = [None] * len(units)
        pending: dict = {}  # ref -> (actor number, unit index)

        def give(number: int) -> None:
            if todo:
                index, unit = todo.popleft()
                pending[actors[number].run.remote(work, unit)] = (number, index)

        finished = False
        try:
            for number in range(len(actors)):
                give(number)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    number, index = pending.pop(ref)
                    results[index] = _result(ray, ref, number, index)
                    give(number)
                    if on_done:
                        on_done(index, results[index])
            finished = True
        finally:
            if finished:
                for actor in actors:
                    ray.kill(actor)
            else:
                _stop(ray, actors, places, list(pending))
        return results
    finally:
        if started:
            ray.shutdown()
