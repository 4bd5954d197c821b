"""Repacked weights, computed once per weight tensor (and dtype) instead of on every call.

Entries are keyed by the tensor's identity and dropped when the tensor is freed; an in-place update
of the weight (training, loading a state dict) bumps its version counter and forces a repack.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch

_cache: dict[tuple, tuple[int, torch.Tensor]] = {}


def packed(
    weight: torch.Tensor, layout: str, dtype: torch.dtype, pack: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Return pack(weight) converted to `dtype`, cached for this tensor, layout and dtype."""
    key = (id(weight), layout, dtype)
    version = weight._version
    hit = _cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    with torch.no_grad():
        result = pack(weight.detach()).to(dtype).contiguous()
    if hit is None:
        weakref.finalize(weight, _cache.pop, key, None)
    _cache[key] = (version, result)
    return result


def cached_entries() -> int:
    """How many packed weights are held (for tests and diagnostics)."""
    return len(_cache)
