"""Time and peak host memory of `srkit upscale -s S` (an output scale other than the model's), before and after.

    python benchmarks/bench_resize.py                              # table + benchmarks/results/resize-cpu.json
    python benchmarks/bench_resize.py --before /tmp/main-src --scales 3 4.5

Each case runs `srkit upscale` on a photo-like 1600x1200 PNG (bench_memory's) in a child process on the CPU
(x4 model, --tile 256, PNG out) and reads its CPU time, wall time and peak RSS (os.wait4); `--before DIR` runs each case
first with PYTHONPATH=DIR (a folder holding an `srkit` package), so before and after come from one run. The
resize alone is timed in-process too: the tiler with a nearest-x4 "network" (nothing but tiling, blending,
resizing and packing) with and without -s, beside OpenCV's resize of the whole uint8 x4 image (the old path).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import RESULTS, SRKIT, make_photo  # noqa: E402


def _child(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, float, float]:
    """(peak resident bytes, wall seconds, CPU seconds: user + system) of a child process run in `cwd`. CPU
    seconds are the figure to compare on a shared machine, where a niced child may wait most of its wall time."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.decode()[-500:]}")
    return usage.ru_maxrss * 1024, time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def _tiler_seconds(image: np.ndarray, scale: float | None, tile: int, reps: int) -> float:
    """Median CPU seconds of the tiler on `image` with a nearest-x4 run, uint8 out, resized to `scale` if given."""
    from srkit.engine.geometry import Geometry
    from srkit.engine.resize import Resize
    from srkit.engine.tiling import upscale_tiled

    height, width = image.shape[:2]
    pixels = torch.from_numpy(image).permute(2, 0, 1)
    size = (round(height * scale), round(width * scale)) if scale else (height * 4, width * 4)
    resize = Resize((height * 4, width * 4), size) if scale else None

    def run(batch: torch.Tensor) -> torch.Tensor:
        return batch.float().div_(255).repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)

    times = []
    for _ in range(reps):
        out = torch.empty(*size, 3, dtype=torch.uint8)
        start = _cpu_seconds()
        upscale_tiled(pixels, run, Geometry(4, tile, 8, 0), out=out, clamp=(0.0, 1.0), resize=resize)
        times.append(_cpu_seconds() - start)
    return float(np.median(times))


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--tile", default="256")
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--scales", nargs="+", type=float, default=[3.0, 4.5])
    parser.add_argument("--backend", default="openvino", choices=["openvino", "torch"])
    parser.add_argument("--before", help="folder holding the srkit package to compare with (run first, each case)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the in-process resize timing")
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process resize timing")
    parser.add_argument("--skip-tiler", action="store_true", help="only the srkit upscale children")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "in.png"
        make_photo(source, width, height)
        image = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB)
        x4 = np.ascontiguousarray(image.repeat(4, axis=0).repeat(4, axis=1))
        for scale in [] if args.skip_tiler else [None, *args.scales]:
            tiler = _tiler_seconds(image, scale, int(args.tile), args.reps)
            opencv = None
            if scale:
                size = (round(width * scale), round(height * scale))
                interpolation = cv2.INTER_AREA if scale < 4 else cv2.INTER_LANCZOS4
                start = _cpu_seconds()
                cv2.resize(x4, size, interpolation=interpolation)
                opencv = _cpu_seconds() - start
            rows.append(
                {"case": "tiler only", "scale": scale, "tiler_cpu_seconds": tiler, "opencv_cpu_seconds": opencv}
            )
            print(
                f"tiler only  -s {scale or 4:<4} tiler {tiler:6.2f} CPU s  opencv resize of the x4 image "
                f"{'-' if opencv is None else f'{opencv:.2f} CPU s'}",
                flush=True,
            )
        versions = ([("before", args.before)] if args.before else []) + [("after", None)]
        for scale in [] if args.skip_cli else args.scales:
            for version, folder in versions:
                env = dict(os.environ, SRKIT_CPU_BACKEND=args.backend)
                if folder:
                    env["PYTHONPATH"] = str(Path(folder).resolve())
                target = tmp / "out.png"
                command = SRKIT + [
                    "upscale",
                    str(source),
                    "-o",
                    str(target),
                    "-m",
                    args.model,
                    "--tile",
                    args.tile,
                    "--device",
                    "cpu",
                    "--overwrite",
                    "-s",
                    f"{scale:g}",
                ]
                rss, seconds, cpu = _child(command, env, tmp)
                rows.append(
                    {
                        "case": "srkit upscale",
                        "version": version,
                        "scale": scale,
                        "seconds": seconds,
                        "cpu_seconds": cpu,
                        "peak_rss": rss,
                        "load_average": os.getloadavg(),
                    }
                )
                print(
                    f"srkit upscale -s {scale:g} {version:<6} {cpu:7.1f} CPU s {seconds:7.1f} wall s  peak RSS "
                    f"{rss / 2**30:.2f} GiB  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "resize-cpu.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "resize",
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "config": {
                    "model": args.model,
                    "tile": args.tile,
                    "size": args.size,
                    "backend": args.backend,
                    "before": args.before,
                    "cpu_count": os.cpu_count(),
                },
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
