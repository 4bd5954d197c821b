"""What every CPU executor shares: srkit's cache folder, the weights hash that names cached conversions, the
thread count (torch's: the physical cores unless `--threads` says), this CPU's name
and flags, and the last pass that clamps and packs a runtime's float output as the kernel plans do."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import torch
import torch.nn as nn

from .. import kernels as K
from ..kernels._autotune import cache_path

# Flags that change which backend or precision is fastest (native bf16 / fp16 / int8 dot products, vector width).
RELEVANT_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
    "asimdhp",
    "bf16",
    "i8mm",
    "sve",
)


def cache_folder() -> Path:
    """srkit's cache folder ($SRKIT_CACHE, else under $XDG_CACHE_HOME or ~/.cache)."""
    return cache_path().parent


@cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    """The CPU's model name ("unknown CPU" where the system does not say)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def cpu_flags() -> frozenset[str]:
    """This CPU's flags among RELEVANT_FLAGS."""
    words = set()
    for line in _cpuinfo().splitlines():
        if line.startswith(("flags", "Features")):
            words.update(line.split(":", 1)[1].split())
    return frozenset(words) & frozenset(RELEVANT_FLAGS)


def threads() -> int:
    """Threads a CPU backend uses: torch's intra-op count, which is the physical cores unless `--threads` (or a
    scale-out worker's share of the cores) set it."""
    return torch.get_num_threads()


def weights_key(module: nn.Module, *context: str) -> str:
    """Hash of the module's class, weights and `context` (format and runtime versions): a cached file's name."""
    digest = hashlib.sha256(" ".join((*context, type(module).__qualname__)).encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name} {tuple(tensor.shape)} {tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def finish(y: torch.Tensor, clamp: tuple[float, float] | None, out_dtype: torch.dtype | None) -> torch.Tensor:
    """A runtime's float output y (which may be its own buffer) as Plan.run returns it: clamped and, with
    out_dtype, packed to (N, H, W, C) codes; always a tensor of its own."""
    if out_dtype is not None:
        return K.pixel_shuffle_add(y, 1, clamp=clamp, out_dtype=out_dtype)
    return y.clone() if clamp is None else y.clamp(float(clamp[0]), float(clamp[1]))
