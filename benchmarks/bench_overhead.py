"""Host time per kernel launch: a bound plan's run vs the per-call path (dispatcher, checks, allocation per call).

    python benchmarks/bench_overhead.py                  # CPU, reference kernels; + CUDA (Triton) where available
    python benchmarks/bench_overhead.py --reps 2000

The inputs are tiny (one 8x8 image), so the kernels cost next to nothing and the time is the Python around them.
"per call" is what Plan.run did before plans were bound: `program.forward(plan.prepare(x))`, every op going
through kernels' dispatcher (SRKIT_KERNELS read, arguments checked, outputs allocated); "bound" is
`plan.bind(...).run(x)`: the kernels chosen and the arguments checked once, activations preallocated where the
program does so (RRDB's dense-block buffers; compact's ping-pong on Triton). Results: table and
benchmarks/results/overhead-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table, time_call, write_results  # noqa: E402

from srkit.engine.plan import build_plan  # noqa: E402
from srkit.models import compact, load_state_dict, rrdb  # noqa: E402

MODELS = {
    # launches per run: one per conv (the last one fused with shuffle, base, clamp and uint8 packing)
    "compact F16 x4 convs 6": (lambda: compact.CompactSR(features=16, num_conv=4, scale=4), 6),
    # conv_first, 2 blocks x 3 dense blocks x 5 convs + 2 RRDB residual adds, conv_body, 2 x (upsample + conv),
    # conv_hr, conv_last, the clamp/pack pass
    "rrdb F16 G8 2 blocks": (lambda: rrdb.RRDBNet(features=16, num_block=2, growth=8, scale=4), 1 + 2 * 16 + 1 + 4 + 3),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500)
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    os.environ.setdefault("SRKIT_KERNELS", "auto")  # reference on CPU tensors, Triton on CUDA ones
    rows = []
    for device in devices:
        for case, (make, launches) in MODELS.items():
            module, info = load_state_dict(make().state_dict(), {"arch": case.split()[0]})
            plan = build_plan(module, info, device, torch.float32)
            x = torch.rand(1, 3, 8, 8, device=device)
            bound = plan.bind(1, 8, 8)

            def per_call():
                with torch.inference_mode():
                    return plan.program.forward(plan.prepare(x), (0.0, 1.0), torch.uint8)

            def bound_run():
                return bound.run(x, (0.0, 1.0), torch.uint8)

            if not torch.equal(per_call(), bound_run()):
                raise AssertionError(f"{case}: bound and per-call outputs differ; not timing")
            label = f"{case}, {device.type}, {launches} launches"
            for impl, fn in (("per call", per_call), ("bound", bound_run)):
                timing = time_call(fn, device, warmup=20, reps=args.reps)
                rows.append(Row(label, impl, timing, note=f"{1e3 * timing.median_ms / launches:.1f} us per launch",
                                extra={"us_per_launch": 1e3 * timing.median_ms / launches, "launches": launches}))
    print_table("Host time per run of a tiny input (8x8): per-call path vs bound plan", rows)
    path = write_results("overhead", devices[-1], rows, {"reps": args.reps, "input": "1x3x8x8 fp32"})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
