"""Model benchmark: srkit's inference plan vs the pure-PyTorch module, per frame.

    python benchmarks/bench_models.py             # table + benchmarks/results/models-<device>.json
    python benchmarks/bench_models.py --reps 2    # fewer repetitions (the CPU run of RRDB takes a minute a frame)

Cases: compact x4 (64 features, 16 convs) on 960x540 and RRDB x4 (23 blocks) on 480x270. Baseline: the
module run eagerly, fp16 channels_last on CUDA (what Real-ESRGAN's scripts do), fp32 on CPU. The plan's
output is checked against the baseline's before timing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table, time_call, write_results  # noqa: E402

from srkit.engine.plan import build_plan, default_dtype  # noqa: E402
from srkit.models import build_from_state_dict, compact, rrdb  # noqa: E402

CASES = {
    "compact x4 960x540": (lambda: compact.CompactSR(features=64, num_conv=16, scale=4), (540, 960)),
    "rrdb x4 480x270": (lambda: rrdb.RRDBNet(features=64, num_block=23, growth=32, scale=4), (270, 480)),
}


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


def bench_case(name: str, device: torch.device, reps: int) -> list[Row]:
    make, (height, width) = CASES[name]
    module, info = build_from_state_dict(make().state_dict())
    dtype = default_dtype(device)
    module = module.to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    x_dev = x.to(device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    plan = build_plan(module, info, device, dtype)

    def eager():
        with torch.inference_mode():
            return module(x_dev)

    def planned():
        return plan.run(x_dev)

    expected, got = eager().float(), planned().float()
    err = ((got - expected).pow(2).mean().sqrt() / expected.pow(2).mean().sqrt()).item()
    if not err <= (1e-4 if dtype == torch.float32 else 5e-3):
        raise AssertionError(f"{name}: plan differs from the module (relative RMS {err:.1e}); not timing it")
    flops = flops_per_frame(make(), height, width, info.scale)
    warmup = 1 if device.type == "cpu" else 5
    rows = [Row(name, f"eager module {str(dtype)[6:]}", time_call(eager, device, warmup, reps)),
            Row(name, f"srkit plan {str(dtype)[6:]}", time_call(planned, device, warmup, reps),
                note=f"rel. RMS err {err:.1e}")]
    for row in rows:
        row.tflops = flops / row.timing.median_ms / 1e9
        row.extra = {"gflop_per_frame": flops / 1e9, "fps": 1e3 / row.timing.median_ms}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, help="timed repetitions (default 20 on CUDA, 3 on CPU)")
    parser.add_argument("--case", choices=list(CASES), action="append", help="run only these cases")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reps = args.reps or (20 if device.type == "cuda" else 3)
    rows = []
    for name in args.case or list(CASES):
        rows += bench_case(name, device, reps)
    print_table(f"SR models per frame on {device}", rows)
    path = write_results("models", device, rows, {"reps": reps, "threads": torch.get_num_threads()})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
