"""Fidelity and speed of srkit's own SR models: the README's model table.

    python benchmarks/bench_fidelity.py            # table + benchmarks/results/fidelity-<device>.json

For each model: parameters, PSNR / SSIM on Y against bicubic on the held-out photos (exactly what
`srkit eval --json` reports: same function, same inputs), and milliseconds per input megapixel through the
engine (`srkit.Upscaler`, whole-image tile) on scikit-image's 512x512 astronaut photo.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import skimage
import skimage.data
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table, time_call, write_results  # noqa: E402

from srkit.environment import default_device  # noqa: E402
from srkit.pipelines.evaluate import evaluate  # noqa: E402
from srkit.train.options import DEFAULT_MAX_SIDE  # noqa: E402
from srkit.upscaler import Upscaler  # noqa: E402

MODELS = ("srkit-photo-x2", "srkit-seednet-x2", "srkit-photo-x4")
BACKGROUNDS = Path("/usr/share/backgrounds")  # Debian lomiri-wallpapers-16.04
SKIMAGE_DATA = Path(os.path.dirname(skimage.__file__)) / "data"
# The held-out photos named in the built-in models' metadata (never trained on).
HELD_OUT = (
    BACKGROUNDS / "Bridge_by_Sander_Klootwijk.jpg",
    BACKGROUNDS / "sunset_by_Aitzol_Berasategi.jpg",
    BACKGROUNDS / "umang_by_Abhishek_Mudgal.jpg",
    SKIMAGE_DATA / "astronaut.png",
    SKIMAGE_DATA / "coffee.png",
)
SPEED_SIDE = 512


def measure(name: str, photos: list[Path], device: torch.device, reps: int) -> Row:
    """Evaluate one model on the photos and time it on a SPEED_SIDE-square photo."""
    upscaler = Upscaler(name, device=device, tile=SPEED_SIDE)
    report = evaluate([str(p) for p in photos], upscaler, DEFAULT_MAX_SIDE)
    crop = np.ascontiguousarray(skimage.data.astronaut()[:SPEED_SIDE, :SPEED_SIDE])
    timing = time_call(lambda: upscaler.upscale(crop), device, warmup=1, reps=reps)
    params = sum(p.numel() for p in upscaler.model.module.parameters())
    mean = report["mean"]
    megapixels = crop.shape[0] * crop.shape[1] / 1e6
    extra = {
        "params": params,
        "scale": report["scale"],
        "ms_per_mp": timing.median_ms / megapixels,
        **{key: round(value, 4) for key, value in mean.items()},
        "images": report["images"],
    }
    note = (
        f"x{report['scale']} PSNR {mean['psnr']:.2f} (bicubic {mean['bicubic_psnr']:.2f}, "
        f"{mean['psnr_gain']:+.2f}) SSIM {mean['ssim']:.4f} ({mean['bicubic_ssim']:.4f})"
    )
    return Row(f"{crop.shape[1]}x{crop.shape[0]} input", name, timing, note=note, extra=extra)


def main() -> None:
    """Measure the models, print the table and the README rows, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--photos", nargs="+", type=Path, default=list(HELD_OUT))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    missing = [p for p in args.photos if not p.is_file()]
    if missing:
        sys.exit(
            f"missing held-out photos: {', '.join(map(str, missing))} "
            "(apt-get install lomiri-wallpapers-16.04 provides the wallpapers)"
        )
    device = default_device()
    rows = [measure(name, args.photos, device, args.reps) for name in args.models]
    print_table(f"srkit models on {len(args.photos)} held-out photos", rows)
    print("\n| model | params | x | PSNR (bicubic) | SSIM (bicubic) | ms/MP |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        e = row.extra
        print(
            f"| {row.impl} | {e['params'] / 1e3:.0f} k | {e['scale']} | {e['psnr']:.2f} ({e['bicubic_psnr']:.2f}) "
            f"| {e['ssim']:.4f} ({e['bicubic_ssim']:.4f}) | {e['ms_per_mp']:.0f} |"
        )
    print(f"\nwrote {write_results('fidelity', device, rows, {'photos': [p.name for p in args.photos]})}")


if __name__ == "__main__":
    main()
