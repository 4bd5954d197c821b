"""Scale-out benchmark: wall time of `srkit upscale` on 1 and 2 workers (local processes, local Ray), for a photo
folder and a segmented video, what joining the segments costs, and per-GPU throughput where there are GPUs.

    python benchmarks/bench_scaleout.py                  # table + benchmarks/results/scaleout-<device>.json
    python benchmarks/bench_scaleout.py --model realesr-animevideov3-x2 --photos 16 --side 320
    python benchmarks/bench_scaleout.py --cluster        # a 2-node simulated Ray cluster, a node removed halfway

Each case runs the command line in this process (`srkit.cli.main`), so a run's wall time includes what a user
waits for: worker start-up (spawn, imports, model build) and, for Ray, its actors (the Ray instance itself is
started once, before the timed runs, and its start-up reported apart). Outputs of every backend are compared
byte for byte with the one-worker run before any time is reported. The join is timed inside the segmented run
(the driver's join_segments). Without CUDA there is no per-GPU row: the table says so and nothing is invented.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, Timing, print_table, write_results  # noqa: E402

import srkit.pipelines.segments as segments  # noqa: E402
from srkit.cli import main  # noqa: E402

PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "motorcycle_left",
    "retina",
)


def make_photos(folder: Path, count: int, side: int) -> None:
    """`count` PNGs from scikit-image's bundled photos (cycled, each a different crop), longer side = `side`."""
    folder.mkdir()
    for index in range(count):
        name = PHOTOS[index % len(PHOTOS)]
        try:
            pixels = getattr(skimage.data, name)()
        except Exception:  # a photo that needs a download here: use the astronaut
            pixels = skimage.data.astronaut()
        image = Image.fromarray(pixels[..., :3] if pixels.ndim == 3 else pixels).convert("RGB")
        ratio = side / max(image.size)
        image = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))), Image.LANCZOS)
        shift = index // len(PHOTOS)
        image.crop((shift, shift, image.width, image.height)).save(folder / f"{index:02d}-{name}.png")


def make_clip(path: Path, seconds: int, size: str) -> None:
    """An H.264 clip with AAC audio and a keyframe every second (the ffmpeg CLI), so segments can be cut."""
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
            f"testsrc2=size={size}:rate=25",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "25",
            "-keyint_min",
            "25",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
        timeout=300,
    )


def digest(path: Path) -> str:
    """SHA-256 over a file, or over every file of a folder with its relative name."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for file in files:
        h.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        h.update(file.read_bytes())
    return h.hexdigest()


class JoinTimer:
    """Seconds spent in segments.join_segments during the `with` block (the join runs in the driver)."""

    def __enter__(self) -> JoinTimer:
        self.seconds, self.real = 0.0, segments.join_segments

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self.real(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        segments.join_segments = timed
        return self

    def __exit__(self, *exc) -> None:
        segments.join_segments = self.real


def run(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, join seconds, its stderr) of one `srkit upscale` run; raises if it fails."""
    stderr = io.StringIO()
    with JoinTimer() as join, contextlib.redirect_stderr(stderr):
        start = time.perf_counter()
        status = main(["upscale", *argv])
        wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"srkit upscale {' '.join(argv)} exited {status}:\n{stderr.getvalue()}")
    return wall, join.seconds, stderr.getvalue()


def timing(seconds: list[float]) -> Timing:
    """A Timing row from wall times in seconds (median and the spread of the repetitions)."""
    ms = sorted(1e3 * s for s in seconds)
    return Timing(float(np.median(ms)), ms[0], ms[-1], len(ms))


def retried(stderr: str) -> int:
    """The units a run's summary line says were retried (0 when it says none)."""
    found = re.search(r", retried (\d+) \(", stderr)
    return int(found.group(1)) if found else 0


def remove_halfway(cluster, node, finished: Callable[[], int], half: int) -> threading.Thread:
    """A thread that removes `node` from `cluster` once `finished()` reaches `half` units."""

    def watch() -> None:
        while finished() < half:
            time.sleep(0.02)
        cluster.remove_node(node)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def finished_segments(out: Path) -> Callable[[], int]:
    """How many segments of `out` its work folder's manifest records as finished."""
    manifest = out.with_name(f".{out.name}.srkit") / "manifest.json"

    def count() -> int:
        try:
            return sum(1 for entry in json.loads(manifest.read_text())["segments"] if entry["sha256"])
        except (OSError, ValueError, KeyError):
            return 0

    return count


def cluster_rows(args, tmp: Path) -> list[Row]:
    """The photo folder and the clip on a simulated 2-node Ray cluster (1 CPU each), whole, then with the worker
    node removed once half the units are done: wall time and units retried, bytes checked against the whole run."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    cluster.wait_for_nodes()
    segments_count = math.ceil(args.clip_seconds / args.segment_seconds)
    cases = [
        (
            "photo folder",
            [str(tmp / "photos")],
            "folder",
            args.photos,
            "photos",
            lambda out: lambda: len(list(out.glob("*.png"))),
        ),
        (
            "segmented video",
            [str(tmp / "clip.mp4"), "--segment-seconds", str(args.segment_seconds)],
            "out.mp4",
            segments_count,
            "segments",
            finished_segments,
        ),
    ]
    rows = []
    try:
        for case, inputs, name, units, unit_name, finished in cases:
            reference = None
            for fault in (False, True):
                walls, retries = [], []
                for rep in range(args.reps):
                    out = tmp / f"cluster-{fault}-{rep}" / name
                    if not cluster.worker_nodes:
                        node = cluster.add_node(num_cpus=1)
                        cluster.wait_for_nodes()
                    remover = remove_halfway(cluster, node, finished(out), units // 2) if fault else None
                    wall, _, err = run(
                        [*inputs, "-o", str(out), "-m", args.model, "--backend", "ray", "--workers", "2"]
                    )
                    if remover is not None:
                        remover.join()
                    got = digest(out)
                    reference = reference or got
                    if got != reference:
                        raise AssertionError(f"{case}: the run with a node removed gave other bytes")
                    walls.append(wall)
                    retries.append(retried(err))
                label = "node removed at half" if fault else "2 nodes"
                rows.append(
                    Row(
                        f"{case} ({units} {unit_name}), 2-node cluster",
                        label,
                        timing(walls),
                        note=f"units retried {retries}, bytes = whole run",
                        extra={"units_retried": retries},
                    )
                )
    finally:
        ray.shutdown()
        cluster.shutdown()
    return rows


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3-x2", help="model for every case")
    parser.add_argument("--photos", type=int, default=16, help="photos in the folder (16)")
    parser.add_argument("--side", type=int, default=256, help="longer side of each photo in pixels (256)")
    parser.add_argument("--clip-seconds", type=int, default=8, help="length of the video (8)")
    parser.add_argument("--clip-size", default="160x90", help="frame size of the video (160x90)")
    parser.add_argument("--segment-seconds", type=float, default=2.0, help="segment length (2)")
    parser.add_argument("--reps", type=int, default=2, help="runs of each case (2)")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray rows")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="only the fault rows: a simulated 2-node Ray cluster, whole and with a node removed "
        "halfway (results in scaleout-cluster-<device>.json)",
    )
    args = parser.parse_args()
    if args.cluster:
        with tempfile.TemporaryDirectory() as tmp:
            make_photos(Path(tmp) / "photos", args.photos, args.side)
            make_clip(Path(tmp) / "clip.mp4", args.clip_seconds, args.clip_size)
            rows = cluster_rows(args, Path(tmp))
        print_table(f"srkit upscale on a simulated Ray cluster, model {args.model} (median of {args.reps})", rows)
        print(f"results: {write_results('scaleout-cluster', torch.device('cpu'), rows, vars(args))}")
        return

    backends = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 2)])
    rows: list[Row] = []
    config = vars(args) | {"cores": __import__("os").cpu_count(), "load_before": Path("/proc/loadavg").read_text()}
    ray_started = None
    if not args.no_ray:
        import ray

        start = time.perf_counter()
        ray.init(include_dashboard=False, logging_level="WARNING")
        ray_started = time.perf_counter() - start
        config["ray_init_seconds"] = ray_started
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_photos(tmp / "photos", args.photos, args.side)
        make_clip(tmp / "clip.mp4", args.clip_seconds, args.clip_size)
        frames = args.clip_seconds * 25
        cases = [
            ("photo folder", [str(tmp / "photos")], "folder", args.photos, "files"),
            (
                "segmented video",
                [str(tmp / "clip.mp4"), "--segment-seconds", str(args.segment_seconds)],
                "out.mp4",
                frames,
                "frames",
            ),
        ]
        if torch.cuda.is_available():
            gpus = torch.cuda.device_count()
            backends += [("devices", count) for count in range(1, gpus + 1)]
        for case, inputs, name, units, unit_name in cases:
            reference = None
            for backend, workers in backends:
                walls, joins = [], []
                for rep in range(args.reps):
                    out = tmp / f"{backend}-{workers}-{rep}" / name
                    scale = (
                        ["--devices", ",".join(f"cuda:{i}" for i in range(workers))]
                        if backend == "devices"
                        else ["--workers", str(workers), "--backend", backend]
                    )
                    wall, join, _ = run([*inputs, "-o", str(out), "-m", args.model, *scale])
                    got = digest(out)
                    reference = reference or got
                    if got != reference:
                        raise AssertionError(f"{case}: {backend} x{workers} gave other bytes than the first run")
                    walls.append(wall)
                    joins.append(join)
                t = timing(walls)
                note = f"{units / (t.median_ms / 1e3):.2f} {unit_name}/s, bytes = 1-worker run"
                if backend == "devices":
                    note += f", {units / (t.median_ms / 1e3) / workers:.2f} {unit_name}/s per GPU"
                if case == "segmented video":
                    note += f", join {1e3 * float(np.median(joins)):.0f} ms"
                rows.append(Row(case, f"{backend} x{workers}", t, note=note))
    if not torch.cuda.is_available():
        rows.append(Row("per-GPU throughput", "-", None, note="not measured: no CUDA device on this machine"))
    if ray_started is not None:
        import ray

        ray.shutdown()
        rows.append(Row("Ray start-up (ray.init, once)", "ray", timing([ray_started]), note="not in the rows above"))
    config["load_after"] = Path("/proc/loadavg").read_text()
    print_table(f"srkit upscale wall time, model {args.model} (median of {args.reps}; p20-p80 column: min-max)", rows)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"results: {write_results('scaleout', device, rows, config)}")


if __name__ == "__main__":
    main_bench()
