"""Shared benchmark plumbing: CUDA-event timing, device naming, the printed table and the results file."""

from __future__ import annotations

import json
import platform
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

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
    q = statistics.quantiles(samples, n=10) if len(samples) > 1 else samples * 9
    return Timing(statistics.median(samples), q[1], q[7], reps)


def print_table(title: str, rows: list[Row]) -> None:
    """Print rows; the speed-up column is relative to the first timed row of the same case (its baseline)."""
    print(f"\n{title}")
    header = (f"{'case':<46} {'impl':<26} {'median ms':>10} {'p20-p80 ms':>15} {'TFLOP/s':>8} {'GB/s':>8} "
              f"{'speed-up':>8}")
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
        print(f"{r.case:<46} {r.impl:<26} {t.median_ms:>10.3f} {f'{t.p20_ms:.3f}-{t.p80_ms:.3f}':>15} "
              f"{r.tflops or float('nan'):>8.1f} {r.gbps or float('nan'):>8.0f} {ratio:>7.2f}x  {r.note}")


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
