"""Photo folders on many workers (--workers N, --backend ray) give the bytes of the single-process run; errors,
signals and bad options behave as the issue says. One local Ray instance serves the whole module."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.cli import main
from srkit.errors import SrkitError
from srkit.pipelines.remote import UNIT_TRIES, WorkerError, cpu_cores, host_upscaler, worker_threads
from srkit.pipelines.scaleout import run_units
from srkit.pipelines.types import ScaleOut
from srkit.request import UpscaleRequest

ROOT = Path(__file__).resolve().parents[2]
SIZES = [(37, 53), (21, 19), (64, 45), (13, 70), (50, 51)]  # odd sizes, a few ms each through the tiny model


@pytest.fixture(scope="module")
def photos(home, tmp_path_factory):
    """A seeded folder of photos of odd sizes in several formats (one in a sub-folder), plus one truncated file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    rng = np.random.default_rng(15)
    for index, (height, width) in enumerate(SIZES):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / ("sub" if index % 2 else ".") / f"p{index}.png")
    Image.fromarray(rng.integers(0, 256, (17, 23, 4), dtype=np.uint8), "RGBA").save(root / "alpha.png")
    Image.fromarray(rng.integers(0, 256, (19, 29, 3), dtype=np.uint8)).save(root / "sub" / "shot.jpg", quality=90)
    (root / "cut.jpg").write_bytes((root / "sub" / "shot.jpg").read_bytes()[:150])
    return root


def _upscale(photos: Path, out: Path, *options: str) -> int:
    return main(["upscale", str(photos), "-o", str(out), "-m", "tiny", *options])


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _errors(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith("srkit: error:"))


@pytest.fixture(scope="module")
def local_run(photos, tmp_path_factory):
    """The single-process run's outputs (digests), exit status and error lines: the reference of every backend."""
    out = tmp_path_factory.mktemp("local") / "out"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):  # capsys is per test; this fixture is per module
        status = _upscale(photos, out)
    errors = _errors(stderr.getvalue())
    return _digests(out), status, errors


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module (starting Ray on 2 cores takes seconds); srkit uses it, leaves it."""
    ray = pytest.importorskip("ray", reason="the srkit[ray] extra is not installed")
    ray.init(num_cpus=cpu_cores(), include_dashboard=False, logging_level="WARNING")  # as srkit's own start
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_photo_folder_on_two_workers_gives_the_bytes_and_errors_of_the_local_run(
    photos, local_run, backend, tmp_path, capsys, request
):
    if backend == "ray":
        request.getfixturevalue("ray_instance")
    digests, status, errors = local_run
    assert status == 1 and len(errors) == 1 and "cut.jpg: cannot read image" in errors[0]
    assert len(digests) == len(SIZES) + 2
    out = tmp_path / "out"
    assert _upscale(photos, out, "--workers", "2", "--backend", backend) == status
    err = capsys.readouterr().err
    assert _errors(err) == errors
    assert f"done {len(digests)}, skipped 0, failed 1" in err
    assert _digests(out) == digests


SLOW_UNIT_SECONDS = 120  # a unit after the failing one: far longer than stopping takes, even under load


def fail_on_unit_two(upscaler, unit: int) -> tuple[int, int, str | None]:
    """A unit of work (module level, so workers can unpickle it) that fails on unit 2 and, after it, takes longer
    than any stop should (a driver that waited for it would return its result); else (unit, the worker's torch
    threads, its SRKIT_CPU_BACKEND)."""
    if unit == 2:
        raise SrkitError(f"unit {unit}: cannot be done")
    if unit > 2:
        time.sleep(SLOW_UNIT_SECONDS)
    return unit, torch.get_num_threads(), os.environ.get("SRKIT_CPU_BACKEND")


def die_on_unit_one(upscaler, unit: int) -> int:
    """A unit of work whose worker process dies on unit 1, on every try (as one killed for memory would)."""
    if unit == 1:
        os._exit(3)
    return unit


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_the_first_error_in_a_worker_stops_every_worker_and_is_raised_in_the_driver(home, backend, request):
    if backend == "ray":
        request.getfixturevalue("ray_instance")
    done = []
    with pytest.raises(SrkitError, match="^unit 2: cannot be done$"):
        run_units(
            list(range(8)),
            fail_on_unit_two,
            UpscaleRequest("tiny", device="cpu"),
            ScaleOut(backend, workers=2),
            lambda index, result: done.append(result),
        )
    assert {unit for unit, _, _ in done} <= {0, 1}, "units after the failing one ran on"
    assert {(threads, backend) for _, threads, backend in done} <= {(worker_threads(2), "torch")}, (
        "the workers did not split the cores or lost the environment"
    )


def die_on_first_run(marks: str, upscaler, unit: int) -> int:
    """A unit of work whose worker process dies the first time it runs unit 1 (a mark file in `marks` says so)."""
    if unit == 1:
        try:
            os.close(os.open(Path(marks) / "died", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return unit
        os._exit(3)
    return unit


def test_a_unit_whose_worker_process_dies_goes_to_a_new_worker(home, tmp_path, capsys):
    retried = []
    results = run_units(
        list(range(4)),
        functools.partial(die_on_first_run, str(tmp_path)),
        UpscaleRequest("tiny", device="cpu"),
        ScaleOut(workers=2),
        on_retry=lambda *what: retried.append(what),
    )
    assert results == [0, 1, 2, 3] and retried == [(1, "worker process died")]
    assert re.search(
        r"^srkit: warning: unit 1: its worker stopped \(worker process died: worker \d \(cpu\) "
        r"stopped with exit code 3\); handed to another worker \(try 2 of 3\)$",
        capsys.readouterr().err,
        re.MULTILINE,
    )


def test_a_unit_that_kills_its_worker_on_every_try_is_one_line_and_stops_the_run(home):
    with pytest.raises(
        WorkerError,
        match=rf"^unit 1 lost its worker {UNIT_TRIES} times \(last: worker process "
        r"died: worker \d \(cpu\) stopped with exit code 3\); the run is "
        r"stopped$",
    ):
        run_units(list(range(4)), die_on_unit_one, UpscaleRequest("tiny", device="cpu"), ScaleOut(workers=2))


def _workers(pid: int) -> list[int]:
    """Process ids of the spawned worker processes whose parent is `pid` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            command = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields.get("PPid", "0")) == pid and b"spawn_main" in command:
            found.append(int(status.parent.name))
    return found


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_sigterm_stops_the_workers_within_seconds_and_leaves_no_half_written_file(home, tmp_path, backend):
    if backend == "ray":
        pytest.importorskip("ray", reason="the srkit[ray] extra is not installed")
    tree = tmp_path / "in"
    tree.mkdir()
    rng = np.random.default_rng(7)
    for index in range(12):
        Image.fromarray(rng.integers(0, 256, (200, 203, 3), dtype=np.uint8)).save(tree / f"big{index}.png")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "srkit",
        "upscale",
        str(tree),
        "-o",
        str(out),
        "-m",
        "tiny",
        "--workers",
        "2",
        "--backend",
        backend,
    ]  # with Ray: srkit starts (and must stop) its own local instance
    run = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "SRKIT_HOME": str(home)}
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and any(out.glob("big*.png"))) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    workers = _workers(run.pid)
    assert run.poll() is None, "the run ended before the first photo was written"
    assert len(workers) == (2 if backend == "local" else 0)  # Ray's workers are the raylet's children
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)  # a bound against a hang; that it stopped early is `written` below
    assert run.returncode == 130, err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a worker outlived the run"
    written = sorted(out.iterdir())
    assert all(path.name.startswith("big") and path.suffix == ".png" for path in written), written
    assert 0 < len(written) < 12
    for path in written:
        assert Image.open(path).size == (609, 600)


def test_a_ray_address_where_nothing_listens_is_one_line(photos, tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray", reason="the srkit[ray] extra is not installed")
    import socket

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process, even after the module's

    with socket.socket() as unused:  # a port that was free a moment ago: nothing listens there
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert _upscale(photos, tmp_path / "out", "--backend", "ray", "--ray-address", f"127.0.0.1:{port}") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"srkit: error: --ray-address 127.0.0.1:{port}: no Ray cluster answers there")
    assert not any(line.startswith("Traceback") for line in err)


def test_without_ray_the_ray_backend_is_one_line_naming_the_extra(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    assert _upscale(photos, tmp_path / "out", "--backend", "ray") == 2
    err = capsys.readouterr().err.strip()
    assert err == "srkit: error: --backend ray needs Ray, which is not installed here: pip install 'srkit[ray]'"


@pytest.mark.parametrize(
    "options, message",
    [
        (["--devices", "gpu0"], "'gpu0' is not cuda:INDEX"),
        (["--devices", "cpu,cpu"], "'cpu' is not cuda:INDEX"),
        (["--devices", "cuda:99"], "there is no cuda:99 here"),
        (["--devices", "cuda:0", "--backend", "ray"], "--devices is for --backend local"),
        (["--devices", "cuda:0", "--device", "cpu"], "not both"),
        (["--ray-address", "10.0.0.1:6379"], "--ray-address needs --backend ray"),
    ],
)
def test_bad_scale_out_options_are_one_line_and_exit_2_before_any_work(photos, tmp_path, capsys, options, message):
    out = tmp_path / "out"
    assert _upscale(photos, out, *options) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("srkit: error: ") and "\n" not in err and message in err
    assert not out.exists()


def test_the_openvino_backend_gives_the_same_bytes_on_any_number_of_threads(home, monkeypatch):
    pytest.importorskip("openvino", reason="the openvino package is not installed")
    from srkit.engine.openvino_backend import OpenVinoPlan

    monkeypatch.setenv("SRKIT_CPU_BACKEND", "openvino")
    image = np.random.default_rng(3).integers(0, 256, (67, 45, 3), dtype=np.uint8)
    threads = torch.get_num_threads()
    outputs = []
    try:
        for count in (1, 2, 3):
            upscaler = host_upscaler(UpscaleRequest("tiny", device="cpu", tile=32), "cpu", count)
            assert isinstance(upscaler.runner.executor, OpenVinoPlan)
            outputs.append(upscaler.upscale(image))
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(outputs[0], other) for other in outputs[1:])


@pytest.fixture(scope="module")
def clip(keyframed_clip):
    """A 3 s clip with a keyframe every second and AAC audio, made by the ffmpeg CLI: 3 segments at 1 s."""
    return keyframed_clip(3, 40, 30)


@pytest.fixture(scope="module")
def local_segmented(home, clip, tmp_path_factory):
    """The bytes of the local segmented run (one worker, this process) of the clip."""
    out = tmp_path_factory.mktemp("segmented") / "clip-x3.mp4"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["upscale", str(clip), "-o", str(out), "-m", "tiny", "--segment-seconds", "1"]) == 0
    assert "segments: 3 encoded" in stderr.getvalue()
    return out.read_bytes()


def test_a_segmented_video_on_two_ray_actors_is_the_file_of_the_local_segmented_run(
    clip, local_segmented, ray_instance, tmp_path, capsys
):
    out = tmp_path / "clip-x3.mp4"
    assert (
        main(
            [
                "upscale",
                str(clip),
                "-o",
                str(out),
                "-m",
                "tiny",
                "--segment-seconds",
                "1",
                "--workers",
                "2",
                "--backend",
                "ray",
            ]
        )
        == 0
    )
    assert "segments: 3 encoded" in capsys.readouterr().err
    assert out.read_bytes() == local_segmented
