"""The shipped plans' Triton launches compiled for Hopper (sm_90) without a GPU, and what the compiler made of each.

    python benchmarks/compile_report.py                       # compact, RRDB, SPAN x4 and the stone generator, fp16
    python benchmarks/compile_report.py --dtypes fp16 bf16 --plans compact
    python benchmarks/compile_report.py --write               # also benchmarks/results/compile-sm90.json
    python benchmarks/compile_report.py --json PATH           # results to PATH (the CI gate reads them)

Each plan is built and bound at a realistic shape on CPU tensors; its launches are recorded instead of run
(`srkit.kernels._sm90.captured_launches`), specialised as Triton specialises them at launch, and compiled for
sm_90 once per distinct specialisation. Per distinct launch: how many times the plan makes it, kernel, shape and
config, registers, spill bytes (stores/loads), shared memory, CTAs per H100 SM, HGMMA (warpgroup tensor-core MMA)
count, pipeline drains, and the bytes a tile loads (input taps + weights) per output element. The conv launches
are held to `_sm90.GATE` (the CI gate, tests/kernels/test_sm90_compile.py); misses are listed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import triton

from srkit.engine.plan import build_plan
from srkit.kernels import _sm90
from srkit.models import compact, load_state_dict, rrdb, span
from srkit.models.generators import load_family
from srkit.models.zoo import LoadedModel

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
RESULTS = Path(__file__).resolve().parent / "results" / "compile-sm90.json"


def _state_plan(make: Callable[[], torch.nn.Module], arch: str):
    def build(dtype: torch.dtype):
        module, info = load_state_dict(make().state_dict(), {"arch": arch})
        return build_plan(LoadedModel.of(module, info, arch), "cpu", dtype)

    return build


def _generator_plan(dtype: torch.dtype):
    model = load_family("stone")
    return build_plan(model, "cpu", dtype)


# name -> (plan builder for a dtype, (height, width) bound): the shipped configurations at the benchmarks' shapes.
PLANS = {
    "compact": (_state_plan(lambda: compact.CompactSR(features=64, num_conv=16, scale=4), "compact"), (540, 960)),
    "rrdb": (_state_plan(lambda: rrdb.RRDBNet(features=64, num_block=23, growth=32, scale=4), "rrdb"), (270, 480)),
    "span": (_state_plan(lambda: span.SPAN(features=48, scale=4), "span"), (540, 960)),
    "generator": (_generator_plan, (64, 64)),
}
GATED_PLANS = ("compact", "rrdb", "span")


def plan_launches(name: str, dtype: torch.dtype) -> list[_sm90.Launch]:
    """Every Triton launch one run of plan `name`, bound at its shape in `dtype`, makes (recorded, not run)."""
    build, (height, width) = PLANS[name]
    plan = build(dtype)
    with _sm90.captured_launches() as launches, torch.inference_mode():
        bound = plan.bind(1, height, width)
        bound.forward(bound.input, (0.0, 1.0), torch.uint8)
    return launches


def conv_shape(launch: _sm90.Launch) -> tuple[int, int, int] | None:
    """(C_in, C_out, kernel size) of a conv launch; None for other kernels."""
    args = launch.arguments
    if "C_in" not in args:
        return None
    return args["C_in"], args["C_out"], args["KH"]


def bytes_per_output(launch: _sm90.Launch, element: int) -> float | None:
    """Bytes one conv tile loads (its input taps and its weights) per output element it writes: the L2-to-SM traffic
    of the implicit GEMM, to compare with the HBM ideal of (C_in + C_out) * element / C_out."""
    shape = conv_shape(launch)
    if shape is None:
        return None
    args = launch.arguments
    c_in, c_out, k = shape
    block_m, block_n = args["BLOCK_M"], min(args["BLOCK_N"], c_out)
    taps = args["KH"] * args["KW"]
    return taps * c_in * element * (block_m + block_n) / (block_m * block_n)


def describe(launch: _sm90.Launch) -> tuple[str, str]:
    """(what the launch computes, its tile config), short."""
    args = launch.arguments
    shape = conv_shape(launch)
    if shape is None:
        blocks = {k: v for k, v in args.items() if k.startswith("BLOCK")}
        return launch.name, " ".join(f"{k}={v}" for k, v in blocks.items())
    c_in, c_out, k = shape
    flags = [name for name in ("HAS_RES", "HAS_OUTER", "CIRCULAR", "TO_INTEGER") if args.get(name)]
    if args.get("SHUFFLE", 1) > 1:
        flags.append(f"shuffle{args['SHUFFLE']}")
    act = args.get("ACT")
    what = f"conv{k}x{k} {c_in}->{c_out} {getattr(act, 'value', act)}" + "".join(f" +{f}" for f in flags)
    config = (
        f"{args['BLOCK_M']}x{args['BLOCK_N']}x{args['BLOCK_K']} w{launch.kwargs.get('num_warps', 4)}"
        f" s{launch.kwargs.get('num_stages', 3)}"
    )
    return what, config


def report(plans: list[str], dtypes: list[str]) -> tuple[list[dict], list[str]]:
    """Rows (one per distinct launch of each plan and dtype) and the gate's misses, printed as they come."""
    rows, misses = [], []
    header = (
        f"{'plan':<10}{'dtype':<6}{'n':>3}  {'launch':<44}{'config':<20}{'regs':>5}{'spill':>10}{'smem':>7}"
        f"{'CTA':>4}{'HGMMA':>6}{'drain':>6}{'B/out':>7}{'s':>5}"
    )
    print(f"sm_90 compile, triton {triton.__version__}")
    print(header)
    for name in plans:
        for dtype_name in dtypes:
            dtype = DTYPES[dtype_name]
            distinct: dict[str, tuple[_sm90.Launch, int]] = {}
            for launch in plan_launches(name, dtype):
                key = _sm90.specialise(launch)[2]
                first, count = distinct.get(key, (launch, 0))
                distinct[key] = (first, count + 1)
            for launch, count in distinct.values():
                began = time.perf_counter()
                compiled = _sm90.compile_launch(launch)
                seconds = time.perf_counter() - began
                what, config = describe(launch)
                per_out = bytes_per_output(launch, dtype.itemsize)
                shape = conv_shape(launch)
                why = _sm90.GATE.failures(compiled, *shape) if shape else []
                if why and name in GATED_PLANS and dtype_name != "fp32":
                    misses.append(f"{name} {dtype_name} {what}: {'; '.join(why)}")
                rows.append(
                    {
                        "plan": name,
                        "dtype": dtype_name,
                        "launches": count,
                        "launch": what,
                        "config": config,
                        **asdict(compiled),
                        "ctas_per_sm": compiled.ctas_per_sm,
                        "bytes_per_output": per_out,
                        "compile_s": seconds,
                        "gate": why,
                    }
                )
                print(
                    f"{name:<10}{dtype_name:<6}{count:>3}  {what[:43]:<44}{config:<20}{compiled.registers:>5}"
                    f"{compiled.spill_stores:>5}/{compiled.spill_loads:<4}{compiled.shared_bytes:>7}"
                    f"{compiled.ctas_per_sm:>4}{compiled.hgmma:>6}{compiled.drains:>6}"
                    f"{per_out if per_out is None else round(per_out, 1)!s:>7}{seconds:>5.0f}",
                    flush=True,
                )
    return rows, misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", nargs="+", choices=sorted(PLANS), default=list(PLANS))
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["fp16"])
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/compile-sm90.json")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    rows, misses = report(args.plans, args.dtypes)
    print(f"\ngate ({_sm90.GATE}): " + ("every conv launch passes" if not misses else f"{len(misses)} misses"))
    for miss in misses:
        print(f"  MISS {miss}")
    for path in [RESULTS] * args.write + [args.json] * (args.json is not None):
        path.write_text(
            json.dumps({"triton": triton.__version__, "target": "sm_90", "rows": rows, "gate_misses": misses}, indent=1)
            + "\n"
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
