"""Photo-folder benchmark: `srkit upscale`'s pipeline vs a plain loop (PIL load -> PyTorch module -> PIL save).

    python benchmarks/bench_photos.py              # table + benchmarks/results/photos-<device>.json

Twenty of scikit-image's bundled photographs (resized so the longer side is --side pixels, saved as PNG) are
upscaled by the same model both ways; the model is loaded once in each, and timing covers decode, model and
encode of the whole folder. The two outputs are compared before any figure is reported.
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

from _harness import Row, print_table, time_call, write_results  # noqa: E402

from srkit.pipelines.photos import PhotoOptions, upscale_photos  # noqa: E402
from srkit.upscaler import Upscaler  # noqa: E402

# scikit-image images shipped inside the package (no download).
PHOTOS = ("astronaut", "brick", "camera", "cat", "checkerboard", "clock", "coffee", "coins", "colorwheel", "grass",
          "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page",
          "retina", "rocket", "text")
COUNT = 20


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
        image = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))),
                             Image.LANCZOS)
        paths.append(folder / f"{name}.png")
        image.save(paths[-1])
        if len(paths) == COUNT:
            break
    return paths


def plain_loop(paths: list[Path], out: Path, module: torch.nn.Module, device: torch.device) -> None:
    """What a user writes by hand: load, convert, run the module, convert back, save; one file at a time."""
    for path in paths:
        image = Image.open(path).convert("RGB")
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None].to(device)
        with torch.inference_mode():
            y = module(x).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        Image.fromarray(np.floor(y * 255 + 0.5).astype(np.uint8)).save(out / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--side", type=int, default=256, help="longer side of each photo in pixels (256)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        paths = make_folder(tmp / "in", args.side)
        upscaler = Upscaler(args.model, device=device)
        module = upscaler.model.module.to(device)
        options = PhotoOptions(existing="overwrite", format="png")
        (tmp / "plain").mkdir()

        def srkit_run():
            upscale_photos([str(tmp / "in")], tmp / "srkit", upscaler, options)

        def plain_run():
            plain_loop(paths, tmp / "plain", module, device)

        srkit_run()
        plain_run()
        worst = max(np.abs(np.asarray(Image.open(tmp / "srkit" / p.name).convert("RGB"), dtype=int)
                           - np.asarray(Image.open(tmp / "plain" / p.name), dtype=int)).max() for p in paths
                    if Image.open(p).mode == "RGB")
        if worst > 1:
            raise AssertionError(f"srkit and the plain loop disagree by {worst} codes; not timing")
        pixels = sum(Image.open(p).width * Image.open(p).height for p in paths)
        case = f"{len(paths)} photos, {pixels / 1e6:.2f} MP, {args.model}"
        rows = [Row(case, "plain loop (PIL + module)", time_call(plain_run, device, 0, args.reps)),
                Row(case, "srkit upscale pipeline", time_call(srkit_run, device, 0, args.reps),
                    note=f"max code diff {worst}")]
    for row in rows:
        row.extra = {"files_per_s": len(paths) / (row.timing.median_ms / 1e3), "files": len(paths)}
        row.note = f"{row.extra['files_per_s']:.2f} files/s " + row.note
    print_table(f"Photo folder on {device}", rows)
    path = write_results("photos", device, rows, {"model": args.model, "side": args.side, "reps": args.reps})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
