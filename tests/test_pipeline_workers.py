"""The worker helper and the pipelines on it: a failure anywhere, with every queue full, ends the run in seconds
with one line, a non-zero status and nothing under the final name; finished photos waiting to be written are
bounded; SIGTERM/SIGHUP raise KeyboardInterrupt like Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image

import srkit.io.video
import srkit.pipelines.photos
import srkit.upscaler
from srkit.cli import main
from srkit.errors import SrkitError
from srkit.pipelines.workers import JOIN_SECONDS, Workers, signals_interrupt

from .test_video import models  # noqa: F401  (fixture: 'tiny' x3 and 'nearest' x4 user models)
from .test_video_io import make_clip

FAULT_SECONDS = 5  # the bound from a fault to the end of the run


def test_a_failing_worker_stops_a_caller_blocked_on_a_full_queue():
    began = time.monotonic()
    with pytest.raises(ZeroDivisionError):
        with Workers() as workers:
            items = workers.pipe(1)

            def consume() -> None:
                for _ in items:
                    time.sleep(0.05)
                    1 / 0

            workers.start("consumer", consume)
            for i in range(1000):  # blocks on the full queue until the consumer's failure stops the run
                items.put(i)
    assert time.monotonic() - began < 1 and not workers.alive()


def test_a_failing_caller_stops_workers_blocked_on_a_full_queue():
    with pytest.raises(KeyError):
        with Workers() as workers:
            items = workers.pipe(2)
            workers.start("producer", lambda: [items.put(i) for i in range(10 ** 9)])
            time.sleep(0.2)
            raise KeyError("model failed")
    assert not workers.alive() and JOIN_SECONDS <= FAULT_SECONDS


def test_termination_signals_raise_keyboard_interrupt_and_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with pytest.raises(KeyboardInterrupt):
            with signals_interrupt():
                os.kill(os.getpid(), signum)
                time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before


def _slow_then(fail_at: int, error: BaseException, real, delay: float = 0.3):
    """Wrap `real` so that call `fail_at` raises `error`; earlier calls are slow, so the queues before it fill."""
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise error
        time.sleep(delay)
        return real(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize("where", ["encoder", "decoder", "model"])
def test_a_fault_with_full_queues_ends_fast_with_one_line(models, monkeypatch, capsys, where):
    clip = models / "clip.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=60)
    if where == "encoder":  # slow encoder: both queues fill, then it fails
        monkeypatch.setattr(srkit.io.video.VideoWriter, "write",
                            _slow_then(3, OSError(28, "No space left on device"), srkit.io.video.VideoWriter.write))
    elif where == "decoder":  # slow encoder fills the queues; the decoder fails at frame 30
        monkeypatch.setattr(srkit.io.video.VideoWriter, "write",
                            _slow_then(10 ** 6, None, srkit.io.video.VideoWriter.write, 0.05))
        monkeypatch.setattr(srkit.io.video.VideoReader, "_rgb",
                            _slow_then(30, srkit.io.video.VideoError("decoder failed"),
                                       srkit.io.video.VideoReader._rgb, 0))
    else:
        monkeypatch.setattr(srkit.io.video.VideoWriter, "write",
                            _slow_then(10 ** 6, None, srkit.io.video.VideoWriter.write, 0.05))
        monkeypatch.setattr(srkit.upscaler.Upscaler, "upscale_frames",
                            _slow_then(25, SrkitError("model failed"), srkit.upscaler.Upscaler.upscale_frames, 0))
    began = time.monotonic()
    # the clip's frames are all equal: --reuse-frames off sends every one through the model, as the counts assume
    code = main(["upscale", str(clip), "-o", str(models / "out.mkv"), "-m", "tiny", "--preset", "ultrafast",
                 "--reuse-frames", "off"])
    assert time.monotonic() - began < FAULT_SECONDS + 2  # includes the work before the fault
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srkit: error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in errors[0]
    assert not (models / "out.mkv").exists() and not [p for p in models.iterdir() if ".partial-" in p.name]
    assert threading.active_count() < 5, "worker threads were left running"


def test_finished_photos_waiting_for_a_slow_encoder_are_bounded(models, monkeypatch):
    folder = models / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (9, 11, 3), np.uint8)).save(folder / f"{i}.png")
    waiting = {"now": 0, "most": 0}
    lock = threading.Lock()
    real_upscale, real_write = srkit.upscaler.Upscaler.upscale, srkit.pipelines.photos.write_picture

    def upscale(self, image, on_progress=None):
        result = real_upscale(self, image, on_progress)
        with lock:
            waiting["now"] += 1
            waiting["most"] = max(waiting["most"], waiting["now"])
        return result

    def slow_write(*args, **kwargs):
        time.sleep(0.1)
        real_write(*args, **kwargs)
        with lock:
            waiting["now"] -= 1

    monkeypatch.setattr(srkit.upscaler.Upscaler, "upscale", upscale)
    monkeypatch.setattr(srkit.pipelines.photos, "write_picture", slow_write)
    assert main(["upscale", str(folder), "-o", str(models / "out"), "-m", "tiny"]) == 0
    assert len(list((models / "out").iterdir())) == 10
    # queued + the one being written + the one the model thread holds while the queue is full
    assert waiting["most"] <= srkit.pipelines.photos.WRITE_DEPTH + 2


def test_an_encoder_stuck_past_the_join_is_abandoned_not_closed_under_it(models, monkeypatch, capsys):
    clip = models / "clip.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=30)
    real = srkit.io.video.VideoWriter._write
    calls = {"n": 0}

    def stuck_on_third(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            time.sleep(JOIN_SECONDS + 4)  # an encode call that outlives the run's bounded join
        return real(self, *args)

    monkeypatch.setattr(srkit.io.video.VideoWriter, "_write", stuck_on_third)
    monkeypatch.setattr(srkit.upscaler.Upscaler, "upscale_frames",
                        _slow_then(12, SrkitError("model failed"), srkit.upscaler.Upscaler.upscale_frames, 0))
    began = time.monotonic()
    code = main(["upscale", str(clip), "-o", str(models / "out.mkv"), "-m", "tiny", "--preset", "ultrafast",
                 "--reuse-frames", "off"])  # every (equal) frame reaches the model, as the fault count assumes
    assert time.monotonic() - began < JOIN_SECONDS + 3
    assert code == 1 and "model failed" in capsys.readouterr().err
    assert not (models / "out.mkv").exists() and not [p for p in models.iterdir() if ".partial-" in p.name]
