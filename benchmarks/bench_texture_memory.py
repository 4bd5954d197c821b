"""Peak host memory of a texture's PBR map set and mip chains: traced bytes, resident bytes and seconds, before/after.

    python benchmarks/bench_texture_memory.py                       # 1024, 2048, 4096; main vs this checkout
    python benchmarks/bench_texture_memory.py --sizes 1024 --before HEAD~3

Each case is one square seeded RGB texture (uniform random bytes: the work does not depend on the content), made
before measuring, then what `srkit textures --pbr --mipmaps` does with it: `pbr_maps`, then the mip chain of
each of the five maps, one after the other (each chain dropped before the next, as write_map does). It runs in a
child process twice: once under tracemalloc (numpy reports its allocations to it; OpenCV's output arrays are
numpy arrays, its internal row buffers are not traced), for the peak traced bytes; once without, for the
seconds and the peak resident size over the size before (VmHWM after a reset, Linux). "before" is `--before`
(default main) as a `git archive REF srkit kernels` snapshot with kernels/ copied to srkit/kernels, first on
the child's PYTHONPATH; "after" is the srkit this Python imports. The growth per texel is the slope between the
two largest sizes. The smallest size's maps and levels are saved by both and compared (largest code difference).
Results: benchmarks/results/texture-memory-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _proc_memory import reset_peak, status_bytes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
SPACES = {"albedo": "srgb", "normal": "normal", "height": "linear", "roughness": "linear", "ao": "linear"}


def child(size: int, traced: bool, save: str | None) -> dict:
    """Make the texture, then its maps and the five chains; peak traced or resident bytes over it, seconds."""
    import srkit.synth.maps as maps_module
    from srkit.synth.maps import pbr_maps
    from srkit.synth.mipmaps import mip_chain

    texture = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    saved = {}
    if traced:
        tracemalloc.start()
    reset_peak()
    resident = status_bytes("VmRSS")
    start = time.perf_counter()
    maps = pbr_maps(texture)
    for name, space in SPACES.items():
        chain = mip_chain(maps[name], space)
        if save:
            saved.update({f"{name}{index}": level for index, level in enumerate(chain)})
        del chain
    seconds = time.perf_counter() - start
    row = {
        "srkit": os.path.relpath(Path(maps_module.__file__).parent.parent),  # which copy ran (relative: no home path)
        "seconds": seconds,
        "rss_over_texture": status_bytes("VmHWM") - resident,
    }
    if traced:
        row["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if save:
        np.savez(save, **saved)
    return row


def snapshot(ref: str, folder: Path) -> Path:
    """`git archive REF srkit kernels` unpacked in `folder`, kernels/ copied to srkit/kernels: an importable srkit."""
    archive = folder / "src.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", ref, "srkit", "kernels"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "src", filter="data")
    shutil.copytree(folder / "src" / "kernels", folder / "src" / "srkit" / "kernels")
    return folder / "src"


def run_child(size: int, traced: bool, source: Path | None, save: Path | None) -> dict:
    """One child process of this script; its result row (raises with its stderr if it fails)."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = str(source)
    command = [sys.executable, __file__, "--child", str(size)] + (["--traced"] if traced else [])
    command += ["--save", str(save)] if save else []
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-800:]}")
    return json.loads(done.stdout.splitlines()[-1])


def compare(before: Path, after: Path) -> dict:
    """Largest code difference and differing texels per map over all its levels, between two saved runs."""
    with np.load(before) as old, np.load(after) as new:
        assert sorted(old.files) == sorted(new.files), "the chains have different levels"
        result = {}
        for name in SPACES:
            keys = [key for key in old.files if key.rstrip("0123456789") == name]
            differences = [np.abs(old[key].astype(int) - new[key]) for key in keys]
            result[name] = {
                "max_code_difference": int(max(d.max() for d in differences)),
                "differing_values": int(sum((d > 0).sum() for d in differences)),
                "values": int(sum(d.size for d in differences)),
            }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 2048, 4096])
    parser.add_argument("--before", default="main", help="git ref to compare with (a snapshot made in a temp folder)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.traced, args.save)))
        return 0
    rows, growth = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        versions = [("before", snapshot(args.before, tmp)), ("after", None)]
        for size in args.sizes:
            for version, source in versions:
                save = tmp / f"{version}.npz" if size == args.sizes[0] else None
                traced = run_child(size, True, source, None)
                timed = run_child(size, False, source, save)
                rows.append(
                    {
                        "version": version,
                        "size": size,
                        "srkit": timed["srkit"],
                        "traced_peak": traced["traced_peak"],
                        "rss_over_texture": timed["rss_over_texture"],
                        "seconds": timed["seconds"],
                        "seconds_traced": traced["seconds"],
                    }
                )
                print(
                    f"{version:<7} {size:>5} {rows[-1]['traced_peak'] / 2**20:10.1f} MiB traced "
                    f"{rows[-1]['rss_over_texture'] / 2**20:10.1f} MiB resident {timed['seconds']:7.2f} s  "
                    f"({timed['srkit']})",
                    flush=True,
                )
        differences = compare(tmp / "before.npz", tmp / "after.npz")
    for version, _ in versions:
        measured = [row for row in rows if row["version"] == version]
        if len(measured) >= 2:
            a, b = measured[-2], measured[-1]
            texels = b["size"] ** 2 - a["size"] ** 2
            growth[version] = {
                "traced": (b["traced_peak"] - a["traced_peak"]) / texels,
                "resident": (b["rss_over_texture"] - a["rss_over_texture"]) / texels,
            }
    print(f"\npbr_maps + five mip chains, peak over the RGB texture (before = {args.before})")
    print(f"{'version':<7} {'size':>5} {'traced MiB':>11} {'B/texel':>8} {'resident MiB':>13} {'seconds':>8}")
    for row in rows:
        print(
            f"{row['version']:<7} {row['size']:>5} {row['traced_peak'] / 2**20:11.1f} "
            f"{row['traced_peak'] / row['size'] ** 2:8.1f} {row['rss_over_texture'] / 2**20:13.1f} "
            f"{row['seconds']:8.2f}"
        )
    for version, slope in growth.items():
        print(f"{version}: growth {slope['traced']:.2f} traced / {slope['resident']:.2f} resident bytes per texel")
    print(f"maps and levels at {args.sizes[0]}, before vs after: {differences}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "texture-memory-cpu.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "texture-memory",
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "config": {
                    "before": args.before,
                    "sizes": args.sizes,
                    "cpu_count": os.cpu_count(),
                    "load_average": os.getloadavg(),
                },
                "rows": rows,
                "growth_bytes_per_texel": growth,
                "before_vs_after": differences,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
