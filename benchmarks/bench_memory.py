"""Peak host memory of `srkit upscale`: resident set size of the child process, per image size and CPU backend.

    python benchmarks/bench_memory.py                      # table + benchmarks/results/memory-cpu.json
    python benchmarks/bench_memory.py --sizes 800x600 1600x1200 --backends openvino
    python benchmarks/bench_memory.py --before /tmp/main-src    # each case also with srkit from that folder
    python benchmarks/bench_memory.py --sizes 6000x4000 --backends openvino --results memory-24mp-cpu.json

`--before DIR` runs every case a second time with PYTHONPATH=DIR (a folder holding an `srkit` package, e.g.
`git archive main` with kernels/ copied to srkit/kernels), so before and after come from the same run.

Each case writes a photo-like PNG of the given size (scikit-image's astronaut, Lanczos-resized, plus seeded
noise so the encoder cannot shortcut it), runs `srkit upscale` on it in a child process (x4 with the given model
and tile, PNG out) and reads the child's peak RSS from os.wait4. A child that only imports srkit and loads the
model gives the fixed cost; the growth per output megapixel is the slope between the two largest sizes.

The photos are made in a separate process: Linux carries a process's peak RSS across fork and exec, so every
child of this script would report at least this script's own peak (0.6 GiB once it has held a 3200x2400 photo);
the results give this script's peak (`harness_peak_rss`), the floor under every reading.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results"
SRKIT = [sys.executable, "-m", "srkit"]
Image.MAX_IMAGE_PIXELS = None  # this script opens outputs only for their size (a 24 MP photo x4 is 384 MP)
LOAD_ONLY = "import sys; from srkit.upscaler import Upscaler; Upscaler(sys.argv[1], device='cpu')"


def make_photo(path: Path, width: int, height: int, seed: int = 0) -> None:
    """A width x height RGB PNG: a resized photograph with a little seeded noise."""
    base = Image.fromarray(skimage.data.astronaut()).resize((width, height), Image.LANCZOS)
    noise = np.random.default_rng(seed).integers(-6, 7, size=(height, width, 3))
    Image.fromarray(np.clip(np.asarray(base, dtype=np.int64) + noise, 0, 255).astype(np.uint8)).save(path)


def peak_rss(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, float]:
    """(peak resident bytes, wall seconds) of a child process run in `cwd`; raises if it fails. (Not in the
    checkout: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH.)"""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}): {stderr.decode()[-500:]}")
    return usage.ru_maxrss * 1024, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def write_results(args: argparse.Namespace, rows: list[dict], growth: dict[str, float]) -> Path:
    """Write benchmarks/results/<--results> with the rows so far (after each case: a long run that is stopped
    keeps what it measured)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / args.results
    path.write_text(
        json.dumps(
            {
                "benchmark": "memory",
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "config": {
                    "model": args.model,
                    "tile": args.tile,
                    "before": args.before,
                    "cpu_count": os.cpu_count(),
                    "load_average": os.getloadavg(),
                },
                "harness_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "rows": rows,
                "growth_bytes_per_output_pixel": growth,
            },
            indent=2,
        )
        + "\n"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--tile", default="256")
    parser.add_argument("--sizes", nargs="+", default=["800x600", "1600x1200", "3200x2400"])
    parser.add_argument("--backends", nargs="+", default=["openvino", "torch"], choices=["openvino", "torch"])
    parser.add_argument("--before", help="folder holding the srkit package to compare with (run first, each case)")
    parser.add_argument("--results", default="memory-cpu.json", help="file name under benchmarks/results/")
    args = parser.parse_args(argv)
    versions = ([("before", args.before)] if args.before else []) + [("after", None)]
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for backend, (version, source) in ((b, v) for b in args.backends for v in versions):
            env = dict(os.environ, SRKIT_CPU_BACKEND=backend)
            if source:
                env["PYTHONPATH"] = str(Path(source).resolve())
            fixed, _ = peak_rss([sys.executable, "-c", LOAD_ONLY, args.model], env, tmp)
            rows.append(
                {
                    "backend": backend,
                    "version": version,
                    "size": "load only",
                    "out_mp": 0.0,
                    "peak_rss": fixed,
                    "seconds": 0.0,
                }
            )
            write_results(args, rows, {})
            print(f"{backend:<9} {version:<7} {'load only':<11} {'':>8} {fixed / 2**30:8.2f} GiB", flush=True)
            for width, height in sizes:
                source, target = tmp / f"in-{width}x{height}.png", tmp / f"out-{width}x{height}.png"
                if not source.exists():
                    maker = multiprocessing.get_context("spawn").Process(
                        target=make_photo, args=(source, width, height)
                    )
                    maker.start()
                    maker.join()
                    if maker.exitcode != 0:
                        raise RuntimeError(f"making the {width}x{height} photo failed ({maker.exitcode})")
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
                ]
                rss, seconds = peak_rss(command, env, tmp)
                with Image.open(target) as out:
                    out_mp = out.width * out.height / 1e6
                target.unlink()
                rows.append(
                    {
                        "backend": backend,
                        "version": version,
                        "size": f"{width}x{height}",
                        "out_mp": out_mp,
                        "peak_rss": rss,
                        "seconds": seconds,
                    }
                )
                write_results(args, rows, {})
                print(
                    f"{backend:<9} {version:<7} {width}x{height:<6} {out_mp:7.1f}MP {rss / 2**30:8.2f} GiB "
                    f"{seconds:7.1f} s",
                    flush=True,
                )
    print(f"\nPeak RSS of `srkit upscale` x4, {args.model}, --tile {args.tile} (CPU, {os.cpu_count()} cores)")
    print(f"{'backend':<9} {'version':<7} {'input':<11} {'out MP':>7} {'peak RSS GiB':>13} {'GB':>6} {'seconds':>8}")
    growth = {}
    for row in rows:
        print(
            f"{row['backend']:<9} {row['version']:<7} {row['size']:<11} {row['out_mp']:7.1f} "
            f"{row['peak_rss'] / 2**30:13.2f} {row['peak_rss'] / 1e9:6.2f} {row['seconds']:8.1f}"
        )
    for backend, (version, _) in ((b, v) for b in args.backends for v in versions):
        measured = [r for r in rows if r["backend"] == backend and r["version"] == version and r["out_mp"]]
        if len(measured) >= 2:
            a, b = measured[-2], measured[-1]
            key = f"{backend} {version}"
            growth[key] = (b["peak_rss"] - a["peak_rss"]) / ((b["out_mp"] - a["out_mp"]) * 1e6)
            print(f"{key}: growth {growth[key]:.2f} bytes per output pixel ({a['size']} -> {b['size']})")
    path = write_results(args, rows, growth)
    print(
        f"this script's own peak RSS (the floor under every reading): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
