"""Mip chains that tile: each level is the one above, halved by a wrap-around filter in the map's own space.

The filter is the separable [1, 3, 3, 1] / 8 kernel (what an antialiased bilinear 2x reduction computes) with
circular indexing, so a level of a seamless texture is seamless too: the level of a 2x2 tiling is the 2x2 tiling
of the level. Each side is halved until it is 1 (a 64x16 map has 7 levels). Levels are computed in float from the
float level above and rounded once each:
- "srgb" (colour): R, G, B are filtered in linear light (the sRGB transfer curve undone, then redone); a 4th
  (alpha) channel is filtered as it is.
- "normal": the RGB bytes are decoded to vectors, filtered, and renormalised to unit length at every level.
- "linear" (height, roughness, occlusion): filtered as it is.
Level 0 is read in bands of rows (srkit.synth.bands) and the first levels are made as a cascade of row streams,
each halving the rows of the one above as they arrive and writing its bytes into a preallocated uint8 level, so
their float state is O(band rows x width). The cascade needs 2^L - 1 rows of halo at level 0 for L streamed
levels; it stops at the first level with at most TAIL_TEXELS texels (64 Ki: 1.5 MiB of float RGB) or one row,
which is then held whole in float and halved as a whole array down to 1x1.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .bands import band_rows as rows_per_band
from .bands import wrapped

SPACES = ("srgb", "linear", "normal")
TAIL_TEXELS = 1 << 16  # a level this small is halved whole; 4096x4096 streams 4 levels (15 rows of halo)


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve undone: encoded values in [0, 1] to linear light in [0, 1]."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve: linear light in [0, 1] to encoded values in [0, 1]."""
    values = np.clip(values, 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


_LINEAR_CODES = srgb_to_linear(np.arange(256) / 255.0)  # each code's linear light, looked up instead of computed


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


def _halve_axis(values: np.ndarray, axis: int) -> np.ndarray:
    summed = np.roll(values, 1, axis) + 3.0 * values + 3.0 * np.roll(values, -1, axis) + np.roll(values, -2, axis)
    return np.take(summed, np.arange(0, values.shape[axis], 2), axis=axis) / 8.0


def halve(values: np.ndarray) -> np.ndarray:
    """An (H, W[, C]) float array halved along each side longer than 1 by the wrap-around [1, 3, 3, 1] / 8 filter."""
    for axis in (0, 1):
        if values.shape[axis] > 1:
            values = _halve_axis(values, axis)
    return values


def _to_float(pixels: np.ndarray, space: str) -> np.ndarray:
    if space == "normal":
        return decode_normals(pixels)
    values = pixels.astype(np.float64) / 255.0
    if space == "srgb":
        values[..., :3] = _LINEAR_CODES[pixels[..., :3]]
    return values


def _to_bytes(values: np.ndarray, space: str) -> np.ndarray:
    if space == "normal":
        return encode_normals(values)
    if space == "srgb":
        values = values.copy()
        values[..., :3] = linear_to_srgb(values[..., :3])
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    shapes = [(height, width)]
    while shapes[-1] != (1, 1):
        shapes.append((max(shapes[-1][0] // 2, 1), max(shapes[-1][1] // 2, 1)))
    return shapes


def _streamed_levels(shapes: list[tuple[int, int]]) -> int:
    """How many levels the row cascade makes: level 1, then on while the level above has more than TAIL_TEXELS
    texels and more than one row."""
    count = 0
    while shapes[count][0] > 1 and (count == 0 or shapes[count][0] * shapes[count][1] > TAIL_TEXELS):
        count += 1
    return count


Stream = Iterator[tuple[int, np.ndarray]]  # (index of the first row, float rows), consecutive, in order


def _read(pixels: np.ndarray, space: str, first: int, stop: int, rows: int) -> Stream:
    """Level 0's rows first..stop (modulo its height) as float, `rows` at a time."""
    for start in range(first, stop, rows):
        yield start, _to_float(wrapped(pixels, start, min(start + rows, stop)), space)


def _halved(stream: Stream, space: str) -> Stream:
    """The next level's rows from a stream that starts at an odd row: row j is the [1, 3, 3, 1] / 8 sum of rows
    2j - 1 .. 2j + 2, so each output needs two new rows and the last two rows carry over to the next chunk."""
    carry, first = None, 0
    for start, rows in stream:
        if carry is None:
            first = (start + 1) // 2
        else:
            rows = np.concatenate([carry, rows])
        count = (len(rows) - 2) // 2
        if count > 0:
            end = 2 * count
            values = (
                (rows[0:end:2] + 3.0 * rows[1 : end + 1 : 2]) + 3.0 * rows[2 : end + 2 : 2] + rows[3 : end + 3 : 2]
            ) / 8.0
            if values.shape[1] > 1:
                values = _halve_axis(values, 1)
            yield first, _unit_length(values) if space == "normal" else values
            first += count
        carry = rows[2 * count :]


def _written(stream: Stream, level: np.ndarray, space: str) -> Stream:
    """Pass a level's stream through, writing the bytes of its rows 0..height (not the halo) into `level`."""
    for start, rows in stream:
        low, high = max(start, 0), min(start + len(rows), level.shape[0])
        if high > low:
            level[low:high] = _to_bytes(rows[low - start : high - start], space)
        yield start, rows


def mip_chain(pixels: np.ndarray, space: str, band_rows: int | None = None) -> list[np.ndarray]:
    """Every level of a uint8 (H, W[, C]) map with power-of-two sides, from the map itself down to 1x1."""
    if space not in SPACES:
        raise ValueError(f"unknown colour space {space!r}; expected one of {SPACES}")
    height, width = pixels.shape[:2]
    if height & (height - 1) or width & (width - 1):
        raise ValueError(f"a {width}x{height} map has no power-of-two mip chain")
    shapes = _level_shapes(height, width)
    channels = (3,) if space == "normal" else pixels.shape[2:]
    levels = [pixels] + [np.empty(shape + channels, np.uint8) for shape in shapes[1:]]
    streamed = _streamed_levels(shapes)
    halo = 2**streamed - 1
    stream = _read(pixels, space, -halo, height + halo, rows_per_band(width, band_rows))
    for level in levels[1 : streamed + 1]:
        stream = _written(_halved(stream, space), level, space)
    current = np.concatenate([rows for _, rows in stream])  # level `streamed`, whole: its halo is 0 rows
    for level in levels[streamed + 1 :]:
        current = halve(current)
        if space == "normal":
            current = _unit_length(current)
        level[...] = _to_bytes(current, space)
    return levels
