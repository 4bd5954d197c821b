"""Units of work on Ray actors: one per GPU (num_gpus=1) on CUDA, else CPU actors that split the cores.

Each actor holds its Upscaler (built once, on its first unit) and runs `work(upscaler, unit)`; the units name
their output paths, so results are written by the actors into the shared output folder and only small results
come back. Without an address a local Ray instance is started (the embedded default) and shut down at the end;
an instance that is already running in this process (a caller's, the tests') is used and left running. The
driver keeps one unit in flight per actor and calls `on_done` as results arrive. Every actor first checks that
it sees the driver's output folder and can write there (no unit runs before the first actors have); a unit
whose actor is lost (its worker process killed, its node gone) is handed to the next free actor and a new actor
is started in its place, up to UNIT_TRIES runs of the unit (remote.Tries); a unit's own error is not retried.
On the first error or a Ctrl-C the driver stops the actors: those on this machine with SIGTERM (Ray exits the
worker gracefully, so temp-then-rename writes clean up), all with ray.kill after JOIN_SECONDS. srkit's
environment (SRKIT_*, TRITON_*) and the driver's working folder (where it exists on the actor's machine:
relative paths in units) travel with the actors. `ray` is the optional extra srkit[ray].
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..request import UpscaleRequest
from .remote import NODE_LOST, WORKER_DIED, Tries, WorkerError, cpu_cores, host_upscaler, raise_remote
from .threads import JOIN_SECONDS, POLL_SECONDS, TERMINATION_SIGNALS
from .types import ScaleOut, ScaleOutError

FORWARDED_ENV = ("SRKIT_", "TRITON_")
CONNECT_SECONDS = 5.0  # how long a --ray-address may take to accept a connection
START_SECONDS = 300.0  # how long the driver waits for an actor to start while no unit is running
PROBE_PREFIX = ".srkit-probe-"  # the files that check that every node can write into the output folder


class _Host:
    """A Ray actor's state: its Upscaler, built from the request on the first unit."""

    def __init__(self, request: UpscaleRequest, device: str, threads: int, folder: str) -> None:
        self.request, self.device, self.threads = request, device, threads
        self.upscaler = None
        if os.path.isdir(folder):  # the driver's working folder, so that relative paths in units mean the same
            os.chdir(folder)

    def where(self, folder: str | None, token: str | None) -> tuple[str, int]:
        """(Ray node id, process id) of this actor, so the driver can stop it with a signal, once it has checked
        that it can write into the output `folder` (when one is given)."""
        import ray

        if folder is not None and token is not None:
            probe_output(Path(folder), token)
        return ray.get_runtime_context().get_node_id(), os.getpid()

    def run(self, work: Callable, unit: Any) -> Any:
        """work(upscaler, unit) (Ray hands an error back to the driver inside a RayTaskError)."""
        if self.upscaler is None:
            self.upscaler = host_upscaler(self.request, self.device, self.threads)
        return work(self.upscaler, unit)


def import_ray():
    """The ray module, or a one-line error naming the extra that brings it."""
    try:
        import ray
    except ImportError:
        raise ScaleOutError("--backend ray needs Ray, which is not installed here: pip install 'srkit[ray]'") from None
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
        raise WorkerError(
            f"--ray-address {address}: no Ray cluster answers there ({error.strerror or error}); "
            "check the address (`ray status` on the head node)"
        ) from None


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


def probe_output(folder: Path, token: str) -> None:
    """Check, on a node, that `folder` is the driver's (its probe file holds `token`) and takes a new file; a
    one-line ScaleOutError naming the node otherwise."""
    import ray

    node = f"the Ray node at {ray.util.get_node_ip_address()} ({ray.get_runtime_context().get_node_id()[:8]})"
    fix = "a run on several machines needs --output on a file system that every node sees (a shared mount)"
    try:
        seen = (folder / f"{PROBE_PREFIX}{token}").read_text()
    except OSError:
        seen = None
    if seen != token:
        raise ScaleOutError(f"--output {folder}: {node} does not see the driver's files there; {fix}")
    mine = folder / f"{PROBE_PREFIX}{token}-{os.getpid()}"
    try:
        mine.write_bytes(b"")
        mine.unlink()
    except OSError as error:
        raise ScaleOutError(
            f"--output {folder}: {node} cannot write there ({error.strerror or error}); {fix}"
        ) from None


@contextlib.contextmanager
def output_probe(folder: Path | None):
    """The token of a probe file the driver keeps in `folder` while the run lasts (None without a folder)."""
    if folder is None:
        yield None
        return
    token = uuid.uuid4().hex
    mark = folder / f"{PROBE_PREFIX}{token}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mark.write_text(token)
    except OSError as error:
        raise ScaleOutError(f"--output {folder}: cannot write there ({error.strerror or error})") from None
    try:
        yield token
    finally:
        mark.unlink(missing_ok=True)


def _lost(error: Exception) -> tuple[str, str]:
    """Why a Ray actor stopped (NODE_LOST or WORKER_DIED), and Ray's first line on it."""
    text = str(error)
    reason = NODE_LOST if "node has died" in text or "node is dead" in text else WORKER_DIED
    return reason, text.strip().splitlines()[0]


class _Run:
    """The actors of one run, the unit each is on, and the tries of each unit whose actor was lost."""

    def __init__(
        self,
        ray,
        work: Callable,
        request: UpscaleRequest,
        scale_out: ScaleOut,
        units: Sequence,
        on_retry: Callable[[int, str], None] | None,
        folder: Path | None,
        token: str | None,
    ) -> None:
        self.ray, self.work, self.units = ray, work, units
        self.todo = deque(range(len(units)))
        self.results: list = [None] * len(units)
        self.tries = Tries(len(units), on_retry)
        self.host, self.args, count = _host(ray, request, scale_out, len(units))
        self.probe = (None if folder is None else str(folder.absolute()), token)
        self.actors: dict[int, Any] = {}
        self.starting: dict[Any, int] = {}  # ref of an actor's where() -> actor number
        self.places: dict[int, tuple[str, int]] = {}  # actor number -> (node id, pid), once started
        self.idle: set[int] = set()  # started actors with no unit
        self.pending: dict[Any, tuple[int, int]] = {}  # ref of a unit -> (actor number, unit index)
        for _ in range(count):
            self.start()
        self.opening = set(self.actors)  # the first actors: no unit runs before each has started (or is lost)

    def start(self) -> None:
        """Start one more actor; it gets a unit once it has started and probed the output folder."""
        number = len(self.actors)
        self.actors[number] = self.host.remote(*self.args)
        self.starting[self.actors[number].where.remote(*self.probe)] = number

    def give(self, number: int) -> None:
        """Hand actor `number` the next unit; it is idle while none is left."""
        if self.todo:
            index = self.todo.popleft()
            self.pending[self.actors[number].run.remote(self.work, self.units[index])] = (number, index)
            self.idle.discard(number)
        else:
            self.idle.add(number)

    def lose(self, number: int, index: int | None, error: Exception) -> None:
        """Actor `number` stopped (on unit `index`): the unit goes to an idle actor or waits for the next free one,
        and another actor is started in its place (Tries stops the run once the unit has lost UNIT_TRIES). An actor
        lost before its first unit is not replaced; the run stops when no actor is left."""
        self.ray.kill(self.actors[number])
        self.places.pop(number, None)
        self.idle.discard(number)
        self.opened(number)
        if index is None:
            if not self.places and not self.starting:
                reason, detail = _lost(error)
                raise WorkerError(
                    f"every Ray actor stopped before its first unit (last: {reason}: {detail}); the run is stopped"
                )
            return
        self.tries.lost(index, *_lost(error))
        self.todo.appendleft(index)
        if self.idle:
            self.give(min(self.idle))
        self.start()  # it starts where the cluster has room (not on a lost node)

    def run(self, on_done: Callable[[int, Any], None] | None) -> list:
        """Every unit to a started actor until all are done; the results in unit order."""
        ray = self.ray
        waiting_since = time.monotonic()
        while self.pending or self.todo:
            ready, _ = ray.wait([*self.pending, *self.starting], num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                if ref in self.starting:
                    self.started(ref)
                    continue
                number, index = self.pending.pop(ref)
                try:
                    self.results[index] = ray.get(ref)
                except ray.exceptions.RayTaskError as error:
                    raise_remote(error.cause if error.cause is not None else error, str(error))
                except ray.exceptions.RayActorError as error:
                    self.lose(number, index, error)
                    continue
                self.give(number)
                if on_done:
                    on_done(index, self.results[index])
            if self.pending or ready:
                waiting_since = time.monotonic()
            elif time.monotonic() - waiting_since > START_SECONDS:
                raise WorkerError(
                    f"no Ray actor could start within {START_SECONDS:.0f} s for the {len(self.todo)} "
                    "units left (has the cluster lost its nodes? `ray status`); the run is stopped"
                )
        return self.results

    def started(self, ref) -> None:
        """An actor's where() came back: it takes a unit, or it was lost before it began (a probe error is
        raised as the one line it is)."""
        number = self.starting.pop(ref)
        try:
            self.places[number] = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:
            raise_remote(error.cause if error.cause is not None else error, str(error))
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorUnschedulableError) as error:
            self.lose(number, None, error)  # it never began (its node went away, or it cannot be placed)
            return
        if self.opening:
            self.opened(number)
        else:
            self.give(number)

    def opened(self, number: int) -> None:
        """Actor `number` is no longer starting; once no first actor is, every started actor takes a unit."""
        if number in self.opening:
            self.opening.discard(number)
            if not self.opening:
                for started in self.places:
                    self.give(started)

    def stop(self, finished: bool) -> None:
        """Stop the actors: after a failure, those busy on this node with SIGTERM first (their writes clean up);
        then ray.kill all."""
        if not finished:
            here = self.ray.get_runtime_context().get_node_id()
            busy = {number for number, _ in self.pending.values()}
            for number in busy:
                node, pid = self.places.get(number, (None, 0))
                if node == here:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            if self.pending:
                self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=JOIN_SECONDS)
        for actor in self.actors.values():
            self.ray.kill(actor)


def _host(ray, request: UpscaleRequest, scale_out: ScaleOut, count: int) -> tuple[Any, tuple, int]:
    """The actor class with its resources, its constructor arguments, and how many actors to start: one per GPU
    (at most --workers, at most one per unit) on CUDA, else CPU actors that split the cores (at most one node's
    each)."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), resources.get("CPU", 1.0)
    on_gpu = request.device.startswith("cuda") if request.device else gpus > 0
    wanted = scale_out.workers or (gpus if on_gpu else 1)
    if on_gpu and wanted > gpus:
        raise ScaleOutError(f"--workers {wanted}: the Ray cluster has {gpus} GPUs, and each actor takes one")
    count = min(wanted, count)
    largest = max((node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]), default=cpus)
    share = min(cpus / count, largest)  # an actor runs on one node: it cannot take more cores than one node has
    threads = max(1, math.floor(share))
    needs = {"num_gpus": 1} if on_gpu else {"num_cpus": share if share < 1 else math.floor(share)}
    env = {name: value for name, value in os.environ.items() if name.startswith(FORWARDED_ENV)}
    host = ray.remote(_Host).options(**needs, runtime_env={"env_vars": env})
    return host, (request, "cuda" if on_gpu else "cpu", threads, os.getcwd()), count


def run_on_ray(
    units: Sequence,
    work: Callable,
    request: UpscaleRequest,
    scale_out: ScaleOut,
    on_done: Callable[[int, Any], None] | None,
    on_retry: Callable[[int, str], None] | None = None,
    output: Path | None = None,
) -> list:
    """`work(upscaler, unit)` for every unit on Ray actors; the results in unit order. Every actor first checks
    that it can write into `output` (the folder the units write under) where one is given."""
    ray = import_ray()
    started = _connect(ray, scale_out.ray_address)
    try:
        with output_probe(output) as token:
            run = _Run(ray, work, request, scale_out, units, on_retry, output, token)
            finished = False
            try:
                results = run.run(on_done)
                finished = True
            finally:
                run.stop(finished)
        return results
    finally:
        if started:
            ray.shutdown()
