"""One upscale request: the model and how to run it, checked once where it enters srkit (the command line, the
Python API `Upscaler`, the VapourSynth filter) and handed down unchanged.

Torch-free and picklable: worker processes and Ray actors each build their Upscaler from it. Values left as None
are decided by the one rule that owns them: the device by `environment.default_device`, the batch by
`defaults.default_batch` for that device, the precision by the engine (`engine/plan.py`: fp16 on CUDA where the
model allows it), the tile from free memory per image, the overlap from the model's descriptor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .defaults import DEFAULT_MODEL, DTYPE_NAMES, SMALLEST_TILE
from .errors import SrkitError


class RequestError(SrkitError, ValueError):
    """An option of a request that cannot work (names the option, what it got and what it takes)."""

    exit_code = 2


@dataclass(frozen=True)
class UpscaleRequest:
    """What to upscale with: each field checked when the request is made."""

    model: str = DEFAULT_MODEL
    """A model name or weights file."""
    device: str | None = None
    """'cpu', 'cuda' or 'cuda:N'; None: the first GPU, else the CPU."""
    dtype: str | None = None
    """One of DTYPE_NAMES; None: the engine's default for the device and model."""
    batch: int | None = None
    """Tiles or video frames per model call; None: defaults.default_batch of the device."""
    tile: int | None = None
    """Core tile size in input pixels; None: chosen from free memory for each image."""
    overlap: int | None = None
    """Context pixels around each tile; None: the model's tile_overlap."""
    output_scale: float | None = None
    """Output size / input size (the user's -s); None: the model's scale, no resize after it."""
    wrap: bool = False
    """Treat the image as periodic (seamless textures): tiles and the resize take context across the edges."""

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in DTYPE_NAMES:
            raise RequestError(f"dtype {self.dtype!r}: use one of {', '.join(DTYPE_NAMES)}")
        _check_integer("batch", self.batch, 1)
        _check_integer("overlap", self.overlap, 0)
        if self.tile is not None and (not _is_integer(self.tile) or self.tile < SMALLEST_TILE):
            raise RequestError(f"tile must be 'auto' or an integer >= {SMALLEST_TILE}, got {self.tile!r}")
        scale = self.output_scale
        if scale is not None and (
            isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0
        ):
            raise RequestError(f"output_scale must be a positive number, got {scale!r}")

    def on(self, device: str | None) -> UpscaleRequest:
        """The same request on `device` (a worker's own), or unchanged for None."""
        return self if device is None else replace(self, device=device)

    def output_size(self, height: int, width: int, model_scale: int) -> tuple[int, int]:
        """(height, width) of the output of a `height` x `width` input with a model of `model_scale`: the
        only output-size rule (Upscaler.output_size applies it with its loaded model)."""
        scale = self.output_scale or model_scale
        return max(1, round(height * scale)), max(1, round(width * scale))


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_integer(name: str, value: object, least: int) -> None:
    """Refuse a set integer option below `least` (or not an integer) in one line naming it."""
    if value is not None and (not _is_integer(value) or value < least):  # type: ignore[operator]
        raise RequestError(f"{name} must be an integer >= {least}, got {value!r}")
