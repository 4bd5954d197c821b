"""Mip chains that tile: each level is the one above, halved by a wrap-around filter in the map's own space.

The filter is the separable [1, 3, 3, 1] / 8 kernel (what an antialiased bilinear 2x reduction computes) with
circular indexing, so a level of a seamless texture is seamless too: the level of a 2x2 tiling is the 2x2 tiling
of the level. Each side is halved until it is 1 (a 64x16 map has 7 levels). Levels are computed in float from the
float level above and rounded once each:
- "srgb" (colour): R, G, B are filtered in linear light (the sRGB transfer curve undone, then redone); a 4th
  (alpha) channel is filtered as it is.
- "normal": the RGB bytes are decoded to vectors, filtered, and renormalised to unit length at every level.
- "linear" (height, roughness, occlusion): filtered as it is.
"""

from __future__ import annotations

import numpy as np

SPACES = ("srgb", "linear", "normal")


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve undone: encoded values in [0, 1] to linear light in [0, 1]."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve: linear light in [0, 1] to encoded values in [0, 1]."""
    values = np.clip(values, 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def decode_normals(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 normal-map bytes to float vectors of unit length (a zero vector points straight up)."""
    vectors = pixels[..., :3].astype(np.float64) / 255.0 * 2.0 - 1.0
    return _unit_length(vectors)


def encode_normals(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors (H, W, 3) to normal-map bytes (x, y, z in [-1, 1] mapped to 0..255)."""
    return np.floor(np.clip(vectors * 0.5 + 0.5, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _unit_length(vectors: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    up = np.zeros_like(vectors)
    up[..., 2] = 1.0
    return np.where(length > 1e-6, vectors / np.maximum(length, 1e-6), up)


def halve(values: np.ndarray) -> np.ndarray:
    """An (H, W[, C]) float array halved along each side longer than 1 by the wrap-around [1, 3, 3, 1] / 8 filter."""
    for axis in (0, 1):
        if values.shape[axis] > 1:
            summed = (np.roll(values, 1, axis) + 3.0 * values + 3.0 * np.roll(values, -1, axis)
                      + np.roll(values, -2, axis))
            values = np.take(summed, np.arange(0, values.shape[axis], 2), axis=axis) / 8.0
    return values


def _to_float(pixels: np.ndarray, space: str) -> np.ndarray:
    if space == "normal":
        return decode_normals(pixels)
    values = pixels.astype(np.float64) / 255.0
    if space == "srgb":
        values[..., :3] = srgb_to_linear(values[..., :3])
    return values


def _to_bytes(values: np.ndarray, space: str) -> np.ndarray:
    if space == "normal":
        return encode_normals(values)
    if space == "srgb":
        values = values.copy()
        values[..., :3] = linear_to_srgb(values[..., :3])
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def mip_chain(pixels: np.ndarray, space: str) -> list[np.ndarray]:
    """Every level of a uint8 (H, W[, C]) map with power-of-two sides, from the map itself down to 1x1."""
    if space not in SPACES:
        raise ValueError(f"unknown colour space {space!r}; expected one of {SPACES}")
    height, width = pixels.shape[:2]
    if height & (height - 1) or width & (width - 1):
        raise ValueError(f"a {width}x{height} map has no power-of-two mip chain")
    levels, current = [pixels], _to_float(pixels, space)
    while current.shape[0] > 1 or current.shape[1] > 1:
        current = halve(current)
        if space == "normal":
            current = _unit_length(current)
        levels.append(_to_bytes(current, space))
    return levels
