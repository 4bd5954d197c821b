"""Photo-folder benchmark: `srkit upscale`'s pipeline vs a plain loop (PIL load -> PyTorch module -> PIL save).

    python benchmarks/bench_photos.py                          # table + benchmarks/results/photos-<device>.json
    python benchmarks/bench_photos.py --device cuda --dtype bf16

Twenty of scikit-image's bundled photographs (resized so the longer side is --side pixels, saved as PNG) are
upscaled by the same model both ways, in the same dtype (default: fp16 on CUDA, fp32 on CPU); the model is
loaded once in each, and timing covers decode, model and encode of the whole folder. The two outputs are
compared before any figure is reported. On CUDA each row also gives the share of time the GPU was busy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import GpuBusy, Row, print_table, time_call, write_results  # noqa: E402

from srkit.engine.plan import default_dtype  # noqa: E402
from srkit.pipelines.batch import upscale_batch  # noqa: E402
from srkit.pipelines.types import BatchOptions, WriteOptions  # noqa: E402
from srkit.upscaler import DTYPES, Upscaler  # noqa: E402

# scikit-image images shipped inside the package (no download).
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "checkerboard",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)
COUNT = 20
# Largest difference allowed between the two outputs, in 8-bit codes: fp32 runs differ by rounding only; in
# fp16/bf16 the plan and the module round activations at different places, so compare by PSNR instead.
MAX_CODE_DIFF_FP32 = 1
MIN_PSNR_HALF = {torch.float16: 45.0, torch.bfloat16: 35.0}


def make_folder(folder: Path, side: int) -> list[Path]:
    """Write the first COUNT bundled images that load, as PNG with the longer side = `side`."""
    paths = []
    for name in PHOTOS:
        try:
            pixels = getattr(skimage.data, name)()
        except Exception:  # an image that needs a download on this installation is left out
            continue
        image = Image.fromarray(pixels.astype(np.uint8) if pixels.dtype == bool else pixels)
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGB")
        ratio = side / max(image.size)
        image = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))), Image.LANCZOS)
        paths.append(folder / f"{name}.png")
        image.save(paths[-1])
        if len(paths) == COUNT:
            break
    return paths


def plain_loop(paths: list[Path], out: Path, module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """What a user writes by hand: load, convert, run the module, convert back, save; one file at a time."""
    for path in paths:
        image = Image.open(path).convert("RGB")
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None].to(device, dtype)
        with torch.inference_mode():
            y = module(x).float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        Image.fromarray(np.floor(y * 255 + 0.5).astype(np.uint8)).save(out / path.name)


def compare(srkit_dir: Path, plain_dir: Path, paths: list[Path], dtype: torch.dtype) -> str:
    """Check the two folders agree (see MAX_CODE_DIFF_FP32 / MIN_PSNR_HALF); a note saying by how much."""
    worst, squared, count = 0, 0.0, 0
    for path in paths:
        if Image.open(path).mode != "RGB":
            continue
        diff = np.asarray(Image.open(srkit_dir / path.name).convert("RGB"), dtype=np.int64) - np.asarray(
            Image.open(plain_dir / path.name), dtype=np.int64
        )
        worst, squared, count = max(worst, int(np.abs(diff).max())), squared + float((diff**2).sum()), count + diff.size
    psnr = 10 * np.log10(255.0**2 * count / squared) if squared else float("inf")
    note = f"max code diff {worst}, PSNR {psnr:.1f} dB"
    agree = worst <= MAX_CODE_DIFF_FP32 if dtype == torch.float32 else psnr >= MIN_PSNR_HALF[dtype]
    if not agree:
        raise AssertionError(f"srkit and the plain loop disagree ({note}); not timing")
    return note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--side", type=int, default=256, help="longer side of each photo in pixels (256)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", help="cpu or cuda[:i] (default: cuda if available)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="default: fp16 on CUDA, fp32 on CPU")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = DTYPES[args.dtype] if args.dtype else default_dtype(device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        paths = make_folder(tmp / "in", args.side)
        upscaler = Upscaler(args.model, device=device, dtype=dtype)
        module = upscaler.model.module.to(device, dtype)
        options = BatchOptions(format="png", write=WriteOptions(overwrite=True))
        (tmp / "plain").mkdir()

        def srkit_run():
            upscale_batch([str(tmp / "in")], tmp / "srkit", upscaler, options)

        def plain_run():
            plain_loop(paths, tmp / "plain", module, device, dtype)

        srkit_run()
        plain_run()
        agreement = compare(tmp / "srkit", tmp / "plain", paths, dtype)
        pixels = sum(Image.open(p).width * Image.open(p).height for p in paths)
        case = f"{len(paths)} photos, {pixels / 1e6:.2f} MP, {args.model}"
        rows = []
        for impl, run, note in (
            ("plain loop (PIL + module)", plain_run, ""),
            ("srkit upscale pipeline", srkit_run, agreement),
        ):
            with GpuBusy(device) as busy:
                timing = time_call(run, device, 0, args.reps)
            rows.append(
                Row(
                    case,
                    impl,
                    timing,
                    note=f"{busy.describe()}; {note}" if note else busy.describe(),
                    extra={"gpu_busy": busy.fraction},
                )
            )
    for row in rows:
        row.extra.update(files_per_s=len(paths) / (row.timing.median_ms / 1e3), files=len(paths))
        row.note = f"{row.extra['files_per_s']:.2f} files/s, " + row.note
    print_table(f"Photo folder on {device} ({str(dtype).removeprefix('torch.')})", rows)
    path = write_results(
        "photos", device, rows, {"model": args.model, "side": args.side, "reps": args.reps, "dtype": str(dtype)}
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
