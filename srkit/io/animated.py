"""Animated GIF, WebP and PNG (APNG) in and out with Pillow: whole frames, their durations, loop count and alpha.

Which formats animate, and the options their writers get, are their entries in io.formats.

Pillow composites each frame onto the canvas (disposal and blending applied), so every frame read here is a
complete picture. They are written back as complete frames in the same format: GIF with disposal 2 (each frame
replaces the last, so transparent areas stay transparent), APNG with disposal 0 and source blending, WebP as
is (lossless where the source is). Durations are per frame in milliseconds (GIF stores hundredths of a second);
the loop count is copied as stored (0: forever; a GIF without one plays once). Pillow's GIF and APNG writers
merge a frame identical to the one before into it, adding up the durations: the same playback with fewer frames.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from ..defaults import DEFAULT_MAX_PIXELS
from .atomic import atomic_path
from .formats import FORMATS, for_pillow, listed
from .images import READ_ERRORS, ImageReadError, ImageWriteError, open_image, output_format


@dataclass
class Animation:
    """Decoded frames (HxWx3 RGB or HxWx4 RGBA uint8, all one size) with their timing."""

    frames: list[np.ndarray]
    durations: list[int]
    """Milliseconds each frame is shown."""
    loop: int | None
    """Times to loop as stored (0: forever), None where the file has no loop count (a GIF that plays once)."""
    format: str
    lossless: bool = False
    """A WebP whose every frame is stored losslessly (VP8L): written back losslessly."""

    @property
    def has_alpha(self) -> bool:
        return self.frames[0].shape[2] == 4


def pillow_frames(path: str | os.PathLike) -> int | None:
    """Frames of `path` if Pillow opens it as an image: 1 for a still, more only for a GIF/WebP/PNG animation.

    None where Pillow does not recognise the file (a video, say); a recognised but broken image counts as a still.
    """
    try:
        with open_image(path, max_pixels=sys.maxsize) as image:  # srkit's limit is applied when it is read
            fmt = for_pillow(image.format)
            if fmt is None or fmt.animation is None:
                return 1
            try:
                return int(getattr(image, "n_frames", 1)) if getattr(image, "is_animated", False) else 1
            except READ_ERRORS:
                return 1
    except ImageReadError:
        return None


def read_animation(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Animation:
    """Decode every frame of an animated image; RGBA only where some frame is not fully opaque."""
    path = Path(path)
    with open_image(path, max_pixels, "animated image") as image:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(image):
            frames.append(np.asarray(frame.convert("RGBA")))
            durations.append(int(frame.info.get("duration", 0)))
        loop, name = image.info.get("loop"), image.format
    if all(frame[..., 3].min() == 255 for frame in frames):
        frames = [np.ascontiguousarray(frame[..., :3]) for frame in frames]
    fmt = for_pillow(name)
    probe = fmt.animation.lossless if fmt is not None and fmt.animation is not None else None
    return Animation(frames, durations, loop, name or "", probe is not None and probe(path))


def _one_bit_alpha(frame: np.ndarray) -> np.ndarray:
    """GIF keeps a pixel or makes it fully transparent; Pillow would show any alpha above 0 as opaque, so soft
    edges from upscaling (alpha 1-254) are cut at half instead."""
    if frame.ndim != 3 or frame.shape[2] != 4:
        return frame
    return np.concatenate([frame[..., :3], np.where(frame[..., 3:] >= 128, 255, 0).astype(frame.dtype)], axis=2)


def write_animation(
    frames: Iterable[np.ndarray], path: str | os.PathLike, source: Animation, quality: int = 95, overwrite: bool = False
) -> None:
    """Encode frames (upscaled, in order; may be produced lazily) atomically with the source's timing (an existing
    file only with `overwrite`: io.atomic)."""
    path = Path(path)
    fmt = output_format(path)
    if fmt.animation is None:
        animated = (entry.extensions[0] for entry in FORMATS if entry.animation is not None)
        raise ImageWriteError(f"{path}: an animation can only be written as {listed(animated)}")
    if fmt.alpha == "one-bit":
        frames = (_one_bit_alpha(frame) for frame in frames)
    images = (Image.fromarray(np.ascontiguousarray(frame)) for frame in frames)
    first = next(images)
    # a writer that goes over the frames twice (GIF, APNG) gets them listed; a streaming one (WebP) saves memory
    rest = images if fmt.animation.streamed else list(images)
    options: dict = {
        "save_all": True,
        "append_images": rest,
        "duration": source.durations,
        **dict(fmt.animation.options),
    }  # its `loop` (1: play once) stands for a source without one
    if source.loop is not None:
        options["loop"] = source.loop
    if fmt.lossy:
        options.update(quality=quality, lossless=source.lossless)
    try:
        with atomic_path(path, overwrite) as tmp:
            first.save(tmp, format=fmt.pillow, **options)
    except OSError as error:
        raise ImageWriteError(f"{path}: cannot write animated image ({error.strerror or error})") from None
