"""Held frames: HeldFrames' matching rules, and srkit upscale on a clip made by FFmpeg with every frame held twice:
exact reuse writes the same frames as a full run (compared by FFmpeg's framemd5), with the count reported."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from srkit.cli import main
from srkit.pipelines.reuse import HeldFrames

from ..engine._models import install_user_model, small_model

FFMPEG = shutil.which("ffmpeg")


def _frames(seed: int, count: int, shape=(6, 7, 3), dtype=np.uint8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return [rng.integers(0, top + 1, size=shape, dtype=dtype) for _ in range(count)]


def test_exact_reuse_takes_only_equal_frames():
    a, b = _frames(1, 2)
    nudged = a.copy()
    nudged[3, 4, 1] ^= 1
    reuse = HeldFrames(0)
    frames = [a, a.copy(), nudged, b, b.copy(), b.copy()]
    held = reuse.held(frames)
    assert held == [False, True, False, False, True, True]
    outputs = reuse.outputs(held, ["A", "N", "B"])
    assert outputs == ["A", "A", "N", "B", "B", "B"] and reuse.reused == 3


def test_threshold_compares_with_the_key_frame_so_a_fade_does_not_drift():
    base = np.full((4, 5, 3), 100, np.uint8)
    fade = [base + step for step in range(6)]  # each frame one code brighter than the one before
    reuse = HeldFrames(2)
    held = reuse.held(fade)
    assert held == [False, True, True, False, True, True]  # 100 is key for 101, 102; 103 is too far from 100
    assert reuse.outputs(held, ["k0", "k3"]) == ["k0", "k0", "k0", "k3", "k3", "k3"]


def test_threshold_is_in_8_bit_codes_for_16_bit_frames_too():
    key = np.full((3, 3, 3), 30000, np.uint16)
    reuse = HeldFrames(1)
    assert reuse.held([key, key + 257, key + 515]) == [False, True, False]


def test_held_frames_carry_over_between_batches_and_off_means_never():
    (a,) = _frames(3, 1)
    reuse = HeldFrames(0)
    assert reuse.outputs(reuse.held([a]), ["A"]) == ["A"]
    assert reuse.outputs(reuse.held([a.copy(), a.copy()]), []) == ["A", "A"]
    off = HeldFrames(None)
    assert off.held([a, a, a]) == [False, False, False]
    with pytest.raises(ValueError, match="0..255"):
        HeldFrames(256)


def _framemd5(path: Path) -> list[str]:
    """FFmpeg's per-frame MD5 lines of the decoded video (pts, duration, size, hash), header comments dropped."""
    out = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if not line.startswith("#")]


@pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg command line tool (Debian package ffmpeg)")
def test_exact_reuse_writes_the_frames_of_a_full_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    install_user_model(tmp_path, "tiny", small_model("compact-x3", seed=41)[0])
    clip = tmp_path / "held.mkv"
    # 6 distinct test-pattern frames at 5 fps, each shown twice at 10 fps: 12 frames, 6 of them held (lossless).
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=46x30:rate=5:duration=1.2",
            "-vf",
            "fps=10",
            "-c:v",
            "ffv1",
            str(clip),
        ],
        check=True,
    )
    source = _framemd5(clip)
    assert len(source) == 12 and len({line.split(",")[-1] for line in source}) == 6
    runs = {}
    for label, flag in (("reuse", []), ("full", ["--reuse-frames", "off"])):
        out = tmp_path / f"{label}.mkv"
        assert main(["upscale", str(clip), "-o", str(out), "-m", "tiny", "--codec", "ffv1", *flag]) == 0
        runs[label] = (_framemd5(out), capsys.readouterr().err)
    (reused, reuse_log), (full, full_log) = runs["reuse"], runs["full"]
    assert reused == full and len(full) == 12
    assert [line.split(",")[:3] for line in full] == [line.split(",")[:3] for line in source]  # timestamps
    assert "12 frames" in reuse_log and "6 held frames reused" in reuse_log
    assert "0 held frames reused" in full_log


@pytest.mark.parametrize("value", ["256", "-1", "some"])
def test_bad_reuse_threshold_is_one_line_and_exit_2(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as stop:
        main(["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4"), "--reuse-frames", value])
    assert stop.value.code == 2
    assert "--reuse-frames must be" in capsys.readouterr().err
