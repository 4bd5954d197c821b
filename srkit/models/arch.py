"""What one architecture declares (the `Arch` base): id, name, key layouts it is detected by, how to load a
state dict into its module and ModelInfo, and how to lower the module to kernel steps. One object per
architecture, in `srkit/models/<arch>.py`; `registry.py` orders them."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn as nn

from .info import ModelInfo
from .lowering import Program

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """A key layout: its name and the keys a state dict in that layout always has."""

    name: str
    keys: tuple[str, ...]

    def missing(self, state_dict: StateDict) -> list[str]:
        """The layout's keys that `state_dict` lacks."""
        return [key for key in self.keys if key not in state_dict]


class Arch(ABC):
    """One architecture: detection from declared key layouts, load from shapes, lowering to kernel steps."""

    id: str
    name: str
    layouts: tuple[Layout, ...]
    trainable: bool = False
    max_context: int | None = None
    """Where the receptive radius is huge (RRDB, UNet graphs): the most context a tile window takes on each side,
    in input pixels (None: the whole radius)."""
    blend_pixels: int | None = None
    """Context beyond that over which neighbouring tiles blend (None: the engine's default, engine/runner.py)."""

    def layout_of(self, state_dict: StateDict) -> Layout | None:
        """The first declared layout whose keys are all present, or None."""
        return next((layout for layout in self.layouts if not layout.missing(state_dict)), None)

    def detect(self, state_dict: StateDict) -> bool:
        """True if `state_dict` is in one of this architecture's key layouts."""
        return self.layout_of(state_dict) is not None

    def closest(self, state_dict: StateDict) -> tuple[float, Layout, list[str]]:
        """(share of keys present, layout, missing keys) of the declared layout `state_dict` comes closest to."""

        def share(layout: Layout) -> float:
            return 1.0 - len(layout.missing(state_dict)) / len(layout.keys)

        best = max(self.layouts, key=share)
        return share(best), best, best.missing(state_dict)

    @abstractmethod
    def load(self, state_dict: StateDict, hints: dict) -> tuple[nn.Module, ModelInfo]:
        """The module in eval mode with the weights, and its descriptor; every size comes from tensor shapes
        (`hints` is srkit metadata, for the few facts shapes cannot show)."""

    def hints(self, module: nn.Module) -> dict:
        """Facts about `module` its weights do not show, to store beside them (srkit safetensors metadata)."""
        return {}

    @abstractmethod
    def lower(self, module: nn.Module, info: ModelInfo, device: torch.device) -> Program:
        """The module as a `lowering.Program` of srkit.kernels calls, weights on `device`."""

    def build(self, *, features: int, depth: int, scale: int, growth: int) -> nn.Module:
        """A freshly initialised network for `srkit train sr` (trainable architectures only)."""
        raise NotImplementedError(f"{self.id} is not trainable here")

    def train_multiple(self, scale: int) -> int:
        """What low-resolution training crops must be a multiple of at `scale`."""
        return 1

    def train_scales(self) -> tuple[int, ...]:
        """Scales `srkit train sr` can train this architecture at."""
        return (2, 3, 4)


def sequence_indices(state_dict: StateDict, pattern: str) -> list[int]:
    """Sorted distinct integers captured by the first group of `pattern` over all keys (e.g. r'body\\.(\\d+)\\.')."""
    found = (re.match(pattern, key) for key in state_dict)
    return sorted({int(m.group(1)) for m in found if m})


def parameter_count(module: nn.Module) -> int:
    """Number of weights in `module`."""
    return sum(p.numel() for p in module.parameters())


def load_strict(module: nn.Module, state_dict: StateDict) -> nn.Module:
    """`module` with `state_dict` loaded (every key must fit), in eval mode."""
    module.load_state_dict(state_dict, strict=True)
    return module.eval()
