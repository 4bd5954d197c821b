"""SR architectures and how to recognise them: one module per architecture (nn.Module + Arch), ordered in
registry.py."""

from __future__ import annotations

from .info import ModelInfo
from .registry import SR_ARCHES, by_id, detect, load_state_dict

__all__ = ["SR_ARCHES", "ModelInfo", "by_id", "detect", "detect_arch", "load_state_dict"]


def detect_arch(state_dict) -> str | None:
    """The id of the architecture whose key layout `state_dict` has, or None."""
    arch = detect(state_dict)
    return None if arch is None else arch.id
