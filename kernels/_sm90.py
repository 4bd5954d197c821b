"""srkit's Triton launches judged by their Hopper (sm_90) compile, on a machine without a GPU.

`captured_launches()` records every Triton launch the srkit ops make on CPU tensors instead of running it;
`compile_launch` specialises a recorded launch exactly as Triton does when it launches (its own binder and
`_pack_args`: divisibility by 16, unit strides, constexprs), compiles it for sm_90 and reads the result: registers
and spills (ptxas), shared memory, CTAs per SM, tensor-core instructions (HGMMA) and pipeline drains, counted in the
code the compiler made. `GATE` holds the thresholds CI enforces on every conv launch of the shipped plans.
Compiles are cached per process by specialisation, so a launch repeated through a plan costs one compile.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

import triton
from triton import knobs
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.runtime.jit import JITFunction, create_function_from_signature

SM90 = GPUTarget("cuda", 90, 32)
NVIDIA_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")

# An H100 SM: 64 K 32-bit registers (allocated per warp in units of 256), 228 KiB of shared memory of which a CTA
# may use 227 KiB and each resident CTA reserves 1 KiB, at most 64 warps and 32 CTAs.
SM_REGISTERS, REGISTER_UNIT = 65536, 256
SM_SHARED, CTA_RESERVED_SHARED = 233472, 1024
SM_WARPS, SM_CTAS = 64, 32


@dataclass(frozen=True)
class Launch:
    """One recorded kernel launch: the JIT function, its grid and the arguments as the launcher passed them."""

    kernel: JITFunction
    grid: tuple
    args: tuple
    kwargs: dict

    @property
    def name(self) -> str:
        """The kernel's function name."""
        return self.kernel.fn.__name__

    @property
    def arguments(self) -> dict:
        """Every argument by name (positional and keyword)."""
        return {**dict(zip(self.kernel.arg_names, self.args)), **self.kwargs}


@dataclass
class Compiled:
    """What the sm_90 compile of one specialised launch holds."""

    registers: int
    spill_stores: int
    spill_loads: int
    shared_bytes: int
    num_warps: int
    num_stages: int
    hgmma: int  # warpgroup MMA instructions in the SASS (Hopper tensor cores)
    hmma: int  # pre-Hopper tensor-core instructions
    drains: int  # full waits on the MMA / async-copy pipeline in the kernel's code
    loops: int  # scf.for loops in the compiled kernel
    extra: dict = field(default_factory=dict)

    @property
    def ctas_per_sm(self) -> int:
        """Resident CTAs per H100 SM, limited by registers, shared memory and warps."""
        per_warp = -(-self.registers * 32 // REGISTER_UNIT) * REGISTER_UNIT
        by_regs = SM_REGISTERS // max(1, per_warp * self.num_warps)
        by_shared = SM_SHARED // (self.shared_bytes + CTA_RESERVED_SHARED)
        return min(by_regs, by_shared, SM_WARPS // self.num_warps, SM_CTAS)

    @property
    def spill_bytes(self) -> int:
        """Bytes spilled to local memory (stores + loads, as ptxas reports them)."""
        return self.spill_stores + self.spill_loads


@contextmanager
def captured_launches() -> Iterator[list[Launch]]:
    """Within the block, srkit ops on CPU tensors take the Triton path and record their launches (nothing runs,
    outputs are never written); the launch settings are the static ones (no autotuning without a GPU)."""
    package: Any = importlib.import_module(__name__.rpartition(".")[0])  # its dispatcher is patched for the block
    launches: list[Launch] = []

    def record(self, *args, grid, warmup, **kwargs):
        launches.append(Launch(self, tuple(grid), args, kwargs))

    saved = (JITFunction.run, package.backend_for, os.environ.get("SRKIT_AUTOTUNE"))
    JITFunction.run = record
    package.backend_for = lambda x: "triton"
    os.environ["SRKIT_AUTOTUNE"] = "0"
    try:
        yield launches
    finally:
        JITFunction.run, package.backend_for = saved[:2]
        if saved[2] is None:
            os.environ.pop("SRKIT_AUTOTUNE")
        else:
            os.environ["SRKIT_AUTOTUNE"] = saved[2]


def specialise(launch: Launch, target: GPUTarget = SM90) -> tuple[ASTSource, dict, str]:
    """(source, options, cache key) of `launch` as Triton's launcher would compile it for `target`."""
    fn, kwargs = launch.kernel, dict(launch.kwargs)
    kwargs["debug"] = kwargs.get("debug", fn.debug) or knobs.runtime.debug
    for name in ("instrumentation_mode", "fpsan_homomorphic_casts"):
        if hasattr(knobs.compilation, name):
            kwargs[name] = getattr(knobs.compilation, name)
    backend = make_backend(target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound_args, specialization, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound_args, specialization, options)
    key = repr((fn.cache_key, specialization, sorted(options.__dict__.items())))
    return ASTSource(fn, signature, constexprs, attrs), options.__dict__, key


_compiled: dict[str, Compiled] = {}


def _tool(name: str, *args: str) -> str:
    """stdout of one of the NVIDIA tools the triton wheel ships."""
    return subprocess.run([os.path.join(NVIDIA_BIN, name), *args], capture_output=True, text=True, check=True).stdout


def _ptxas_line(pattern: str, log: str) -> tuple[str, ...]:
    """The groups of `pattern` in ptxas's verbose log; a log without it means this Triton's log format changed."""
    match = re.search(pattern, log)
    if match is None:
        raise RuntimeError(f"ptxas log has no line matching {pattern!r}:\n{log}")
    return match.groups()


def count_drains(ttgir: str) -> int:
    """Full pipeline waits in the kernel: warpgroup-MMA waits for 0 pending, or (without warpgroup MMA) async-copy
    waits for 0 pending; one per output tile is the epilogue's, more mean the main loop empties its pipeline."""
    mma = re.findall(r"ttng\.warp_group_dot_wait .*?pendings = (\d+)", ttgir)
    if mma:
        return sum(1 for pending in mma if pending == "0")
    return sum(1 for pending in re.findall(r"ttg\.async_wait .*?num = (\d+)", ttgir) if pending == "0")


def compile_launch(launch: Launch, target: GPUTarget = SM90) -> Compiled:
    """The sm_90 compile of `launch`, read; one compile per distinct specialisation in this process."""
    source, options, key = specialise(launch, target)
    if key in _compiled:
        return _compiled[key]
    log = StringIO()
    saved = knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile
    # Compiled afresh (not from Triton's cache) so that Triton's own ptxas run, with its flags, reports the spills.
    knobs.nvidia.dump_ptxas_log = knobs.compilation.always_compile = True
    try:
        with redirect_stdout(log):
            kernel = triton.compile(source, target=target, options=options)
    finally:
        knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile = saved
    ptxas = log.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "kernel.cubin")
        with open(cubin, "wb") as file:
            file.write(kernel.asm["cubin"])
        sass = _tool("cuobjdump", "--dump-sass", cubin)
    registers = int(_ptxas_line(r"Used (\d+) registers", ptxas)[0])
    stores, loads = (int(v) for v in _ptxas_line(r"(\d+) bytes spill stores, (\d+) bytes spill loads", ptxas))
    ttgir = kernel.asm["ttgir"]
    result = Compiled(
        registers,
        stores,
        loads,
        kernel.metadata.shared,
        options["num_warps"],
        options["num_stages"],
        hgmma=len(re.findall(r"\bHGMMA\.", sass)),
        hmma=len(re.findall(r"\bHMMA\.", sass)),
        drains=count_drains(ttgir),
        loops=ttgir.count("scf.for"),
        extra={
            "LDGSTS": sass.count("LDGSTS"),
            "UTMALDG": sass.count("UTMALDG"),
            "STG.128": len(re.findall(r"STG\.E\.128", sass)),
            "STG": len(re.findall(r"\bSTG\.", sass)),
        },
    )
    _compiled[key] = result
    return result


@dataclass(frozen=True)
class Gate:
    """What CI asks of every conv launch's sm_90 compile (fp16 and bf16)."""

    tensor_core: bool = True  # warpgroup MMA (HGMMA) in the code
    max_spill_bytes: int = 0
    max_drains: int = 1  # the epilogue's; a main loop that drains per tap fails
    min_ctas_64: int = 3  # for the 64 -> 64 3x3 conv: three tiles resident per SM hide each other's latency

    def failures(self, compiled: Compiled, c_in: int, c_out: int, kernel: int) -> list[str]:
        """Why `compiled` (a conv of c_in -> c_out, kernel x kernel) misses the gate; empty if it passes."""
        why = []
        if self.tensor_core and compiled.hgmma == 0:
            why.append(f"no HGMMA (tensor-core MMA): {compiled.hmma} HMMA")
        if compiled.spill_bytes > self.max_spill_bytes:
            why.append(f"spills {compiled.spill_stores}/{compiled.spill_loads} B (stores/loads)")
        if compiled.drains > self.max_drains:
            why.append(f"{compiled.drains} pipeline drains per tile")
        if (c_in, c_out, kernel) == (64, 64, 3) and compiled.ctas_per_sm < self.min_ctas_64:
            why.append(
                f"{compiled.ctas_per_sm} CTAs per SM ({compiled.registers} registers, {compiled.shared_bytes} B shared)"
            )
        return why


GATE = Gate()
