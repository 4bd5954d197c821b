"""DDS files: a texture and its mip chain in one file, block-compressed (BC1/3/4/5/7) by etcpak or plain RGBA8.

The blocks come from etcpak (PyPI; RGBA bytes in, 4x4 blocks out in row order, the layout DDS stores); the
container is written here. Layout: `DDS `, the 124-byte DDS_HEADER (with the mip count and the linear size of
level 0) and, where the format needs it, the 20-byte DX10 header (DXGI format, 2D texture, array size 1, alpha
mode), then every level's blocks from the largest to 1x1. BC7, every sRGB format and plain RGBA8 need DX10;
linear BC1/BC3/BC4 use the legacy FourCC (DXT1, DXT5, ATI1) that every DDS reader knows. BC5 is named by DX10
(DXGI_FORMAT_BC5_UNORM), not by its legacy FourCC ATI2, which readers disagree on: FFmpeg decodes ATI2 with red
and green swapped relative to Pillow (and DirectX), so a normal map's x and y would trade places. BC7 is
encoded with linear RGB error weights (higher PSNR than etcpak's perceptual default on real textures).
Levels smaller than a block are tiled to fill it, as the texture repeats; decoders read the top-left corner.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import etcpak
import numpy as np

MAGIC = b"DDS "
DDSD_CAPS, DDSD_HEIGHT, DDSD_WIDTH, DDSD_PITCH = 0x1, 0x2, 0x4, 0x8
DDSD_PIXELFORMAT, DDSD_MIPMAPCOUNT, DDSD_LINEARSIZE = 0x1000, 0x20000, 0x80000
DDPF_FOURCC = 0x4
DDSCAPS_COMPLEX, DDSCAPS_TEXTURE, DDSCAPS_MIPMAP = 0x8, 0x1000, 0x400000
DIMENSION_TEXTURE2D = 3
ALPHA_MODE_STRAIGHT, ALPHA_MODE_OPAQUE = 1, 3
BC7_UBER_LEVEL = 1  # etcpak's 0..4 search effort; 1 gains about 0.1 dB over 0 (GIMP patterns) at 1.5x the time


@dataclass(frozen=True)
class Codec:
    """One DDS pixel format: what it holds, its block size, and how a header names it."""

    name: str
    channels: int  # 4: RGBA, 2: RG (normal x, y), 1: R
    block_bytes: int  # per 4x4 block; 0 for plain RGBA8 (4 bytes a pixel)
    dxgi: int
    dxgi_srgb: int | None  # None: no sRGB variant
    fourcc: bytes | None  # legacy name of the linear format, None if only DX10 can name it

    @property
    def blocks(self) -> bool:
        """Whether it is block-compressed (sides must then be multiples of 4)."""
        return self.block_bytes > 0


CODECS = {
    c.name: c
    for c in (
        Codec("bc1", 4, 8, 71, 72, b"DXT1"),
        Codec("bc3", 4, 16, 77, 78, b"DXT5"),
        Codec("bc4", 1, 8, 80, None, b"ATI1"),
        Codec("bc5", 2, 16, 83, None, None),  # not ATI2: see the module docstring
        Codec("bc7", 4, 16, 98, 99, None),
        Codec("none", 4, 0, 28, 29, None),
    )
}


def _rgba(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1/3/4) uint8 as contiguous (H, W, 4) RGBA (grey repeated, opaque alpha added)."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if pixels.shape[2] == 3:
        pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def _bc7_params() -> etcpak.BC7CompressBlockParams:
    params = etcpak.BC7CompressBlockParams()
    params.init_linear_weights()
    params.m_uber_level = BC7_UBER_LEVEL
    return params


def encode_level(pixels: np.ndarray, codec: Codec) -> bytes:
    """One level's bytes in `codec`; a block format needs sides that are multiples of 4, or smaller than 4."""
    rgba = _rgba(pixels)
    if not codec.blocks:
        return rgba.tobytes()
    height, width = rgba.shape[:2]
    if height % 4 and height not in (1, 2) or width % 4 and width not in (1, 2):
        raise ValueError(
            f"{codec.name} needs sides that are multiples of 4 (or mip tails of 1 or 2), not {width}x{height}"
        )
    if height < 4 or width < 4:  # a mip tail fills one block, repeated as the texture repeats
        reps = (4 // height if height < 4 else 1, 4 // width if width < 4 else 1, 1)
        rgba = np.ascontiguousarray(np.tile(rgba, reps))
        height, width = rgba.shape[:2]
    if codec.name == "bc7":
        return etcpak.compress_bc7(rgba.tobytes(), width, height, _bc7_params())
    return getattr(etcpak, f"compress_{codec.name}")(rgba.tobytes(), width, height)


def level_bytes(width: int, height: int, codec: Codec) -> int:
    """How many bytes a width x height level takes in `codec`."""
    if not codec.blocks:
        return width * height * 4
    return max(1, -(-width // 4)) * max(1, -(-height // 4)) * codec.block_bytes


def dds_header(width: int, height: int, levels: int, codec: Codec, srgb: bool, opaque: bool) -> bytes:
    """`DDS `, DDS_HEADER and (where needed) the DX10 header of a 2D texture with `levels` mip levels."""
    if srgb and codec.dxgi_srgb is None:
        raise ValueError(f"{codec.name} has no sRGB variant")
    legacy = codec.fourcc is not None and not srgb
    flags = DDSD_CAPS | DDSD_HEIGHT | DDSD_WIDTH | DDSD_PIXELFORMAT
    flags |= DDSD_LINEARSIZE if codec.blocks else DDSD_PITCH
    caps = DDSCAPS_TEXTURE
    if levels > 1:
        flags |= DDSD_MIPMAPCOUNT
        caps |= DDSCAPS_COMPLEX | DDSCAPS_MIPMAP
    pitch = level_bytes(width, height, codec) if codec.blocks else width * 4
    pixel_format = struct.pack("<II4s5I", 32, DDPF_FOURCC, codec.fourcc if legacy else b"DX10", 0, 0, 0, 0, 0)
    header = struct.pack("<7I", 124, flags, height, width, pitch, 0, levels) + bytes(44) + pixel_format
    header += struct.pack("<5I", caps, 0, 0, 0, 0)
    if legacy:
        return MAGIC + header
    dxgi = codec.dxgi_srgb if srgb else codec.dxgi
    alpha = ALPHA_MODE_OPAQUE if opaque else ALPHA_MODE_STRAIGHT
    return MAGIC + header + struct.pack("<5I", dxgi, DIMENSION_TEXTURE2D, 0, 1, alpha)


def dds_bytes(levels: list[np.ndarray], codec: Codec, srgb: bool) -> bytes:
    """A whole DDS file: header, then every level (largest first) encoded in `codec`."""
    height, width = levels[0].shape[:2]
    opaque = levels[0].ndim == 2 or levels[0].shape[2] != 4
    return dds_header(width, height, len(levels), codec, srgb, opaque) + b"".join(
        encode_level(level, codec) for level in levels
    )
