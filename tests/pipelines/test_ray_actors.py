"""Runs on a simulated two-node Ray cluster on this machine survive a killed worker process, a removed node and a
killed driver: the outputs are the bytes of the local run, each finished unit ran once, and the summary counts
the retried units. The cluster (two nodes of one CPU each) is started and stopped by this module."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srkit.cli import main
from srkit.pipelines.remote import UNIT_TRIES, WorkerError
from srkit.pipelines.scaleout import run_units
from srkit.pipelines.types import ScaleOut
from srkit.request import UpscaleRequest

ray = pytest.importorskip("ray", reason="the srkit[ray] extra is not installed")

from ._ray_gate import FAULT_SECONDS, gated, wait_for_gate  # noqa: E402  (imports ray)

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = 8


def _runs(gate: Path) -> dict[str, int]:
    names = (gate / "runs.log").read_text().split("\n")[:-1]
    return {name: names.count(name) for name in names}


@pytest.fixture(scope="module")
def cluster(home):
    """A head node and a worker node of one CPU each; this process is connected to it (srkit uses it). The head
    node, started in this process, installs its own SIGTERM/SIGINT handlers: they are given back afterwards, so
    later tests see the process's own."""
    from ray.cluster_utils import Cluster

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        simulated.add_node(num_cpus=1)
        ray.init(address=simulated.address, logging_level="WARNING", log_to_driver=False)
        simulated.wait_for_nodes()
        yield simulated
        ray.shutdown()
        simulated.shutdown()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


@pytest.fixture
def two_nodes(cluster):
    """The cluster with its worker node back (a test before may have removed it); that node."""
    workers = list(cluster.worker_nodes)  # remove_node takes a node out of this set
    if not workers:
        workers.append(cluster.add_node(num_cpus=1))
        cluster.wait_for_nodes()
    return workers[0]


def _fault(kind: str, gate: Path, cluster, node) -> threading.Thread:
    """A thread that waits for the gated unit, then kills its worker process or removes its node."""

    def strike() -> None:
        started = wait_for_gate(gate)
        if kind == "worker":
            os.kill(started["pid"], signal.SIGKILL)
        else:
            assert started["node"] == node.node_id
            cluster.remove_node(node)

    thread = threading.Thread(target=strike, daemon=True)
    thread.start()
    return thread


def _gate(monkeypatch, module, name: str, gate: Path, after: int, node: str | None) -> None:
    """Route `module.name` (the work function of a pipeline's units) through `gated`."""
    gate.mkdir()
    monkeypatch.setattr(module, name, functools.partial(gated, str(gate), after, node, getattr(module, name)))


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def photos(home, tmp_path_factory):
    """A seeded folder of small photos, plus one truncated file (a unit that fails for its own reason)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(28)
    for index in range(PHOTOS):
        Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(root / f"p{index}.png")
    Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(root / "whole.jpg", quality=90)
    (root / "cut.jpg").write_bytes((root / "whole.jpg").read_bytes()[:150])
    (root / "whole.jpg").unlink()
    return root


@pytest.fixture(scope="module")
def local_photos(photos, tmp_path_factory):
    """The digests of the single-process run's outputs."""
    out = tmp_path_factory.mktemp("local") / "out"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["upscale", str(photos), "-o", str(out), "-m", "tiny"]) == 1  # cut.jpg fails
    return _digests(out)


@pytest.mark.parametrize("kind, reason", [("worker", "worker process died"), ("node", "node lost")])
def test_a_photo_folder_survives_a_lost_worker_or_node(
    photos, local_photos, cluster, two_nodes, kind, reason, tmp_path, monkeypatch, capsys
):
    import srkit.pipelines.photos as module

    gate = tmp_path / "gate"
    _gate(monkeypatch, module, "upscale_photo", gate, 2, None if kind == "worker" else two_nodes.node_id)
    strike = _fault(kind, gate, cluster, two_nodes)
    out = tmp_path / "out"
    assert main(["upscale", str(photos), "-o", str(out), "-m", "tiny", "--backend", "ray", "--workers", "2"]) == 1
    strike.join(FAULT_SECONDS)
    err = capsys.readouterr().err
    assert f"done {PHOTOS}, skipped 0, failed 1, retried 1 (1 {reason}) in " in err
    assert [line for line in err.splitlines() if "error" in line] == [
        line for line in err.splitlines() if line.startswith("srkit: error:") and "cut.jpg" in line
    ]
    assert _digests(out) == local_photos  # nothing else: no temporary or probe file is left
    runs = _runs(gate)
    victim = [name for name, count in runs.items() if count == 2]
    assert len(victim) == 1 and set(runs.values()) == {1, 2}, runs  # every other unit (cut.jpg too) ran once
    assert sorted(runs) == sorted(path.name for path in photos.iterdir())


def die_every_time(upscaler, unit: int) -> int:
    """A unit of work whose worker process dies on unit 1 on every try."""
    if unit == 1:
        os._exit(3)
    return unit


def test_a_unit_that_loses_its_worker_on_every_try_stops_the_run_in_one_line(cluster, two_nodes, capsys):
    with pytest.raises(
        WorkerError,
        match=rf"^unit 1 lost its worker {UNIT_TRIES} times \(last: worker process "
        r"died: The actor died unexpectedly before finishing this task.\); the run "
        r"is stopped$",
    ):
        run_units(list(range(4)), die_every_time, UpscaleRequest("tiny", device="cpu"), ScaleOut("ray", workers=2))
    assert (
        capsys.readouterr().err.count("srkit: warning: unit 1: its worker stopped (worker process died: ")
        == UNIT_TRIES - 1
    )


@pytest.fixture(scope="module")
def clip(keyframed_clip):
    """A 4 s clip with a keyframe every second and AAC audio, made by the ffmpeg CLI: 4 segments at 1 s."""
    return keyframed_clip(4, 24, 16)


def _segmented(clip: Path, out: Path, *options: str) -> int:
    return main(["upscale", str(clip), "-o", str(out), "-m", "tiny", "--segment-seconds", "1", *options])


@pytest.fixture(scope="module")
def local_clip(home, clip, tmp_path_factory):
    """The bytes of the local segmented run of the clip."""
    out = tmp_path_factory.mktemp("segmented") / "clip-x3.mp4"
    with contextlib.redirect_stderr(io.StringIO()):
        assert _segmented(clip, out) == 0
    return out.read_bytes()


def _probe_frames(path: Path) -> tuple[int, str]:
    """(video frames, audio codec) as Debian's ffprobe counts them."""
    text = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,nb_read_frames",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    streams = json.loads(text)["streams"]
    video = next(stream for stream in streams if stream["codec_type"] == "video")
    audio = next(stream for stream in streams if stream["codec_type"] == "audio")
    return int(video["nb_read_frames"]), audio["codec_name"]


@pytest.mark.parametrize("kind, reason", [("worker", "worker process died"), ("node", "node lost")])
def test_a_segmented_video_survives_a_lost_worker_or_node(
    clip, local_clip, cluster, two_nodes, kind, reason, tmp_path, monkeypatch, capsys
):
    import srkit.pipelines.segments as module

    gate = tmp_path / "gate"
    _gate(monkeypatch, module, "encode_segment", gate, 1, None if kind == "worker" else two_nodes.node_id)
    strike = _fault(kind, gate, cluster, two_nodes)
    out = tmp_path / "clip-x3.mp4"
    assert _segmented(clip, out, "--backend", "ray", "--workers", "2") == 0
    strike.join(FAULT_SECONDS)
    assert f"segments: 4 encoded, retried 1 (1 {reason}), 0 kept" in capsys.readouterr().err
    assert out.read_bytes() == local_clip
    assert _probe_frames(out) == (40, "aac")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip-x3.mp4", "gate"]  # the work folder is gone
    runs = _runs(gate)
    assert sorted(runs) == [f"segment {index}" for index in range(4)] and sorted(runs.values()) == [1, 1, 1, 2]


DRIVER = """
import functools, sys
import srkit.pipelines.segments as module
from srkit.cli import main
from tests.pipelines._ray_gate import gated
module.encode_segment = functools.partial(gated, sys.argv[1], 2, None, module.encode_segment)
sys.exit(main(sys.argv[2:]))
"""


def test_a_killed_driver_leaves_a_run_that_resumes_and_a_second_driver_is_refused(
    clip, local_clip, cluster, two_nodes, tmp_path, capsys
):
    gate = tmp_path / "gate"
    gate.mkdir()
    out = tmp_path / "clip-x3.mp4"
    command = [
        sys.executable,
        "-c",
        DRIVER,
        str(gate),
        "upscale",
        str(clip),
        "-o",
        str(out),
        "-m",
        "tiny",
        "--segment-seconds",
        "1",
        "--backend",
        "ray",
        "--workers",
        "2",
        "--ray-address",
        cluster.address,
    ]
    driver = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        wait_for_gate(gate)  # two segments are done and recorded, one waits in its actor
        manifest = tmp_path / ".clip-x3.mp4.srkit" / "manifest.json"
        deadline = time.monotonic() + FAULT_SECONDS
        while sum(1 for entry in json.loads(manifest.read_text())["segments"] if entry["sha256"]) < 2:
            assert time.monotonic() < deadline, "the driver did not record the finished segments"
            time.sleep(0.05)
        assert _segmented(clip, out, "--resume", "--backend", "ray", "--workers", "2") == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srkit: error:")]
        assert errors == [
            f"srkit: error: {manifest.parent}: another srkit run is using this work folder; wait for it or stop it"
        ]
    finally:
        driver.kill()
        driver.communicate(timeout=FAULT_SECONDS)
    assert not out.exists()
    assert _segmented(clip, out, "--resume", "--backend", "ray", "--workers", "2") == 0
    err = capsys.readouterr().err
    kept = int(err.split(" kept from the interrupted run")[0].rsplit(", ", 1)[1])
    assert kept >= 2 and f"segments: {4 - kept} encoded, {kept} kept" in err
    assert out.read_bytes() == local_clip
    assert _probe_frames(out) == (40, "aac")


def _alive_nodes() -> int:
    return sum(1 for node in ray.nodes() if node["Alive"])


@contextlib.contextmanager
def _node_without(folder: Path, cluster):
    """A third node that sees an empty folder at `folder` (its own mount namespace: another machine's disk)."""
    isolate = ["unshare", "--mount", "--map-root-user", "--propagation", "private"]
    if subprocess.run([*isolate, "true"], capture_output=True, timeout=60).returncode:
        pytest.skip(
            "this machine cannot give a process its own mounts (unshare --mount), which stands in for "
            "a node without the output folder"
        )
    before = _alive_nodes()
    script = f"mount -t tmpfs none {folder} && exec ray start --address={cluster.address} --num-cpus=1 --block"
    node = subprocess.Popen(
        [*isolate, "sh", "-c", script],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + FAULT_SECONDS
        while _alive_nodes() <= before:
            assert node.poll() is None and time.monotonic() < deadline, "the third node did not join"
            time.sleep(0.1)
        yield
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(FAULT_SECONDS)
        deadline = time.monotonic() + FAULT_SECONDS
        while _alive_nodes() > before and time.monotonic() < deadline:
            time.sleep(0.1)


def test_a_node_that_cannot_see_the_output_folder_is_refused_in_one_line_before_any_work(
    photos, cluster, two_nodes, tmp_path, capsys
):
    out = tmp_path / "out"
    with _node_without(tmp_path, cluster):
        assert main(["upscale", str(photos), "-o", str(out), "-m", "tiny", "--backend", "ray", "--workers", "3"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith(f"srkit: error: --output {out}: the Ray node at "), errors
    assert errors[0].endswith(
        "does not see the driver's files there; a run on several machines needs --output on "
        "a file system that every node sees (a shared mount)"
    )
    assert list(out.iterdir()) == []  # no photo was written, and the driver's probe file is gone
