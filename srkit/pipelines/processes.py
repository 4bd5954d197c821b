"""Units of work on local worker processes (spawned, one per device where several are named).

Each worker builds its Upscaler once, with its share of the CPU cores, then takes one unit at a time from its
own inbox and sends back the pickled result. The driver hands the next unit to whichever worker finishes first,
calls `on_done` as results arrive, hands the unit of a worker that died (killed, out of memory, crashed) to a
new worker in its place (remote.Tries: at most UNIT_TRIES runs of a unit), and stops everything on the first
error, on a unit that lost its worker UNIT_TRIES times, and on Ctrl-C / SIGTERM (KeyboardInterrupt here):
workers ignore SIGINT and are stopped with SIGTERM, which they turn into KeyboardInterrupt so that
temp-then-rename writes clean up, then killed if they are not gone within JOIN_SECONDS. A worker whose driver
has gone away (SIGKILL) stops when it next waits for a unit.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..request import UpscaleRequest
from .remote import WORKER_DIED, Tries, host_upscaler, portable, raise_remote, worker_threads
from .threads import JOIN_SECONDS, POLL_SECONDS
from .types import ScaleOut

PARENT_CHECK_SECONDS = 1.0  # how often an idle worker checks that its driver is still there


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _next_unit(inbox, parent: int) -> bytes | None:
    """The next pickled unit, or None when the driver says stop or has gone away."""
    while os.getppid() == parent:
        try:
            return inbox.get(timeout=PARENT_CHECK_SECONDS)
        except queue.Empty:
            continue
    return None


def _serve(
    number: int, request: UpscaleRequest, device: str | None, threads: int, work: Callable, inbox, outbox, parent: int
) -> None:
    """A worker process: build the Upscaler, then run units until told to stop; the first error ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the driver, which stops the workers
    signal.signal(signal.SIGTERM, _interrupt)
    index = None
    try:
        upscaler = host_upscaler(request, device, threads)
        while (item := _next_unit(inbox, parent)) is not None:
            index, unit = pickle.loads(item)
            outbox.put(pickle.dumps((number, index, True, work(upscaler, unit), None)))
            index = None
    except KeyboardInterrupt:
        return
    except BaseException as error:  # handed to the driver, which stops the run and raises it
        outbox.put(pickle.dumps((number, index, False, portable(error), traceback.format_exc())))


class _Worker:
    """One worker process, its inbox, and the unit it is on (None while idle)."""

    def __init__(
        self, context, number: int, request: UpscaleRequest, device: str | None, threads: int, work: Callable, outbox
    ) -> None:
        self.number, self.place = number, device
        self.device = device or request.device or "the default device"
        self.inbox = context.Queue()
        self.process = context.Process(
            target=_serve,
            name=f"srkit-worker-{number}",
            daemon=True,
            args=(number, request, device, threads, work, self.inbox, outbox, os.getpid()),
        )
        self.process.start()
        self.unit: int | None = None

    def retire(self) -> None:
        """After the process died: reap it and close its inbox."""
        self.process.join()
        self.inbox.cancel_join_thread()
        self.inbox.close()

    def give(self, todo: deque) -> None:
        """Send the next unit (pickled here, so a unit that cannot travel fails in the driver), or stop."""
        if todo:
            index, unit = todo.popleft()
            self.inbox.put(pickle.dumps((index, unit)))
            self.unit = index
        else:
            self.inbox.put(None)
            self.unit = None


def _devices(request: UpscaleRequest, scale_out: ScaleOut, count: int) -> list[str | None]:
    """The device of each worker: one per named device, else the request's for all (at most one per unit)."""
    if scale_out.devices:
        return list(scale_out.devices[:count])
    return [request.device] * min(scale_out.workers, count)


def _receive(outbox, pool: list[_Worker]) -> tuple | _Worker:
    """The next message from a worker, or a busy worker that died without sending one."""
    suspects: set[int] = set()
    while True:
        try:
            return pickle.loads(outbox.get(timeout=POLL_SECONDS))
        except queue.Empty:
            dead = {worker.number for worker in pool if worker.unit is not None and not worker.process.is_alive()}
            for worker in pool:
                if worker.number in dead & suspects:  # dead on two polls in a row: its last message is not coming
                    return worker
            suspects = dead


def _stop(pool: list[_Worker], finished: bool) -> None:
    """End every worker: after a finished run they exit by themselves; otherwise SIGTERM, then SIGKILL."""
    if not finished:
        for worker in pool:
            if worker.process.is_alive():
                worker.process.terminate()
    deadline = time.monotonic() + JOIN_SECONDS
    for worker in pool:
        worker.process.join(max(0.0, deadline - time.monotonic()))
    for worker in pool:
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.inbox.cancel_join_thread()
        worker.inbox.close()


def run_in_processes(
    units: Sequence,
    work: Callable,
    request: UpscaleRequest,
    scale_out: ScaleOut,
    on_done: Callable[[int, Any], None] | None,
    on_retry: Callable[[int, str], None] | None = None,
) -> list:
    """`work(upscaler, unit)` for every unit on local worker processes; the results in unit order. A unit whose
    worker died goes first in line, and another worker starts in its place (up to UNIT_TRIES runs, Tries)."""
    context = multiprocessing.get_context("spawn")
    devices = _devices(request, scale_out, len(units))
    threads = worker_threads(len(devices))
    outbox = context.Queue()
    todo = deque(enumerate(units))
    results: list = [None] * len(units)
    tries = Tries(len(units), on_retry)
    pool: list[_Worker] = []
    finished = False
    try:
        for number, device in enumerate(devices):
            pool.append(_Worker(context, number, request, device, threads, work, outbox))
            pool[-1].give(todo)
        while any(worker.unit is not None for worker in pool):
            message = _receive(outbox, pool)
            if isinstance(message, _Worker):
                dead, index = message, message.unit
                assert index is not None, "_receive returns only a worker that was busy"
                tries.lost(
                    index,
                    WORKER_DIED,
                    f"worker {dead.number} ({dead.device}) stopped with exit code {dead.process.exitcode}",
                )
                dead.retire()
                todo.appendleft((index, units[index]))
                pool[dead.number] = _Worker(context, dead.number, request, dead.place, threads, work, outbox)
                pool[dead.number].give(todo)
                continue
            number, index, ok, result, trace = message
            if not ok:
                raise_remote(result, trace)
            results[index] = result
            pool[number].give(todo)
            if on_done:
                on_done(index, result)
        finished = True
    finally:
        _stop(pool, finished)
        outbox.cancel_join_thread()
        outbox.close()
    return results
