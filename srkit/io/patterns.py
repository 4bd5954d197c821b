"""GIMP pattern files (.pat), which Pillow cannot read: a big-endian header, a name, then raw pixels.

Header: five uint32 (header size, version 1, width, height, bytes per pixel: 1 gray, 2 gray+alpha, 3 RGB,
4 RGBA), the magic `GPAT`, then the pattern's name (UTF-8, NUL-terminated) up to the header size. The
pixels follow row by row. GIMP patterns are made to tile, so a pattern can be cropped across its edges.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import ImageReadError

MAGIC = b"GPAT"
HEADER = struct.Struct(">5I4s")
CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # bytes per pixel -> Pillow-style mode


@dataclass
class Pattern:
    """A decoded pattern: its name and pixels (H, W) or (H, W, C) uint8, C = 2, 3 or 4."""

    name: str
    pixels: np.ndarray

    @property
    def mode(self) -> str:
        return CHANNELS[1 if self.pixels.ndim == 2 else self.pixels.shape[2]]


def read_pattern(path: str | os.PathLike) -> Pattern:
    """Decode a GIMP .pat file; a damaged one raises ImageReadError naming the file and what is wrong."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read pattern ({error.strerror or error})") from None
    if len(data) < HEADER.size:
        raise ImageReadError(f"{path}: not a GIMP pattern (only {len(data)} bytes)")
    header_size, version, width, height, depth, magic = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ImageReadError(f"{path}: not a GIMP pattern (no GPAT magic)")
    if version != 1 or depth not in CHANNELS or width < 1 or height < 1 or header_size < HEADER.size:
        raise ImageReadError(
            f"{path}: unsupported GIMP pattern (version {version}, {width}x{height}, {depth} bytes per pixel)"
        )
    size = width * height * depth
    if len(data) < header_size + size:
        raise ImageReadError(f"{path}: truncated GIMP pattern ({len(data) - header_size} of {size} pixel bytes)")
    name = data[HEADER.size : header_size].split(b"\0", 1)[0].decode("utf-8", errors="replace")
    pixels = np.frombuffer(data, np.uint8, size, header_size).reshape(height, width, depth)
    return Pattern(name, pixels[..., 0].copy() if depth == 1 else pixels.copy())
