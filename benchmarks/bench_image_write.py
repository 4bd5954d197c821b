"""Writing one large output image: peak RSS over the pixels, seconds and file size, per encoder and format.

    python benchmarks/bench_image_write.py                  # 6400x4800 RGB (the 1600x1200 x4 output), 3 reps
    python benchmarks/bench_image_write.py --size 3200x2400 --reps 5 --cases png-srkit png-pillow

The image is bench_memory's photo recipe (scikit-image's astronaut, Lanczos-resized, plus seeded noise; the
16-bit one is it times 257 plus seeded low bits), saved as .npy. Each case runs in a child process that loads it
(costing its bytes alone), resets its peak RSS (/proc/self/clear_refs, Linux), encodes it to a file and reads
the peak (VmHWM): the peak minus the resident size before encoding is what encoding costs over the array.
Cases: `png-srkit` (srkit.io.images.write_picture, the strip encoder),
`png-pillow` (Image.fromarray + save, what write_picture did before), `png-cv2` (OpenCV, BGR converted in
place and back), the same for 16-bit colour (`png16-srkit`, `png16-cv2`), and for the lossy formats
`jpeg-pillow`, `jpeg-cv2`, `webp-pillow`, `webp-cv2` at quality 95. Results: benchmarks/results/image-write-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _proc_memory import reset_peak, status_bytes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [
    "png-srkit",
    "png-pillow",
    "png-cv2",
    "png16-srkit",
    "png16-cv2",
    "jpeg-pillow",
    "jpeg-cv2",
    "webp-pillow",
    "webp-cv2",
]


def make_sources(folder: Path, width: int, height: int) -> None:
    """The 8-bit and 16-bit test images as .npy files, which a child loads at the cost of their bytes alone."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_memory import make_photo

    make_photo(folder / "source.png", width, height)
    with Image.open(folder / "source.png") as image:
        pixels = np.asarray(image)
    np.save(folder / "source8.npy", pixels)
    low = np.random.default_rng(1).integers(0, 257, size=pixels.shape)
    np.save(folder / "source16.npy", (pixels.astype(np.uint16) * 257 + low).astype(np.uint16))


def child(case: str, folder: Path) -> dict:
    """Load the image, encode it with `case` into `folder`; peak RSS before and after, seconds, bytes."""
    import cv2
    import numpy as np
    from PIL import Image

    from srkit.io.images import Picture, write_picture

    pixels = np.load(folder / ("source16.npy" if case.startswith("png16") else "source8.npy"))
    reset_peak()
    before = status_bytes("VmRSS")
    start = time.perf_counter()
    encoder = case.split("-")[1]
    extension = {"png": ".png", "png16": ".png", "jpeg": ".jpg", "webp": ".webp"}[case.split("-")[0]]
    target = folder / f"out{extension}"
    if encoder == "srkit":
        write_picture(pixels, target, Picture(pixels, "PNG", "RGB"))
    elif encoder == "pillow":
        options = {} if extension == ".png" else {"quality": 95}
        Image.fromarray(pixels).save(target, **options)
    else:  # OpenCV wants BGR: convert in place, encode, convert back (no copy of the image)
        cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR, dst=pixels)
        flags = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}.get(extension, [])
        if not cv2.imwrite(str(target), pixels, flags):
            raise RuntimeError(f"OpenCV could not write {target}")
        cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)
    seconds = time.perf_counter() - start
    return {
        "case": case,
        "image_bytes": pixels.nbytes,
        "rss_before": before,
        "peak_after": status_bytes("VmHWM"),
        "seconds": seconds,
        "file_bytes": target.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6400x4800")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # case, folder: run one case here
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    width, height = (int(v) for v in args.size.split("x"))
    runs: dict[str, list[dict]] = {case: [] for case in args.cases}
    with tempfile.TemporaryDirectory() as tmp:
        make_sources(Path(tmp), width, height)
        for rep in range(args.reps):  # cases interleaved, so load changes hit them alike
            for case in args.cases:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", case, tmp], check=True, capture_output=True, text=True
                ).stdout
                runs[case].append(json.loads(out.splitlines()[-1]))
                print(f"rep {rep} {case}: {runs[case][-1]['seconds']:.2f} s", flush=True)
    print(
        f"\nWriting a {args.size} image (CPU, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); medians of "
        f"{args.reps}"
    )
    print(f"{'case':<12} {'over the array':>15} {'B/px':>6} {'seconds':>8} {'file MB':>8}")
    rows = []
    for case, results in runs.items():
        pixels = width * height
        over = statistics.median(r["peak_after"] - r["rss_before"] for r in results)
        row = {
            "case": case,
            "encoding_peak_over_array": over,
            "bytes_per_pixel": over / pixels,
            "seconds": statistics.median(r["seconds"] for r in results),
            "seconds_all": [r["seconds"] for r in results],
            "file_bytes": results[0]["file_bytes"],
        }
        rows.append(row)
        print(
            f"{case:<12} {over / 2**20:12.1f} MiB {row['bytes_per_pixel']:6.2f} {row['seconds']:8.2f} "
            f"{row['file_bytes'] / 1e6:8.2f}"
        )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "image-write-cpu.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "image-write",
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "config": {
                    "size": args.size,
                    "reps": args.reps,
                    "cpu_count": os.cpu_count(),
                    "load_average": os.getloadavg(),
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
