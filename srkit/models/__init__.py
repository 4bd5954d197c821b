"""SR architectures and how to recognise them: each module has detect(state_dict) and load(state_dict)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ModelFormatError
from . import compact, rrdb, seednet
from .info import ModelInfo

# Checked in this order; an earlier entry wins where two would match (compact's rule is the loosest).
ARCHITECTURES = {rrdb.ARCH: rrdb, seednet.ARCH: seednet, compact.ARCH: compact}

__all__ = ["ARCHITECTURES", "ModelInfo", "build_from_state_dict", "detect_arch"]


def detect_arch(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The architecture id whose key layout `state_dict` has, or None."""
    return next((arch for arch, module in ARCHITECTURES.items() if module.detect(state_dict)), None)


def build_from_state_dict(state_dict: dict[str, torch.Tensor], metadata: dict | None = None,
                          source: str = "weights") -> tuple[nn.Module, ModelInfo]:
    """Detect the architecture from the keys, rebuild the module in eval mode and describe it."""
    metadata = metadata or {}
    arch = metadata.get("arch") or detect_arch(state_dict)
    if arch is None:
        sample = ", ".join(sorted(state_dict)[:4])
        raise ModelFormatError(f"{source}: unknown architecture (keys begin {sample}); srkit reads compact "
                               "(SRVGGNetCompact), rrdb (RRDBNet) and seednet weights")
    try:
        if arch == seednet.ARCH:
            if "scale" not in metadata:
                raise ModelFormatError(f"{source}: seednet weights do not show their scale; load them from "
                                       "srkit's .safetensors, which records it")
            return seednet.load(state_dict, int(metadata["scale"]))
        if arch == compact.ARCH:
            return compact.load(state_dict, act=metadata.get("act"))
        if arch == rrdb.ARCH:
            return rrdb.load(state_dict)
    except (RuntimeError, KeyError, ValueError) as error:
        raise ModelFormatError(f"{source}: {arch} weights do not fit the network ({str(error).splitlines()[0]})")
    raise ModelFormatError(f"{source}: architecture {arch!r} in its metadata is not one srkit knows")
