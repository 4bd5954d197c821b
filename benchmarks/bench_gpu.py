"""The GPU speed issue's measurements in one script: ceilings, fused conv vs cuDNN / torch.compile, models, bars.

    python benchmarks/bench_gpu.py                       # CUDA machine: every part, then the bars
    python benchmarks/bench_gpu.py --part kernels        # one part: kernels, compact or rrdb (gpu_run.sh stages)
    python benchmarks/bench_gpu.py --smoke               # tiny shapes; on CPU through Triton's interpreter

Parts: `kernels` measures the copy bandwidth and fp16 matrix rate of the device, then conv2d_act 3x3 64->64 +
PReLU on 1x64x540x960 in fp16 and bf16 (srkit autotuned and static vs cuDNN conv + separate PReLU vs
torch.compile max-autotune; bench_kernels.bench_conv); `compact` runs compact x4 on 960x540, `rrdb` RRDB x4 on
480x270 (srkit plan as a CUDA graph replay and launching one by one, vs eager fp16 channels_last vs
torch.compile max-autotune; bench_models.ModelCase). Every srkit result is checked against PyTorch's before it is
timed. The bars of the issue are printed last with pass / miss and by how much; each part writes
benchmarks/results/gpu-<part>-<gpu>.json. On CPU, --smoke runs the same code paths on tiny shapes with
Triton interpreted and torch.compile's eager backend, and writes nothing; without --smoke it exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, compile_options, compiled_label, print_table, time_call, write_results  # noqa: E402

PARTS = ("kernels", "compact", "rrdb")
# Model cases per part; the first compact case is the one the issue's bars are about.
# compact holds the issue's case only: it is half of the first GPU call, which must return in about 5 minutes.
MODEL_PARTS = {"compact": ("compact x4 960x540",), "rrdb": ("rrdb x4 480x270",)}
SMOKE_MODEL_PARTS = {"compact": ("smoke compact x4 40x24",), "rrdb": ("smoke rrdb x4 20x12",)}
# The issue's own arithmetic: compact x4 at 960x540 is 642 GFLOP per frame (0.81 ms at 790 TFLOP/s).
ISSUE_GFLOP = 642.0
CUDNN, SRKIT_CONV = "cuDNN conv + PReLU", "srkit conv2d_act"
PLAN_MS_BAR = 1.6  # compact x4 960x540 per frame: 2.5x the 0.65 ms compute floor (issue 34)


@dataclass
class Bar:
    """One of the issue's bars: `value` against `limit` (a speed-up to reach, or milliseconds not to exceed)."""

    name: str
    value: float | None
    limit: float
    unit: str  # "x" (higher is better) or "ms" (lower is better)
    why_missing: str = ""

    @property
    def passed(self) -> bool | None:
        """True / False, or None when the value could not be measured."""
        if self.value is None:
            return None
        return self.value >= self.limit if self.unit == "x" else self.value <= self.limit

    def verdict(self) -> str:
        """'PASS 1.72x (bar >= 1.5x)', 'MISS ... short by ...', or why it was not measured."""
        if self.value is None:
            return f"NOT MEASURED: {self.why_missing}"
        if self.unit == "x":
            shown = f"{self.value:.2f}x (bar >= {self.limit:.2f}x)"
            gap = (
                f"short by {self.limit - self.value:.2f}x: srkit needs {100 * (1 - self.value / self.limit):.0f} % "
                "less time"
            )
        else:
            shown = f"{self.value:.3f} ms (bar <= {self.limit:.3f} ms)"
            gap = f"over by {self.value - self.limit:.3f} ms ({100 * (self.value / self.limit - 1):.0f} %)"
        return f"PASS {shown}" if self.passed else f"MISS {shown}: {gap}"


def _median(rows: list[Row], case: str, impl: str) -> tuple[float | None, str]:
    """Median ms of the row (case, impl), or None and why: the row's note, or that there is no such row."""
    for row in rows:
        if row.case == case and row.impl == impl:
            return (row.timing.median_ms, "") if row.timing else (None, row.note)
    return None, f"no '{impl}' row for {case}"


def _speedup(name: str, rows: list[Row], case: str, baseline: str, ours: str, limit: float) -> Bar:
    """Bar on baseline time / srkit time."""
    base_ms, base_why = _median(rows, case, baseline)
    our_ms, our_why = _median(rows, case, ours)
    value = base_ms / our_ms if base_ms and our_ms else None
    return Bar(name, value, limit, "x", base_why or our_why)


def kernel_bars(rows: list[Row]) -> list[Bar]:
    """conv2d_act + PReLU >= 1.5x cuDNN conv + separate PReLU, per dtype."""
    cases = dict.fromkeys(row.case for row in rows if row.impl == SRKIT_CONV)
    return [_speedup(f"{case}: srkit >= 1.5x cuDNN conv + PReLU", rows, case, CUDNN, SRKIT_CONV, 1.5) for case in cases]


def model_bars(rows: list[Row], case: str, compiled: str) -> list[Bar]:
    """Compact x4 plan (a CUDA graph replay, what `srkit upscale` runs) >= 2x eager fp16 and <= 1.6 ms per frame
    (2.5x the 0.65 ms compute floor); the plan launching one by one and torch.compile are reported beside it."""
    from bench_models import EAGER, LAUNCHED_PLAN, PLAN

    ms, why = _median(rows, case, PLAN)
    return [
        _speedup(f"{case}: {PLAN} >= 2x {EAGER}", rows, case, EAGER, PLAN, 2.0),
        Bar(f"{case}: {PLAN} <= {PLAN_MS_BAR} ms per frame", ms, PLAN_MS_BAR, "ms", why),
        _speedup(
            f"{case}: {PLAN} vs {LAUNCHED_PLAN} (host cost of launching, for information)",
            rows,
            case,
            LAUNCHED_PLAN,
            PLAN,
            1.0,
        ),
        _speedup(f"{case}: {PLAN} vs {compiled} (for information)", rows, case, compiled, PLAN, 1.0),
    ]


def flops_check(rows: list[Row], case: str) -> str:
    """The issue's 642 GFLOP per frame for compact x4 960x540 against the count from the model's convolutions."""
    gflop = next(row.extra["gflop_per_frame"] for row in rows if row.case == case)
    same = abs(gflop - ISSUE_GFLOP) < 0.5
    return f"FLOPs: {case} = {gflop:.2f} GFLOP per frame from the model; the issue says {ISSUE_GFLOP:.0f}: " + (
        "agrees" if same else "DISAGREES"
    )


def measure_ceilings(device: torch.device, smoke: bool) -> list[Row]:
    """Device-to-device copy (bytes read + written) and a square matrix product on random data."""
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    elements = (1 << 20) if smoke else (1 << 28)
    src = torch.randn(elements, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    copy = time_call(lambda: dst.copy_(src), device)
    side = 256 if smoke else 8192
    a, b = (torch.randn(side, side, device=device, dtype=dtype) for _ in range(2))
    product = time_call(lambda: a @ b, device)
    size_bytes = src.numel() * src.element_size()
    label = str(dtype).removeprefix("torch.")
    return [
        Row(
            f"ceiling: copy {size_bytes / 2**20:.0f} MiB",
            "torch copy_",
            copy,
            gbps=2 * size_bytes / copy.median_ms / 1e6,
            note="GB/s counts bytes read + written",
        ),
        Row(
            f"ceiling: {side}^3 {label} matrix product",
            "torch matmul",
            product,
            tflops=2 * side**3 / product.median_ms / 1e9,
        ),
    ]


def _autotune_entries(device: torch.device) -> dict:
    """What the autotune cache holds for this device (the winners to copy into CONV_CONFIG_TABLE)."""
    from srkit.kernels import _autotune

    path = _autotune.cache_path()
    if device.type != "cuda" or not path.exists():
        return {}
    name = torch.cuda.get_device_name(device)
    return {key: entry for key, entry in json.loads(path.read_text())["entries"].items() if f"|{name}|" in key}


def run_part(
    part: str,
    device: torch.device,
    smoke: bool,
    reps: int | None,
    compile_with: dict | None,
    save: Callable[[list[Row]], None],
) -> list[Row]:
    """The rows of one part; `save(rows)` after each step, so a run cut short keeps what it measured."""
    # Imported here: in a CPU smoke run, main() switches Triton's interpreter on before srkit is imported.
    import bench_kernels
    import bench_models

    if part == "kernels":
        rows = measure_ceilings(device, smoke)
        save(rows)
        for dtype in (torch.float16, torch.bfloat16) if device.type == "cuda" else (torch.float32,):
            rows += bench_kernels.bench_conv(
                bench_kernels.SMOKE if smoke else bench_kernels.FULL, dtype, device, compile_with
            )
            save(rows)
        return rows
    cases = bench_models.SMOKE_CASES if smoke else bench_models.CASES
    prepared = [
        bench_models.ModelCase(name, *cases[name], device)
        for name in (SMOKE_MODEL_PARTS if smoke else MODEL_PARTS)[part]
    ]
    reps = reps or (20 if device.type == "cuda" else 2)
    rows = []
    for case in prepared:  # every plan and eager row first: compiling takes the longest
        rows += case.timed_rows(reps)
        save(rows)
    for case in prepared if compile_with else ():
        rows += case.compiled_rows(reps, compile_with)
        save(rows)
    return rows


def verdicts(part: str, rows: list[Row], smoke: bool, compile_with: dict | None) -> tuple[list[Bar], list[str]]:
    """The part's bars and remarks (the FLOPs check)."""
    if part == "kernels":
        return kernel_bars(rows), []
    if part == "rrdb":
        return [], []
    case = (SMOKE_MODEL_PARTS if smoke else MODEL_PARTS)[part][0]
    return model_bars(rows, case, compiled_label(compile_with or {})), [] if smoke else [flops_check(rows, case)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, action="append", help="run only these parts (default: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on any device; writes no results file")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baselines")
    parser.add_argument("--reps", type=int, help="timed repetitions per model row (default 20 on CUDA)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print(
            "bench_gpu: no CUDA device here; these are GPU timings, so nothing is measured "
            "(run on a GPU machine, or use --smoke to check the script)."
        )
        return 0
    if not cuda:  # must precede the first import of srkit.kernels
        os.environ["TRITON_INTERPRET"] = "1"
        os.environ["SRKIT_KERNELS"] = "triton"
    device = torch.device("cuda" if cuda else "cpu")
    torch.backends.cudnn.benchmark = True  # the cuDNN baselines get their fastest algorithm
    compile_with = None if args.no_compile else compile_options(device)
    mode = "SMOKE (tiny shapes, " + ("Triton interpreted on CPU; " if not cuda else "") + "not a measurement)"
    summary: list[str] = []
    for part in args.part or PARTS:

        def save(rows: list[Row], part: str = part) -> None:
            if args.smoke:
                return
            bars, remarks = verdicts(part, rows, args.smoke, compile_with)
            config = {
                "part": part,
                "cudnn_benchmark": True,
                "compile": compile_with,
                "bars": [{**asdict(bar), "passed": bar.passed, "verdict": bar.verdict()} for bar in bars],
                "remarks": remarks,
                "autotune": _autotune_entries(device) if part == "kernels" else {},
            }
            write_results(f"gpu-{part}", device, rows, config)

        rows = run_part(part, device, args.smoke, args.reps, compile_with, save)
        bars, remarks = verdicts(part, rows, args.smoke, compile_with)
        print_table(f"{part} on {device}" + (f" -- {mode}" if args.smoke else ""), rows)
        summary += remarks + [f"{bar.name}: {bar.verdict()}" for bar in bars]
    print(f"\nBars ({mode if args.smoke else torch.cuda.get_device_name(device)}):")
    for line in summary or ["(none in these parts)"]:
        print(f"  {line}")
    if not args.smoke:
        print("results: benchmarks/results/gpu-<part>-<gpu>.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
