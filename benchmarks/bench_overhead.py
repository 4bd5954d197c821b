"""Host time per kernel launch: a bound plan's run vs the per-call path (bind, checks, allocation on every call).

    python benchmarks/bench_overhead.py                  # CPU, reference kernels; + CUDA (Triton) where available
    python benchmarks/bench_overhead.py --reps 2000
    TRITON_INTERPRET=1 SRKIT_KERNELS=triton python benchmarks/bench_overhead.py --stub-launches

The inputs are tiny (one 8x8 image), so the kernels cost next to nothing and the time is the Python around them.
"per call" is `program.forward(plan.prepare(x))`, the path without a bound plan: the batch copied into a fresh
input, SRKIT_KERNELS read, buffers allocated and every launch checked, on every call; "bound" is
`plan.bind(...).run(x)`: the kernels chosen, the launches checked and the activations allocated once (on the
reference kernels only the maps that are slices of wider buffers are preallocated; Triton writes every launch
into a bound buffer). Launches counted: kernel calls plus plain-torch passes (copies, adds) of one run. On the CPU
the process CPU time per run is measured too (the shared machine's wall times are mostly waiting). Results:
table and benchmarks/results/overhead-<device>.json.

`--stub-launches` (no GPU needed) times the Triton path's host work on CPU tensors: the Triton kernels are
replaced by stand-ins that launch nothing, so what is timed is srkit's Python around each launch (weight cache,
argument preparation, grid, strides, batch splitting) without Triton's own launcher and without any kernel;
outputs are then never written (not compared). It also times "bound + graph": the bound run as a CUDA-graph
replay (`srkit.engine.plan.GraphReplay`, what a bound plan does on CUDA) with a stand-in graph whose replay does
nothing, so what is timed is the host work of a replayed frame (input copy, replay call, output copy) without the
driver's graph launch (a few microseconds on a GPU, not measurable here). Results: overhead-triton-host-cpu.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table, time_call, write_results  # noqa: E402

from srkit.engine.plan import BoundPlan, GraphReplay, build_plan  # noqa: E402
from srkit.models import compact, load_state_dict, rrdb, seednet, span  # noqa: E402
from srkit.models.zoo import LoadedModel  # noqa: E402

MODELS = {
    # one launch per conv, the last one fused with shuffle, base, clamp and uint8 packing
    "compact F16 x4 convs 6": (lambda: compact.CompactSR(features=16, num_conv=4, scale=4), 6),
    # conv_first, its copy into the first dense-block buffer, 2 blocks x 3 dense blocks x 5 convs (the RRDB residual
    # in the last one's epilogue), conv_body, 2 x (upsample + conv), conv_hr, conv_last (clamp and pack)
    "rrdb F16 G8 2 blocks": (lambda: rrdb.RRDBNet(features=16, num_block=2, growth=8, scale=4), 1 + 1 + 30 + 1 + 4 + 2),
    # the input normalisation (subtract, multiply), conv_1, 6 blocks x 3 convs, conv_2, conv_cat, the head (shuffle,
    # clamp and pack)
    "span F16 x4": (lambda: span.SPAN(features=16, scale=4), 2 + 1 + 18 + 3),
    # 2 low-res convs, 2 upsamples into the joined buffer, 3 body convs, the tail (skip, pack)
    "seednet F16 x2": (lambda: seednet.SeedNet(features=16, num_conv=3, scale=2), 2 + 2 + 3 + 1),
}


def cpu_median_us(fn, reps: int) -> float:
    """Median process CPU time of one call of fn, in microseconds: on a shared machine wall time also counts the
    time this process waits for a core, CPU time does not (torch runs one thread here, see the device name)."""
    samples = []
    for _ in range(reps):
        start = time.process_time_ns()
        fn()
        samples.append(time.process_time_ns() - start)
    return statistics.median(samples) / 1e3


class NoLaunch:
    """Stands in for a Triton kernel: `kernel[grid](*args, **meta)` launches nothing."""

    def __getitem__(self, grid):
        return lambda *args, **meta: None


def stub_triton_kernels() -> None:
    """Replace every srkit Triton kernel by a NoLaunch (needs Triton and SRKIT_KERNELS=triton with the
    interpreter, so that CPU tensors take the Triton path)."""
    from srkit.kernels import _launch, triton_conv, triton_pixel_shuffle, triton_upsample

    if not _launch.INTERPRETING or os.environ.get("SRKIT_KERNELS") != "triton":
        raise SystemExit("--stub-launches needs TRITON_INTERPRET=1 and SRKIT_KERNELS=triton in the environment")
    triton_conv._conv_act_kernel = NoLaunch()
    triton_pixel_shuffle._pixel_shuffle_add_kernel = NoLaunch()
    triton_upsample._upsample_kernel = NoLaunch()


class NoReplay:
    """Stands in for a captured CUDA graph: replay() launches nothing."""

    def replay(self) -> None:
        return None


def stand_in_capture(run):
    """A GraphReplay capture that runs the launches once (for the output tensor) and replays nothing."""
    return NoReplay(), run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument(
        "--stub-launches",
        action="store_true",
        help="time the Triton path's host work on CPU with kernels that launch nothing",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the host time around launches is measured, and CPU time is then one thread's
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if args.stub_launches:
        stub_triton_kernels()
        devices = [torch.device("cpu")]
    os.environ.setdefault("SRKIT_KERNELS", "auto")  # reference on CPU tensors, Triton on CUDA ones
    rows = []
    for device in devices:
        for case, (make, launches) in MODELS.items():
            network = make()
            hints = {"scale": network.scale} if case.startswith("seednet") else {}
            module, info = load_state_dict(network.state_dict(), {"arch": case.split()[0], **hints})
            plan = build_plan(LoadedModel.of(module, info, case), device, torch.float32)
            x = torch.rand(1, 3, 8, 8, device=device)
            bound = plan.bind(1, 8, 8)

            def per_call(plan=plan, x=x):  # this iteration's plan and input, bound at definition
                with torch.inference_mode():
                    return plan.program.forward(plan.prepare(x), (0.0, 1.0), torch.uint8)

            bound_run = partial(bound.run, x, (0.0, 1.0), torch.uint8)

            if not args.stub_launches and not torch.equal(per_call(), bound_run()):
                raise AssertionError(f"{case}: bound and per-call outputs differ; not timing")
            label = f"{case}, {'triton host work' if args.stub_launches else device.type}, {launches} launches"
            impls = [("per call", per_call), ("bound", bound_run)]
            if args.stub_launches:
                replayed = BoundPlan(plan, 1, 8, 8)
                replayed._launch = GraphReplay(replayed._launch, stand_in_capture)
                impls.append(("bound + graph", partial(replayed.run, x, (0.0, 1.0), torch.uint8)))
            for impl, fn in impls:
                timing = time_call(fn, device, warmup=20, reps=args.reps)
                cpu_us = cpu_median_us(fn, args.reps) if device.type == "cpu" else None
                note = f"{1e3 * timing.median_ms / launches:.1f} us per launch" + (
                    f", CPU time {cpu_us / launches:.1f} us per launch" if cpu_us is not None else ""
                )
                rows.append(
                    Row(
                        label,
                        impl,
                        timing,
                        note=note,
                        extra={
                            "us_per_launch": 1e3 * timing.median_ms / launches,
                            "launches": launches,
                            "cpu_us_per_run": cpu_us,
                        },
                    )
                )
    print_table("Host time per run of a tiny input (8x8): per-call path vs bound plan", rows)
    config = {"reps": args.reps, "input": "1x3x8x8 fp32", "stub_launches": args.stub_launches}
    path = write_results("overhead-triton-host" if args.stub_launches else "overhead", devices[-1], rows, config)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
