"""Row bands of periodic images: how many rows a band holds, and rows or columns gathered across the wrap.

The texture steps (PBR maps, mip chains) work on a band of rows at a time, plus the halo of rows each step
needs on both sides, taken modulo the image's height so the top and bottom edges join; the float state is then
O(band rows x width) instead of O(height x width).
"""

from __future__ import annotations

import numpy as np

BAND_TEXELS = 1 << 18  # texels per band by default: 2 MiB per float64 channel
MIN_BAND_ROWS = 32  # the halos (up to 48 rows a side) stay a fraction of the band on wide textures


def band_rows(width: int, rows: int | None = None) -> int:
    """Rows per band: `rows` when given, else enough rows of `width` texels for BAND_TEXELS (at least 32)."""
    if rows is None:
        return max(MIN_BAND_ROWS, BAND_TEXELS // max(width, 1))
    if rows < 1:
        raise ValueError(f"band_rows must be at least 1, got {rows}")
    return rows


def wrapped(array: np.ndarray, start: int, stop: int, axis: int = 0) -> np.ndarray:
    """Indices start..stop of `array` along `axis`, taken modulo its length (a copy; any start and stop)."""
    return np.take(array, np.arange(start, stop) % array.shape[axis], axis=axis)
