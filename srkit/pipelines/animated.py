"""Upscale an animated GIF, WebP or APNG frame by frame into an animation with the same timing and alpha."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from ..io.animated import read_animation, write_animation
from ..upscaler import Upscaler


def upscale_animation(source: Path, target: Path, upscaler: Upscaler, quality: int, max_pixels: int,
                      overwrite: bool = False) -> None:
    """Upscale every frame of `source` into `target` (written atomically, an existing file replaced only with
    `overwrite`; frame durations and loop kept)."""
    animation = read_animation(source, max_pixels)
    bar = tqdm(total=len(animation.frames), unit="frame", leave=False, dynamic_ncols=True, disable=None)

    def frames() -> Iterator[np.ndarray]:
        for frame in animation.frames:
            yield upscaler.upscale(frame)
            bar.update(1)

    try:
        write_animation(frames(), target, animation, quality, overwrite)
    finally:
        bar.close()
