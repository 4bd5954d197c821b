"""The options of `srkit train sr` and `srkit eval`: choices, defaults and the training configuration.

Importable without torch, so the command line builds its parser (and `srkit --version` answers) at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SrkitError

if TYPE_CHECKING:
    from ..models.arch import Arch

LOSSES = ("l1", "mse", "ssim", "l1+ssim")
DEGRADATIONS = ("bicubic", "real")
DEFAULT_MAX_SIDE = 1280
"""Lossy photos longer than this are reduced by area before training or evaluation (see data.py)."""


@dataclass
class SRTrainConfig:
    """Everything that defines a training run; saved in checkpoints and checked on --resume."""

    arch: str = "compact"
    scale: int = 4
    features: int = 32
    num_conv: int = 8
    patch: int = 48
    batch: int = 16
    steps: int = 10_000
    lr: float = 5e-4
    lr_min: float = 1e-6
    loss: str = "l1"
    degradation: str = "bicubic"
    seed: int = 0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    val_every: int = 500
    checkpoint_every: int = 500
    val_crop: int | None = 256
    max_side: int | None = DEFAULT_MAX_SIDE
    growth: int = 32
    """RRDB only: channels each dense-block conv adds."""
    init: str | None = None
    """Model name or weights file to start from (fine-tuning) instead of a random initialisation."""

    def __post_init__(self) -> None:
        arch = self.architecture()
        if self.loss not in LOSSES:
            raise SrkitError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.scale not in arch.train_scales():
            raise SrkitError(
                f"{self.arch} trains at --scale {' or '.join(map(str, arch.train_scales()))}, got {self.scale}"
            )
        if self.patch % arch.train_multiple(self.scale):
            raise SrkitError(
                f"{self.arch} at x{self.scale} needs a --patch that is a multiple of "
                f"{arch.train_multiple(self.scale)}, got {self.patch}"
            )
        if "ssim" in self.loss and self.patch * self.scale <= 11:
            raise SrkitError(f"an SSIM loss needs HR crops over 11 pixels; raise --patch (now {self.patch})")

    def architecture(self) -> Arch:
        """The registry's architecture that --arch names; an error unless it is one `srkit train sr` trains."""
        from ..models.registry import by_id, trainable_ids  # here, not at the top: this module must not import torch

        arch = by_id(self.arch)
        if arch is None or self.arch not in trainable_ids():
            raise SrkitError(f"--arch must be one of {', '.join(trainable_ids())}, got {self.arch!r}")
        return arch


# Keys of SRTrainConfig a resumed run may change (how long and how often), the rest must match the checkpoint.
RESUMABLE_CHANGES = {"steps", "val_every", "checkpoint_every"}
