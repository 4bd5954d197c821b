"""A gate for Ray fault tests: a unit that stops mid-write and waits for the test to kill its worker or node.
Its own module (not a test module), so that Ray workers and a driver subprocess import it by name."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import ray

from srkit.io.atomic import atomic_path

FAULT_SECONDS = 120.0  # the longest a gated unit or the test waits for the other side of a fault


def _unit_name(unit) -> str:
    """A photo unit's file name, or a segment unit's 'segment N'."""
    return unit.job.source.name if hasattr(unit, "job") else f"segment {unit.index}"


def gated(gate: str, after: int, node: str | None, work, upscaler, unit):
    """`work(upscaler, unit)`, logged in `gate`; the first unit to start once `after` units are done (on `node`
    when given) instead writes its node id and pid to `gate`/started and waits there for its fault (a photo in
    the middle of writing its output: a temporary file that the fault leaves behind). Until then, units that
    start on other nodes wait, so that `node` is sure to get one."""
    folder = Path(gate)
    here = ray.get_runtime_context().get_node_id()
    done = (folder / "done.log").read_text().count("\n") if (folder / "done.log").exists() else 0
    with open(folder / "runs.log", "a") as log:
        log.write(_unit_name(unit) + "\n")
    if done >= after and node in (None, here):
        try:
            claim = os.open(folder / "started", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            claim = None
        if claim is not None:
            writing = atomic_path(unit.job.target) if hasattr(unit, "job") else contextlib.nullcontext()
            with writing as partial:
                if partial is not None:
                    partial.parent.mkdir(parents=True, exist_ok=True)
                    partial.write_bytes(b"half a photo")
                os.write(claim, json.dumps({"node": here, "pid": os.getpid()}).encode())
                os.close(claim)
                deadline = time.monotonic() + FAULT_SECONDS
                while time.monotonic() < deadline:
                    time.sleep(0.05)
            raise RuntimeError("the test never ended this unit's worker")
    if done >= after and node not in (None, here):
        wait_for_gate(folder)
    result = work(upscaler, unit)
    with open(folder / "done.log", "a") as log:
        log.write(_unit_name(unit) + "\n")
    return result


def wait_for_gate(gate: Path) -> dict:
    """What the gated unit wrote once it began waiting for its fault (bounded wait)."""
    deadline = time.monotonic() + FAULT_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return json.loads((gate / "started").read_text())
        time.sleep(0.05)
    raise AssertionError("no unit reached the gate")
