"""A DDS reader for tests, written from the DDS documentation: headers parsed here, every level's pixels decoded
by Pillow's own BCn decoder (Pillow opens only level 0 of a file, so each level's slice is handed to it)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LEGACY = {b"DXT1": ("bc1", False), b"DXT5": ("bc3", False), b"ATI1": ("bc4", False), b"ATI2": ("bc5", False)}
DXGI = {
    71: ("bc1", False),
    72: ("bc1", True),
    77: ("bc3", False),
    78: ("bc3", True),
    80: ("bc4", False),
    83: ("bc5", False),
    98: ("bc7", False),
    99: ("bc7", True),
    28: ("none", False),
    29: ("none", True),
}
PILLOW = {
    "bc1": (1, "BC1", "RGBA", 8),
    "bc3": (3, "BC3", "RGBA", 16),
    "bc4": (4, "BC4", "L", 8),
    "bc5": (5, "BC5", "RGB", 16),
    "bc7": (7, "BC7", "RGBA", 16),
}


@dataclass
class DdsFile:
    codec: str
    srgb: bool
    dx10: bool
    width: int
    height: int
    alpha_mode: int | None
    levels: list[np.ndarray]  # decoded by Pillow, largest first


def read_dds(path: Path) -> DdsFile:
    data = Path(path).read_bytes()
    assert data[:4] == b"DDS "
    size, flags, height, width, pitch, depth, mips = struct.unpack_from("<7I", data, 4)
    assert size == 124 and flags & 0x1007 == 0x1007, "CAPS, HEIGHT, WIDTH and PIXELFORMAT must be set"
    pf_size, pf_flags, fourcc = struct.unpack_from("<II4s", data, 4 + 72)
    assert pf_size == 32 and pf_flags & 0x4, "a FourCC pixel format"
    caps = struct.unpack_from("<I", data, 4 + 104)[0]
    assert caps & 0x1000
    if mips > 1:
        assert flags & 0x20000 and caps & 0x400008 == 0x400008, "MIPMAPCOUNT, COMPLEX and MIPMAP must be set"
    offset, alpha_mode = 128, None
    if fourcc == b"DX10":
        dxgi, dimension, misc, array, alpha_mode = struct.unpack_from("<5I", data, 128)
        assert (dimension, array) == (3, 1)
        codec, srgb = DXGI[dxgi]
        offset = 148
    else:
        codec, srgb = LEGACY[fourcc]
    levels = []
    for level in range(max(mips, 1)):
        w, h = max(width >> level, 1), max(height >> level, 1)
        if codec == "none":
            count = w * h * 4
            levels.append(np.asarray(Image.frombytes("RGBA", (w, h), data[offset : offset + count])))
        else:
            n, name, mode, block = PILLOW[codec]
            bw, bh = -(-w // 4), -(-h // 4)
            count = bw * bh * block
            image = Image.frombytes(mode, (bw * 4, bh * 4), data[offset : offset + count], "bcn", (n, name))
            levels.append(np.asarray(image.crop((0, 0, w, h))))
        offset += count
    assert offset == len(data), "the file holds exactly its levels"
    return DdsFile(codec, srgb, fourcc == b"DX10", width, height, alpha_mode, levels)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def normal_vectors(level: np.ndarray, codec: str) -> np.ndarray:
    """Decoded normal-map bytes as vectors: x, y from R, G; z from B, or rebuilt from x, y for BC5 (no z stored)."""
    xyz = level[..., :3].astype(np.float64) / 255.0 * 2.0 - 1.0
    if codec == "bc5":
        xyz[..., 2] = np.sqrt(np.maximum(1.0 - (xyz[..., :2] ** 2).sum(-1), 0.0))
    return xyz
