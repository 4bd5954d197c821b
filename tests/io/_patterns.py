"""GIMP .pat files made by tests, in the documented format (the reader's tests and the texture training tests)."""

from __future__ import annotations

import struct

import numpy as np


def pat_bytes(pixels: np.ndarray, name: str = "Test pattern", version: int = 1) -> bytes:
    """A .pat file: five big-endian uint32 (header size, version, width, height, bytes per pixel), GPAT, name."""
    depth = 1 if pixels.ndim == 2 else pixels.shape[2]
    label = name.encode() + b"\0"
    header = struct.pack(">5I4s", 24 + len(label), version, pixels.shape[1], pixels.shape[0], depth, b"GPAT")
    return header + label + pixels.astype(np.uint8).tobytes()
