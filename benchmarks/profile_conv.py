"""One srkit conv2d_act + PReLU launch and one cuDNN conv + PReLU at the issue's shape, for Nsight Compute.

    python benchmarks/profile_conv.py                 # compiles and autotunes (fills the caches); run this first
    ncu --clock-control none --set full --kernel-name regex:'_conv_act_kernel|fprop|implicit|conv' \\
        python benchmarks/profile_conv.py             # then profile: one launch of each, nothing else to tune

Shape: 1x64x540x960, 3x3 64->64, fp16 (or --dtype bf16), channels_last, random data (never zeros).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import relative_rms  # noqa: E402

import srkit.kernels as K  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=list(DTYPES), default="fp16")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("profile_conv: no CUDA device here; nothing to profile")
        return 0
    dtype, device = DTYPES[args.dtype], torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 540, 960, generator=g).to(device, dtype).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(64, 64, 3, 3, generator=g) / 24).to(device, dtype)
    bias, slope = (torch.randn(64, generator=g) * 0.1).to(device, dtype), torch.full((64,), 0.25).to(device, dtype)
    ours = K.conv2d_act(x, weight, bias, "prelu", slope)
    theirs = F.prelu(F.conv2d(x, weight.contiguous(memory_format=torch.channels_last), bias, padding=1), slope)
    torch.cuda.synchronize()
    print(f"profile_conv: srkit vs cuDNN relative RMS error {relative_rms(ours, theirs):.1e} ({args.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
