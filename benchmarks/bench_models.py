"""Model benchmark: srkit's inference plan vs the pure-PyTorch module (eager and torch.compile), per frame.

    python benchmarks/bench_models.py             # table + benchmarks/results/models-<device>.json
    python benchmarks/bench_models.py --reps 2    # fewer repetitions (the CPU run of RRDB takes a minute a frame)
    python benchmarks/bench_models.py --smoke     # tiny models and shapes on any device; writes nothing

Cases: compact x4 (64 features, 16 convs) on 960x540, compact x2 on 1920x1080, RRDB x4 (23 blocks) on 480x270 and
SPAN x4 (48 features, its published size) on 960x540. Baselines: the module run eagerly, fp16 channels_last on CUDA
(what Real-ESRGAN's scripts do), fp32 on CPU; and on CUDA torch.compile(mode="max-autotune") of it. On CUDA "srkit
plan" is what `srkit upscale` runs, a CUDA graph replay of the bound plan; the plan is also timed with its launches
one by one (SRKIT_CUDA_GRAPHS=0, the host's Python and launch cost included). Every output is checked against the
eager module's before timing. Each row carries GFLOP per frame, fps and the ratio to the floor: FLOPs at
PEAK_TFLOPS.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, check_close, compile_options, compiled_row, print_table, time_back_to_back, write_results  # noqa: E402

from srkit.engine.plan import GRAPHS_ENV, build_plan, default_dtype  # noqa: E402
from srkit.models import compact, load_state_dict, rrdb, span  # noqa: E402
from srkit.models.zoo import LoadedModel  # noqa: E402

CASES = {
    "compact x4 960x540": (lambda: compact.CompactSR(features=64, num_conv=16, scale=4), (540, 960)),
    "compact x2 1920x1080": (lambda: compact.CompactSR(features=64, num_conv=16, scale=2), (1080, 1920)),
    "rrdb x4 480x270": (lambda: rrdb.RRDBNet(features=64, num_block=23, growth=32, scale=4), (270, 480)),
    "span x4 960x540": (lambda: span.SPAN(features=48, scale=4), (540, 960)),
}
# Tiny models with the same layer kinds, for --smoke (checks the script, measures nothing).
SMOKE_CASES = {
    "smoke compact x4 40x24": (lambda: compact.CompactSR(features=16, num_conv=2, scale=4), (24, 40)),
    "smoke rrdb x4 20x12": (lambda: rrdb.RRDBNet(features=16, num_block=1, growth=8, scale=4), (12, 20)),
    "smoke span x4 20x12": (lambda: span.SPAN(features=8, scale=4), (12, 20)),
}
# Dense fp16/bf16 matrix rate an H100 reaches on random data here (8192^3 bf16 product, 798 TFLOP/s, rounded as
# the issue rounds it): the rate at which a frame's FLOPs give its floor time.
PEAK_TFLOPS = 790.0
# Relative RMS error allowed against the eager module: fp32 differs by summation order only; fp16 activations
# are rounded once per layer in both, in different places.
RMS_LIMITS = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 4e-2}
EAGER, PLAN, LAUNCHED_PLAN = "eager module", "srkit plan", "srkit plan, no graph"


def flops_per_frame(module: torch.nn.Module, height: int, width: int, scale: int) -> float:
    """Convolution FLOPs (2 per multiply-add) for one frame, counting each conv at its working resolution."""
    total = 0.0
    hooks = []

    def count(conv, inputs, output):
        nonlocal total
        total += 2.0 * output.numel() * conv.weight[0].numel()

    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d):
            hooks.append(layer.register_forward_hook(count))
    with torch.no_grad():
        module(torch.zeros(1, 3, 16, 16))
    for hook in hooks:
        hook.remove()
    return total * (height * width) / 256


class ModelCase:
    """One model at one frame size, ready to time: the eager module, srkit's plan and the module's output."""

    def __init__(
        self, name: str, make: Callable[[], torch.nn.Module], size: tuple[int, int], device: torch.device
    ) -> None:
        height, width = size
        module, info = load_state_dict(make().state_dict())
        self.name, self.device, self.dtype = name, device, default_dtype(device)
        self.module = module.to(device=device, dtype=self.dtype).to(memory_format=torch.channels_last)
        x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
        self.x = x.to(device=device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        loaded = LoadedModel.of(self.module, info, name)
        self.plan = build_plan(loaded, device, self.dtype)
        self.launching_plan = build_plan(loaded, device, self.dtype)  # bound with graphs off
        self.expected = self.eager().float()
        self.flops = flops_per_frame(make(), height, width, info.net_scale)
        self.warmup = 1 if device.type == "cpu" else 5

    def eager(self) -> torch.Tensor:
        """The module's output, run eagerly (the baseline)."""
        with torch.inference_mode():
            return self.module(self.x)

    def planned(self) -> torch.Tensor:
        """srkit's plan's output (a graph replay on CUDA)."""
        return self.plan.run(self.x)

    def launched(self) -> torch.Tensor:
        """srkit's plan's output with its launches one by one (the first call binds it with graphs off)."""
        with mock.patch.dict(os.environ, {GRAPHS_ENV: "0"}):
            return self.launching_plan.run(self.x)

    def check(self, got: torch.Tensor) -> str:
        """check_close against the eager module's output with the dtype's limit."""
        return check_close(self.name, got, self.expected, RMS_LIMITS[self.dtype])

    def timed_rows(self, reps: int) -> list[Row]:
        """Eager module, srkit plan (a graph replay on CUDA) and, on CUDA, the plan launching one by one."""
        rows = [Row(self.name, EAGER, time_back_to_back(self.eager, self.device, self.warmup, reps))]
        note = self.check(self.planned())
        rows.append(Row(self.name, PLAN, time_back_to_back(self.planned, self.device, self.warmup, reps), note=note))
        if self.device.type != "cuda":
            rows.append(Row(self.name, LAUNCHED_PLAN, None, note="the same as srkit plan off CUDA"))
            return self._described(rows)
        note = self.check(self.launched())
        timing = time_back_to_back(self.launched, self.device, self.warmup, reps)
        rows.append(Row(self.name, LAUNCHED_PLAN, timing, note=note))
        return self._described(rows)

    def compiled_rows(self, reps: int, options: dict) -> list[Row]:
        """torch.compile(**options) of the eager module (compiling RRDB with max-autotune takes minutes)."""
        return self._described(
            [compiled_row(self.name, self.eager, self.check, self.device, self.warmup, reps, **options)]
        )

    def _described(self, rows: list[Row]) -> list[Row]:
        """Rows with dtype, GFLOP per frame, floor, TFLOP/s, fps and the ratio to the floor filled in."""
        floor_ms = self.flops / PEAK_TFLOPS / 1e9
        for row in rows:
            row.extra = {
                "dtype": str(self.dtype).removeprefix("torch."),
                "gflop_per_frame": self.flops / 1e9,
                "floor_ms": floor_ms,
            }
            if row.timing:
                row.tflops = self.flops / row.timing.median_ms / 1e9
                row.extra.update(fps=1e3 / row.timing.median_ms, ratio_to_floor=row.timing.median_ms / floor_ms)
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, help="timed repetitions (default 20 on CUDA, 3 on CPU)")
    parser.add_argument("--case", choices=list(CASES), action="append", help="run only these cases")
    parser.add_argument("--smoke", action="store_true", help="tiny models on any device; writes no results file")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reps = args.reps or (20 if device.type == "cuda" else 3)
    cases = SMOKE_CASES if args.smoke else {name: CASES[name] for name in args.case or CASES}
    # Compiling on CPU is for smoke runs only: the CPU figures compare the plan with the eager module.
    compile_with = None if args.no_compile or (device.type == "cpu" and not args.smoke) else compile_options(device)
    rows = []
    for name, (make, size) in cases.items():
        case = ModelCase(name, make, size, device)
        rows += case.timed_rows(reps) + (case.compiled_rows(reps, compile_with) if compile_with else [])
    print_table(f"SR models per frame on {device} ({str(default_dtype(device)).removeprefix('torch.')})", rows)
    if not args.smoke:
        path = write_results("models", device, rows, {"reps": reps, "threads": torch.get_num_threads()})
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
