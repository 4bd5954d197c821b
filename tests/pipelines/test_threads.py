"""The thread helper (pipelines.threads) and the pipelines on it: a failure anywhere, with every queue full, ends
the run with one line, a non-zero status and nothing under the final name, without draining the work still queued;
a stuck encoder is abandoned after the bounded join; finished photos waiting to be written are bounded;
SIGTERM/SIGHUP raise KeyboardInterrupt like Ctrl-C. Nothing here asserts a duration: under load every step stretches
alike, so each test counts the work done after the fault instead (a hang still ends at pytest's timeout)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image

import srkit.io.video.errors
import srkit.io.video.reader
import srkit.io.video.writer
import srkit.pipelines.photos
import srkit.pipelines.pump
import srkit.upscaler
from srkit.cli import main
from srkit.errors import SrkitError
from srkit.pipelines.threads import JOIN_SECONDS, Workers, signals_interrupt

from ..io.video._clips import make_clip
from ._media import make_video

CLIP_FRAMES = 60


def test_a_failing_worker_stops_a_caller_blocked_on_a_full_queue():
    sent = []
    with pytest.raises(ZeroDivisionError):
        with Workers() as workers:
            items = workers.pipe(1)

            def consume() -> None:
                for _ in items:
                    time.sleep(0.05)
                    raise ZeroDivisionError("the consumer failed")

            workers.start("consumer", consume)
            for i in range(1000):  # blocks on the full queue until the consumer's failure stops the run
                items.put(i)
                sent.append(i)
    # the consumer's one item, the queue's one place, and the put that was waiting when the run stopped
    assert len(sent) <= 3 and not workers.alive()


def test_a_failing_caller_stops_workers_blocked_on_a_full_queue():
    with pytest.raises(KeyError):
        with Workers() as workers:
            items = workers.pipe(2)
            workers.start("producer", lambda: [items.put(i) for i in range(10**9)])
            time.sleep(0.2)
            raise KeyError("model failed")
    assert not workers.alive()


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
def test_a_fault_with_full_queues_ends_the_run_with_one_line(models, monkeypatch, capsys, where):
    clip = models / "clip.mkv"
    make_video(clip, CLIP_FRAMES, size="48x32")
    decoded = {"n": 0}
    real_rgb = srkit.io.video.reader.VideoReader._rgb

    def counted_rgb(*args, **kwargs):
        decoded["n"] += 1
        return real_rgb(*args, **kwargs)

    monkeypatch.setattr(srkit.io.video.reader.VideoReader, "_rgb", counted_rgb)
    if where == "encoder":  # slow encoder: both queues fill, then it fails
        monkeypatch.setattr(
            srkit.io.video.writer.VideoWriter,
            "write",
            _slow_then(3, OSError(28, "No space left on device"), srkit.io.video.writer.VideoWriter.write),
        )
    elif where == "decoder":  # slow encoder fills the queues; the decoder fails at frame 30
        monkeypatch.setattr(
            srkit.io.video.writer.VideoWriter,
            "write",
            _slow_then(10**6, None, srkit.io.video.writer.VideoWriter.write, 0.05),
        )
        monkeypatch.setattr(
            srkit.io.video.reader.VideoReader,
            "_rgb",
            _slow_then(30, srkit.io.video.errors.VideoError("decoder failed"), counted_rgb, 0),
        )
    else:
        monkeypatch.setattr(
            srkit.io.video.writer.VideoWriter,
            "write",
            _slow_then(10**6, None, srkit.io.video.writer.VideoWriter.write, 0.05),
        )
        monkeypatch.setattr(
            srkit.upscaler.Upscaler,
            "upscale_frames",
            _slow_then(25, SrkitError("model failed"), srkit.upscaler.Upscaler.upscale_frames, 0),
        )
    # --reuse-frames off sends every frame through the model (none is held), as the counts assume
    code = main(
        [
            "upscale",
            str(clip),
            "-o",
            str(models / "out.mkv"),
            "-m",
            "tiny",
            "--preset",
            "ultrafast",
            "--reuse-frames",
            "off",
        ]
    )
    # the decoder stopped with the run: it got at most one frame past each full queue and each busy stage
    fault_frame = {"encoder": 3, "decoder": 30, "model": 25}[where]
    assert decoded["n"] <= min(fault_frame + 2 * srkit.pipelines.pump.QUEUE_DEPTH + 3, CLIP_FRAMES - 1), decoded
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srkit: error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in errors[0]
    assert not (models / "out.mkv").exists() and not [p for p in models.iterdir() if ".partial~" in p.name]
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
    real = srkit.io.video.writer.VideoWriter._write
    calls = {"n": 0}
    entered, released, left = threading.Event(), threading.Event(), threading.Event()

    def stuck_on_third(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:  # an encode call that outlives the run's bounded join: it waits for the test
            entered.set()
            released.wait(JOIN_SECONDS * 30)
            left.set()
        return real(self, *args)

    monkeypatch.setattr(srkit.io.video.writer.VideoWriter, "_write", stuck_on_third)
    monkeypatch.setattr(
        srkit.upscaler.Upscaler,
        "upscale_frames",
        _slow_then(12, SrkitError("model failed"), srkit.upscaler.Upscaler.upscale_frames, 0),
    )
    code = main(
        [
            "upscale",
            str(clip),
            "-o",
            str(models / "out.mkv"),
            "-m",
            "tiny",
            "--preset",
            "ultrafast",
            "--reuse-frames",
            "off",
        ]
    )  # every frame reaches the model, as the fault count assumes
    stuck_through_the_run = entered.is_set() and not left.is_set()
    released.set()
    assert stuck_through_the_run, "the run waited for the stuck encoder instead of abandoning it"
    assert code == 1 and "model failed" in capsys.readouterr().err
    assert not (models / "out.mkv").exists() and not [p for p in models.iterdir() if ".partial~" in p.name]
