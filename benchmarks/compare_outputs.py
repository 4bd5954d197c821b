"""Shipped models on examples/sample.png: this checkout's outputs against another code tree's, in codes.

    python benchmarks/compare_outputs.py --before /tmp/main-snapshot   # e.g. `git archive main | tar -x -C DIR`

`--before` is a source tree of srkit (its top-level `kernels/` linked as `srkit/kernels`, as the installed package
maps it); each model runs `srkit upscale` with `--tile auto` and `--tile 40` on srkit's own PyTorch kernels (the
OpenVINO backend runs the module, not srkit's programs), once with that tree first on PYTHONPATH and once with this
checkout; the PNGs are compared value by value. Prints the largest difference and how many values differ.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MODELS = (
    "srkit-photo-x2",
    "srkit-photo-x4",
    "srkit-seednet-x2",
    "realesr-animevideov3",
    "realesr-animevideov3-x2",
    "realesr-animevideov3-x3",
    "realesrgan-x4plus",
    "realesrgan-x4plus-anime",
)
TILES = ("auto", "40")


def upscale(tree: str, model: str, tile: str, target: Path) -> np.ndarray:
    """`srkit upscale` of the sample with `tree` first on PYTHONPATH ('' for this checkout's installed srkit)."""
    env = dict(os.environ, SRKIT_CPU_BACKEND="torch", SRKIT_KERNELS="reference", PYTHONPATH=tree)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "srkit",
            "upscale",
            str(ROOT / "examples" / "sample.png"),
            "-o",
            str(target),
            "-m",
            model,
            "--tile",
            tile,
            "--overwrite",
        ],
        env=env,
        cwd=target.parent,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{model} --tile {tile} ({tree or 'this checkout'}) failed:\n{done.stderr}")
    return np.asarray(Image.open(target)).astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="source tree of the code to compare against")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args(argv)
    worst = 0
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models:
            for tile in TILES:
                before = upscale(str(Path(args.before).resolve()), model, tile, Path(folder) / "before.png")
                after = upscale("", model, tile, Path(folder) / "after.png")
                diff = np.abs(before - after)
                worst = max(worst, int(diff.max()))
                print(
                    f"{model:26s} --tile {tile:4s} {after.shape}: max |diff| {diff.max()} codes, "
                    f"{int((diff > 0).sum())} of {diff.size} values differ",
                    flush=True,
                )
    print(f"largest difference: {worst} codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
