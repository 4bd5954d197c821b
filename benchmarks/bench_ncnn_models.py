"""CPU benchmark of the ncnn model families srkit runs as graphs (RealCUGAN, waifu2x cunet and upconv_7): srkit vs
the ncnn runtime on the same 480x270 frame, same run.

    python benchmarks/bench_ncnn_models.py                  # table + benchmarks/results/ncnn-models-cpu.json
    python benchmarks/bench_ncnn_models.py --reps 5 --threads 2 --models realcugan-se-x2

Runtimes, timed interleaved (each repetition runs every runtime of a model once, round-robin, so background load
on a shared machine hits them alike; the median is reported), the frame being scikit-image's coffee photo
centre-cropped to 16:9 and area-resized:
- srkit: `srkit.Upscaler(model, device="cpu").upscale(uint8 frame)`, the product's whole path (its default CPU
  backend, tiling, conversions), and the same with SRKIT_CPU_BACKEND=torch (srkit's PyTorch kernels, fp32);
- ncnn: the ncnn runtime (CPU, its default options) on the original .param/.bin, fed as the upstream tool feeds
  it (edge-replicated prepadding, aligned sides, one tile, the x4 residual), uint8 in and out.
Each output is compared with ncnn's (PSNR in 8-bit codes) before it is timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import ncnn
import numpy as np
import torch
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, Timing, device_name, write_results  # noqa: E402

import srkit  # noqa: E402
from srkit.engine import cpu_backend  # noqa: E402
from srkit.models.zoo import load_model  # noqa: E402

WIDTH, HEIGHT = 480, 270
MODELS = (
    "realcugan-se-x2",
    "realcugan-pro-x3",
    "realcugan-se-x4",
    "waifu2x-cunet-x1-denoise1",
    "waifu2x-cunet-x2",
    "waifu2x-upconv7-anime-x2",
)
# The upstream tools' prepadding and blob names (realcugan-ncnn-vulkan, waifu2x-ncnn-vulkan).
UPSTREAM = {
    ("realcugan", 2): (18, "in0", "out0"),
    ("realcugan", 3): (14, "in0", "out0"),
    ("realcugan", 4): (19, "in0", "out0"),
    ("cunet", 1): (28, "Input1", "Eltwise4"),
    ("cunet", 2): (18, "Input1", "Eltwise4"),
    ("upconv7", 2): (7, "Input1", "Eltwise4"),
}


def frame() -> np.ndarray:
    """scikit-image's coffee photo, centre-cropped to 16:9 and area-resized: uint8 HWC RGB."""
    photo = data.coffee()
    h, w = photo.shape[:2]
    crop_h = min(h, round(w * HEIGHT / WIDTH))
    top = (h - crop_h) // 2
    return cv2.resize(photo[top : top + crop_h], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 images in dB (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ncnn_call(name: str, image: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    """The ncnn runtime on the model's own files, fed as its upstream tool feeds one tile."""
    model = load_model(name)
    param = Path(model.source)
    family = "realcugan" if name.startswith("realcugan") else "upconv7" if "upconv7" in name else "cunet"
    scale = model.out_scale
    pad, blob_in, blob_out = UPSTREAM[(family, scale)]
    align = 2 if scale in (2, 4) else 4
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    height, width = image.shape[:2]

    def run() -> np.ndarray:
        x = image.astype(np.float32).transpose(2, 0, 1) / 255
        padded = np.ascontiguousarray(
            np.pad(x, ((0, 0), (pad, pad + (-height) % align), (pad, pad + (-width) % align)), mode="edge")
        )
        extractor = net.create_extractor()
        extractor.input(blob_in, ncnn.Mat(padded))
        _, out = extractor.extract(blob_out)
        y = np.array(out)[:, : height * scale, : width * scale] * 255
        if family == "realcugan" and scale == 4:
            y += np.repeat(np.repeat(x, 4, axis=1), 4, axis=2) * 255
        return np.clip(y + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)

    return run


def srkit_call(name: str, image: np.ndarray, backend: str | None) -> Callable[[], np.ndarray]:
    """srkit's Upscaler on the frame, with its default CPU backend or the one named."""
    previous = os.environ.get(cpu_backend.CPU_BACKEND_ENV)
    if backend is not None:
        os.environ[cpu_backend.CPU_BACKEND_ENV] = backend
    try:
        upscaler = srkit.Upscaler(name, device="cpu", tile=max(WIDTH, HEIGHT))  # one tile, as ncnn runs it
    finally:
        if previous is None:
            os.environ.pop(cpu_backend.CPU_BACKEND_ENV, None)
        else:
            os.environ[cpu_backend.CPU_BACKEND_ENV] = previous
    return lambda: upscaler.upscale(image)


def measure(name: str, reps: int, threads: int) -> list[Row]:
    """Warm up and check every runtime against ncnn, then time them round-robin `reps` times."""
    image = frame()
    calls = {
        "srkit (default CPU path)": srkit_call(name, image, None),
        "srkit PyTorch kernels fp32": srkit_call(name, image, "torch"),
        "ncnn": ncnn_call(name, image, threads),
    }
    expected = calls["ncnn"]()
    quality = {label: psnr(call(), expected) for label, call in calls.items()}
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(reps):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            samples[label].append((time.perf_counter() - start) * 1e3)
    rows = []
    for label, times in samples.items():
        q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
        rows.append(
            Row(
                f"{name} {WIDTH}x{HEIGHT}",
                label,
                Timing(statistics.median(times), q[1], q[7], reps),
                extra={"psnr_vs_ncnn_db": quality[label]},
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = [row for name in args.models for row in measure(name, args.reps, args.threads)]
    load_after = os.getloadavg()
    device = torch.device("cpu")
    print(
        f"\nncnn model families, {device_name(device)}, {args.threads} threads, median of {args.reps} "
        f"interleaved; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    print(f"srkit CPU backend: {cpu_backend.describe()}")
    header = f"{'model':<38} {'runtime':<28} {'ms/frame':>9} {'p20-p80':>13} {'PSNR vs ncnn':>13}"
    print(header + "\n" + "-" * len(header))
    for row in rows:
        t = row.timing
        print(
            f"{row.case:<38} {row.impl:<28} {t.median_ms:>9.0f} {f'{t.p20_ms:.0f}-{t.p80_ms:.0f}':>13} "
            f"{row.extra['psnr_vs_ncnn_db']:>10.1f} dB"
        )
    config = {
        "reps": args.reps,
        "threads": args.threads,
        "load_before": load_before,
        "load_after": load_after,
        "cpu_backend": cpu_backend.describe(),
        "frame": f"{WIDTH}x{HEIGHT}",
    }
    print(f"results: {write_results('ncnn-models', device, rows, config)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
