"""Row bands of periodic images: how many rows a band holds, and rows or columns gathered across the wrap.

The texture steps (PBR maps, mip chains) work on a band of rows at a time, plus the halo of rows each step
needs on both sides, taken modulo the image's height so the top and bottom edges join; the float state is then
O(band rows x width) instead of O(height x width).
"""

from __future__ import annotations

import numpy as np

BAND_TEXELS = 1 << 16  # texels per band at least: 512 KiB per float64 channel
HALO_SHARE = 4  # a band is at least this many times the halo it carries on each side (so at most 1.5x the work)


def band_rows(width: int, rows: int | None = None, halo: int = 0) -> int:
    """Rows per band: `rows` when given, else enough rows of `width` texels for BAND_TEXELS and at least
    HALO_SHARE times the `halo` rows a step gathers on each side (they are read, and blurred, once per band)."""
    if rows is None:
        return max(1, BAND_TEXELS // max(width, 1), HALO_SHARE * halo)
    if rows < 1:
        raise ValueError(f"band_rows must be at least 1, got {rows}")
    return rows


def wrapped(array: np.ndarray, start: int, stop: int, axis: int = 0) -> np.ndarray:
    """Indices start..stop of `array` along `axis`, taken modulo its length (a copy; any start and stop)."""
    return np.take(array, np.arange(start, stop) % array.shape[axis], axis=axis)
