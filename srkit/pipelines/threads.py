"""Worker threads joined by bounded queues, with one stop event and the first error: the pipelines' only threading.

A `Workers` block starts threads that pass items through `Pipe`s (bounded queues whose put/get give up as soon
as the run is stopping). A worker that fails sets stop and its error is re-raised on the calling thread when the
block ends; an exception on the calling thread (Ctrl-C included) sets stop too. Every join is bounded, so a
failure ends the run within seconds even when every queue is full. `signals_interrupt()` turns SIGTERM and SIGHUP
into the same KeyboardInterrupt as Ctrl-C, so every catchable termination cleans up alike.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

POLL_SECONDS = 0.1  # how often a blocked put/get looks at the stop event
JOIN_SECONDS = 4.0  # how long a stopping run waits for its workers, all together
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_END = object()


class Stopped(Exception):
    """Raised by a Pipe inside a worker (or the caller) when the run is stopping."""


class Pipe:
    """A bounded queue between two workers; iterate it to get items until the producer calls close()."""

    def __init__(self, stop: threading.Event, depth: int) -> None:
        self.items: queue.Queue = queue.Queue(depth)
        self.stop = stop

    def put(self, item: Any) -> None:
        """Queue `item`, waiting while the queue is full; raises Stopped if the run stops meanwhile."""
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=POLL_SECONDS)
                return
            except queue.Full:
                continue
        raise Stopped

    def close(self) -> None:
        """Tell the consumer that no more items come."""
        self.put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._get()
            if item is _END:
                return
            yield item

    def _get(self) -> Any:
        while not self.stop.is_set():
            try:
                return self.items.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
        raise Stopped


class Workers:
    """Context manager owning a run's threads, its stop event and its first error."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def pipe(self, depth: int) -> Pipe:
        """A bounded queue that gives up when this run stops."""
        return Pipe(self.stop, depth)

    def start(self, name: str, work: Callable[..., None], *args: Any) -> None:
        """Run work(*args) on a new daemon thread; if it raises, the run stops and the error is kept."""

        def run() -> None:
            try:
                work(*args)
            except Stopped:
                pass
            except BaseException as error:  # handed to the calling thread when the block ends
                with self._lock:
                    if self.error is None:
                        self.error = error
                self.stop.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        """Wait for every worker to finish its work; raises the first worker error (the others are stopped)."""
        for thread in self.threads:
            while thread.is_alive() and not self.stop.is_set():
                thread.join(POLL_SECONDS)
        if self.error is not None or self.stop.is_set():
            raise Stopped

    def alive(self) -> list[str]:
        """Names of workers still running (after a stop: those that did not end within JOIN_SECONDS)."""
        return [thread.name for thread in self.threads if thread.is_alive()]

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if kind is not None:
            self.stop.set()
        deadline = time.monotonic() + JOIN_SECONDS
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.error is not None and (kind is None or issubclass(kind, Stopped)):
            raise self.error
        return False


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise KeyboardInterrupt on the main thread, as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _interrupt) for signum in TERMINATION_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
