"""Compile the conv kernel for Hopper (sm_90) without a GPU and report what the compiler made of each config.

    python benchmarks/compile_report.py            # 3x3 64->64 + PReLU, fp16, the static config and GPU_CONV_CONFIGS

Per config: registers, stack bytes (spills), shared memory, and instruction counts from the SASS: HGMMA
(Hopper's warpgroup matrix instructions; HMMA would mean the older path), LDGSTS (asynchronous global ->
shared copies) and 128-bit global loads and stores. Arguments are specialised as Triton specialises them at
run time for a channels_last tensor (unit channel stride, 16-byte aligned pointers and strides), so the
code matches what a launch compiles. Uses Triton's ahead-of-time API and the cuobjdump it ships; written
against triton 3.9 (the GPU image may hold another version: read its own numbers there).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from srkit.kernels import triton_conv
from srkit.kernels._launch import GPU_CONV_CONFIGS, ConvConfig, conv_config

CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
POINTERS = ("x_ptr", "w_ptr", "res_ptr", "out_ptr")
INT_ARGS = ("H", "W", "M", "C_in", "C_out", "sxn", "sxh", "sxw", "son", "soh", "sow", "srn", "src", "srh", "srw")
FLOAT_ARGS = ("slope_value", "res_scale", "clamp_low", "clamp_high", "code_max")
# Arguments a channels_last launch at 64 channels passes as multiples of 16 (Triton marks them divisible).
ALIGNED = POINTERS + ("bias_ptr", "slope_ptr", "C_in", "C_out", "sxn", "sxh", "sxw", "son", "soh", "sow")


def compile_config(config: ConvConfig, dtype: str = "fp16") -> dict:
    """Compile 3x3 64->64 conv + bias + PReLU with `config` for sm_90; resource usage and SASS counts."""
    fn = triton_conv._conv_act_kernel
    names = fn.arg_names
    constants = dict(KH=3, KW=3, PAD=1, OUT_STEP=1, ACT=triton_conv.ACT_CODES["prelu"], HAS_BIAS=True,
                     HAS_RES=False, CIRCULAR=False, SHUFFLE=1, HAS_CLAMP=False, TO_INTEGER=False,
                     DOT_PRECISION="tf32", BLOCK_M=config.block_m, BLOCK_N=config.block_n, BLOCK_K=config.block_k,
                     sxc=1, soc=1)
    types = {**{n: f"*{dtype}" for n in POINTERS}, "bias_ptr": "*fp32", "slope_ptr": "*fp32",
             **{n: "i32" for n in INT_ARGS}, **{n: "fp32" for n in FLOAT_ARGS}}
    source = ASTSource(fn=fn, signature={n: "constexpr" if n in constants else types[n] for n in names},
                       constexprs={(names.index(n),): v for n, v in constants.items()},
                       attrs={(names.index(n),): [["tt.divisibility", 16]] for n in ALIGNED})
    kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                            options=dict(num_warps=config.num_warps, num_stages=config.num_stages))
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "kernel.cubin")
        with open(cubin, "wb") as file:
            file.write(kernel.asm["cubin"])
        usage = subprocess.run([CUOBJDUMP, "--dump-resource-usage", cubin], capture_output=True, text=True,
                               check=True).stdout
        sass = subprocess.run([CUOBJDUMP, "--dump-sass", cubin], capture_output=True, text=True, check=True).stdout
    registers, stack = (int(v) for v in re.search(r"REG:(\d+) STACK:(\d+)", usage).groups())
    return {"registers": registers, "stack_bytes": stack, "shared_bytes": kernel.metadata.shared,
            "HGMMA": sass.count("HGMMA"), "HMMA": len(re.findall(r"\bHMMA", sass)),
            "LDGSTS": sass.count("LDGSTS"), "LDG.128": sass.count("LDG.E.128"), "STG.128": sass.count("STG.E.128")}


def main() -> int:
    configs = dict.fromkeys((conv_config(64, 64), *GPU_CONV_CONFIGS))
    print(f"conv 3x3 64->64 + PReLU, fp16, sm_90, triton {triton.__version__}")
    print(f"{'config':<72} {'regs':>5} {'stack':>6} {'shared':>7} {'HGMMA':>6} {'HMMA':>5} {'LDGSTS':>7} "
          f"{'LDG.128':>8} {'STG.128':>8}")
    for config in configs:
        r = compile_config(config)
        print(f"{str(config):<72} {r['registers']:>5} {r['stack_bytes']:>6} {r['shared_bytes']:>7} {r['HGMMA']:>6} "
              f"{r['HMMA']:>5} {r['LDGSTS']:>7} {r['LDG.128']:>8} {r['STG.128']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
