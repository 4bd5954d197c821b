"""Upscale an animated GIF, WebP or APNG frame by frame into an animation with the same timing and alpha."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..io.animated import read_animation, write_animation
from ..upscaler import Upscaler
from .types import WriteOptions


def upscale_animation(source: Path, target: Path, upscaler: Upscaler, options: WriteOptions) -> None:
    """Upscale every frame of `source` into `target` (written atomically, an existing file replaced only with
    `options.overwrite`; frame durations and loop kept)."""
    animation = read_animation(source, options.max_pixels)
    bar = tqdm(total=len(animation.frames), unit="frame", leave=False, dynamic_ncols=True, disable=None)

    def frames() -> Iterator[np.ndarray]:
        for frame in animation.frames:
            yield upscaler.upscale(frame)
            bar.update(1)

    try:
        write_animation(frames(), target, animation, options.quality, options.overwrite)
    finally:
        bar.close()
