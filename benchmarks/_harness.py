"""Shared benchmark plumbing: CUDA-event timing, result checks, GPU busy sampling, the table and the results file."""

from __future__ import annotations

import json
import platform
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Timing:
    """Milliseconds per call over `reps` timed calls after warm-up."""

    median_ms: float
    p20_ms: float
    p80_ms: float
    reps: int


@dataclass
class Row:
    """One measured line of a benchmark table."""

    case: str
    impl: str
    timing: Timing | None
    tflops: float | None = None
    gbps: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def device_name(device: torch.device) -> str:
    """Human name of the device that ran the benchmark."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model} ({torch.get_num_threads()} threads)"


def device_slug(device: torch.device) -> str:
    """Short file-name key for a device: 'h100' for 'NVIDIA H100 80GB HBM3', else the slugified name."""
    name = device_name(device).lower()
    family = re.search(r"\b([a-z]{1,2}\d{2,4}[a-z]?)\b", name)
    if device.type == "cuda" and family:
        return family.group(1)
    return "cpu" if device.type == "cpu" else re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def time_call(fn: Callable[[], object], device: torch.device, warmup: int = 10, reps: int = 50) -> Timing:
    """Median and 20/80 % quantiles of fn's time; CUDA events on GPU, perf_counter on CPU."""
    for _ in range(warmup):
        fn()
    samples = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
    else:
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
    # 'inclusive' keeps the quantiles inside the samples (the default extrapolates, below zero for two samples).
    q = statistics.quantiles(samples, n=10, method="inclusive") if len(samples) > 1 else samples * 9
    return Timing(statistics.median(samples), q[1], q[7], reps)


def _quantile_timing(fn_bench, reps: int = -1) -> Timing:
    median, p20, p80 = fn_bench(quantiles=[0.5, 0.2, 0.8])
    return Timing(median, p20, p80, reps)


def time_back_to_back(fn: Callable[[], object], device: torch.device, warmup: int = 10, reps: int = 50) -> Timing:
    """fn's time with calls queued back to back (triton.testing.do_bench: no host synchronisation inside the
    timed span, so host latency is hidden as it is in a real pipeline); time_call(fn, device, warmup, reps) off
    CUDA. On CUDA reps is -1: do_bench chooses the count for its 100 ms window."""
    if device.type != "cuda":
        return time_call(fn, device, warmup, reps)
    from triton.testing import do_bench

    return _quantile_timing(lambda quantiles: do_bench(fn, warmup=25, rep=100, quantiles=quantiles))


def time_graph_replays(fn: Callable[[], object], device: torch.device) -> Timing:
    """fn captured in a CUDA graph and timed as replays (triton.testing.do_bench_cudagraph): GPU time without the
    host's launch cost."""
    from triton.testing import do_bench_cudagraph

    torch.cuda.synchronize(device)
    return _quantile_timing(lambda quantiles: do_bench_cudagraph(fn, rep=100, quantiles=quantiles))


def relative_rms(got: torch.Tensor, expected: torch.Tensor) -> float:
    """||got - expected|| / ||expected|| over all elements, in fp32."""
    expected = expected.float()
    return ((got.float() - expected).pow(2).mean().sqrt() / expected.pow(2).mean().sqrt()).item()


def check_close(name: str, got: torch.Tensor, expected: torch.Tensor, limit: float) -> str:
    """Raise if got's relative RMS error against expected exceeds `limit` (NaN fails); else a note saying it."""
    err = relative_rms(got, expected)
    if not err <= limit:
        raise AssertionError(f"{name}: relative RMS error {err:.2e} exceeds {limit:.0e}; not timing a wrong result")
    return f"rel. RMS err {err:.1e}"


def compile_options(device: torch.device) -> dict:
    """torch.compile settings for baselines: max-autotune on CUDA; on CPU (smoke runs) the eager backend, which
    traces through torch.compile without generating code (a max-autotune build on CPU takes minutes)."""
    return {"mode": "max-autotune"} if device.type == "cuda" else {"backend": "eager"}


def compiled_label(options: dict) -> str:
    """Table label of a torch.compile baseline: 'torch.compile mode=max-autotune'."""
    return "torch.compile " + " ".join(f"{key}={value}" for key, value in options.items())


def compiled_row(
    case: str,
    fn: Callable[[], torch.Tensor],
    check: Callable[[torch.Tensor], str],
    device: torch.device,
    warmup: int = 10,
    reps: int = 50,
    **options,
) -> Row:
    """torch.compile(fn, **options), checked by `check` and timed; or a row saying why it could not run."""
    label = compiled_label(options)
    try:
        compiled = torch.compile(fn, **options)
        note = check(compiled())
        return Row(case, label, time_back_to_back(compiled, device, warmup, reps), note=note)
    except Exception as error:  # report the failure in the table instead of losing the other rows
        return Row(case, label, None, note=f"failed: {type(error).__name__}: {error}"[:120])


class GpuBusy:
    """Share of wall time the GPU was running kernels during a `with` block, from NVML samples.

    NVML's utilisation is the share of its last sample period (1/6 s to 1 s) in which any kernel ran, so
    only blocks lasting several seconds give a meaningful mean. `fraction` is None (with `reason`) off CUDA
    or where NVML cannot be read.
    """

    def __init__(self, device: torch.device, period_s: float = 0.05) -> None:
        self.device = device
        self.period_s = period_s
        self.samples: list[int] = []
        self.reason = "" if device.type == "cuda" else "not measured: not a CUDA device"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuBusy:
        if not self.reason:
            try:
                torch.cuda.utilization(self.device)
            except Exception as error:  # pynvml missing, or no NVML on this machine
                self.reason = f"not measured: NVML unavailable ({type(error).__name__}: {error})"[:120]
            else:
                self._thread = threading.Thread(target=self._sample, name="gpu-busy", daemon=True)
                self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.period_s):
            self.samples.append(torch.cuda.utilization(self.device))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def fraction(self) -> float | None:
        """Mean NVML utilisation over the block, 0..1."""
        return sum(self.samples) / (100.0 * len(self.samples)) if self.samples else None

    def describe(self) -> str:
        """'GPU busy 87 %', or why it was not measured."""
        return self.reason or (
            "GPU busy: no sample (block too short)"
            if self.fraction is None
            else f"GPU busy {100 * self.fraction:.0f} %"
        )


def print_table(title: str, rows: list[Row]) -> None:
    """Print rows; the speed-up column is relative to the first timed row of the same case (its baseline)."""
    print(f"\n{title}")
    header = (
        f"{'case':<46} {'impl':<26} {'median ms':>10} {'p20-p80 ms':>15} {'TFLOP/s':>8} {'GB/s':>8} {'speed-up':>8}"
    )
    print(header)
    print("-" * len(header))
    base: dict[str, float] = {}
    for r in rows:
        if r.timing:
            base.setdefault(r.case, r.timing.median_ms)
    for r in rows:
        if r.timing is None:
            print(f"{r.case:<46} {r.impl:<26} {'-':>10} {'':>15} {'':>8} {'':>8} {'':>8}  {r.note}")
            continue
        t = r.timing
        ratio = base.get(r.case, float("nan")) / t.median_ms
        print(
            f"{r.case:<46} {r.impl:<26} {t.median_ms:>10.3f} {f'{t.p20_ms:.3f}-{t.p80_ms:.3f}':>15} "
            f"{r.tflops or float('nan'):>8.1f} {r.gbps or float('nan'):>8.0f} {ratio:>7.2f}x  {r.note}"
        )


def write_results(name: str, device: torch.device, rows: list[Row], config: dict) -> Path:
    """Write rows to benchmarks/results/<name>-<device>.json, with the device and versions, and return the path."""
    import triton

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{device_slug(device)}.json"
    payload = {
        "benchmark": name,
        "device": device_name(device),
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "config": config,
        "rows": [asdict(r) for r in rows],
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
    return path
