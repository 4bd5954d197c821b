"""Kernel benchmark: srkit's Triton ops vs what a user would otherwise run (cuDNN / torch eager / torch.compile).

    python benchmarks/bench_kernels.py            # on a CUDA machine: table + benchmarks/results/kernels-<gpu>.json
    python benchmarks/bench_kernels.py --smoke    # tiny shapes on any device, checks the script; writes nothing

Every srkit result is checked against the baseline's output before it is timed, so a fast wrong kernel
cannot be reported. On a machine without CUDA (and without --smoke) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    Row,
    check_close,
    compile_options,
    compiled_row,
    print_table,
    time_back_to_back,
    time_call,
    time_graph_replays,
    write_results,
)

import srkit.kernels as K  # noqa: E402

FULL = dict(batch=1, channels=64, height=540, width=960, image_height=540, image_width=960)
SMOKE = dict(batch=1, channels=16, height=24, width=40, image_height=24, image_width=40)


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


# Relative RMS error allowed against the baseline's output: one rounding of the output dtype, plus accumulation order.
RMS_LIMITS = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 1e-4}


def _check(name: str, got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> str:
    """check_close with the tolerance for `dtype`."""
    return check_close(name, got, expected, RMS_LIMITS[dtype])


def bench_conv(shape: dict, dtype: torch.dtype, device: torch.device, compile_with: dict | None) -> list[Row]:
    """3x3 conv C->C + PReLU: srkit fused (autotuned, and every candidate config) vs cuDNN conv alone and conv +
    separate PReLU vs torch.compile; each timed back to back and (on CUDA) as CUDA graph replays.

    Both sides get what they take without a cast per call (srkit: fp32 bias and slope, cuDNN: its dtype's); srkit
    writes a preallocated output, which is NaN-filled before its check against cuDNN's result."""
    from srkit.kernels import _launch, triton_conv

    n, c, h, w = shape["batch"], shape["channels"], shape["height"], shape["width"]
    case = f"conv3x3+prelu {n}x{c}x{h}x{w} {str(dtype)[6:]}"
    g = torch.Generator().manual_seed(0)
    x = _nhwc(torch.randn(n, c, h, w, generator=g)).to(device, dtype)
    weight32 = torch.randn(c, c, 3, 3, generator=g) / (9 * c) ** 0.5
    bias32 = (torch.randn(c, generator=g) * 0.1).to(device)
    slope32 = torch.full((c,), 0.25, device=device)
    weight, bias, slope = weight32.to(device, dtype), bias32.to(dtype), slope32.to(dtype)
    weight_cl = _nhwc(weight)
    out = torch.empty_like(x)
    flops = 2.0 * n * h * w * c * c * 9
    moved = 2 * x.numel() * x.element_size() + weight.numel() * weight.element_size()

    def cudnn_conv():  # its output comes from the caching allocator: no allocation cost on the GPU
        return F.conv2d(x, weight_cl, bias, padding=1)

    def cudnn():
        return F.prelu(cudnn_conv(), slope)

    def fused(config=None):
        if config is None:
            return K.conv2d_act(x, weight, bias32, "prelu", slope32, out=out)
        return triton_conv.conv2d_act(x, weight, bias32, "prelu", slope32, out=out, config=config)

    expected = cudnn()

    def checked(label: str, config=None) -> str:
        out.fill_(float("nan"))
        return _check(f"{case} {label}", fused(config), expected, dtype)

    rows = _timed(case, "cuDNN conv", cudnn_conv, device, "no PReLU")
    rows += _timed(case, "cuDNN conv + PReLU", cudnn, device, "two kernels")
    rows += _timed(case, "srkit conv2d_act", fused, device, checked("autotuned"))
    configs = dict.fromkeys((_launch.conv_config(c, c), *_launch.GPU_CONV_CONFIGS))
    for config in configs if device.type == "cuda" else ():
        rows += _timed(
            case,
            f"srkit {config.block_m}x{config.block_n}x{config.block_k} w{config.num_warps} s{config.num_stages}",
            lambda config=config: fused(config),
            device,
            checked(str(config), config),
        )
    if compile_with is not None:
        rows.append(
            compiled_row(
                case, cudnn, lambda got: _check(case + " compiled", got, expected, dtype), device, **compile_with
            )
        )
    for row in rows:
        if row.timing:
            row.tflops = flops / row.timing.median_ms / 1e9
            row.gbps = moved / row.timing.median_ms / 1e6
    return rows


def _timed(case: str, impl: str, fn, device: torch.device, note: str) -> list[Row]:
    """fn timed back to back (no host synchronisation between calls) and, on CUDA, as CUDA graph replays."""
    rows = [Row(case, impl, time_back_to_back(fn, device), note=note)]
    if device.type == "cuda":
        rows.append(Row(case, f"{impl} (graph)", time_graph_replays(fn, device), note=note))
    return rows


def bench_resampling(shape: dict, dtype: torch.dtype, device: torch.device) -> list[Row]:
    """upsample and the fused pixel_shuffle_add epilogue vs the torch ops they replace."""
    n, h, w = shape["batch"], shape["image_height"], shape["image_width"]
    g = torch.Generator().manual_seed(1)
    image = _nhwc(torch.rand(n, 3, h, w, generator=g)).to(device, dtype)
    rows = []
    for mode, scale in (("nearest", 4), ("bilinear", 2), ("bicubic", 4)):
        case = f"upsample {mode} x{scale} {n}x3x{h}x{w} {str(dtype)[6:]}"

        def torch_up(mode=mode, scale=scale):
            return F.interpolate(image, scale_factor=scale, mode=mode)

        def srkit_up(mode=mode, scale=scale):
            return K.upsample(image, scale, mode)

        moved = image.numel() * image.element_size() * (1 + scale * scale)
        note = _check(case, srkit_up(), torch_up(), dtype)
        rows += [
            Row(case, "torch F.interpolate", time_call(torch_up, device)),
            Row(case, "srkit upsample", time_call(srkit_up, device), note=note),
        ]
        for row in rows[-2:]:
            row.gbps = moved / row.timing.median_ms / 1e6
    scale = 4
    y = _nhwc(torch.rand(n, 3 * scale * scale, h, w, generator=g) - 0.5).to(device, dtype)
    case = f"pixel_shuffle_add x{scale} -> uint8 HWC {n}x3x{h}x{w}"

    def torch_epilogue():
        z = F.pixel_shuffle(y, scale) + F.interpolate(image, scale_factor=scale, mode="nearest")
        return (z.clamp(0, 1) * 255 + 0.5).floor().permute(0, 2, 3, 1).to(torch.uint8).contiguous()

    def srkit_epilogue():
        return K.pixel_shuffle_add(y, scale, image, "nearest", (0.0, 1.0), torch.uint8)

    mismatch = (srkit_epilogue().int() - torch_epilogue().int()).abs().max().item()
    if mismatch > 1:
        raise AssertionError(f"{case}: codes differ by {mismatch}; not timing a wrong result")
    moved = y.numel() * y.element_size() + image.numel() * image.element_size() + n * 3 * h * w * scale**2
    rows += [
        Row(case, "torch (5 ops)", time_call(torch_epilogue, device)),
        Row(case, "srkit pixel_shuffle_add", time_call(srkit_epilogue, device), note=f"max code diff {mismatch}"),
    ]
    for row in rows[-2:]:
        row.gbps = moved / row.timing.median_ms / 1e6
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on any device; writes no results file")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() and not args.smoke:
        print(
            "bench_kernels: no CUDA device here; these are GPU kernel timings, so nothing is measured "
            "(run on a GPU machine, or use --smoke to check the script)."
        )
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shape = SMOKE if args.smoke else FULL
    dtypes = (torch.float16, torch.bfloat16) if device.type == "cuda" else (torch.float32,)
    rows: list[Row] = []
    options = None if args.no_compile else compile_options(device)
    for dtype in dtypes:
        rows += bench_conv(shape, dtype, device, options)
    print_table("conv2d_act (fused bias + PReLU) vs cuDNN", rows)
    resampling = bench_resampling(shape, dtypes[0], device)
    print_table("resampling vs torch", resampling)
    rows += resampling
    if not args.smoke:
        path = write_results("kernels", device, rows, {"shape": shape, "dtypes": [str(d) for d in dtypes]})
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
