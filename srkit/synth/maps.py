"""PBR map sets derived from one colour texture; every step wraps around, so all maps tile, with each other too.

- albedo: the texture itself (sRGB colour).
- height: Rec. 709 luminance of the sRGB bytes, 0..1 (the height `--normal-maps` has always used).
- normal: tangent space, OpenGL convention (green up), from the height's central differences taken across the
  wrap border; NORMAL_STRENGTH is the height step per pixel that tilts a normal by 76 degrees.
- roughness: ROUGHNESS_BASE + ROUGHNESS_RANGE * local detail / its maximum, where local detail is the RMS, in a
  Gaussian window of ROUGHNESS_WINDOW pixels, of the height minus its Gaussian blur of DETAIL_SIGMA pixels:
  finely detailed areas read rough, smooth areas glossy.
- ambient occlusion: 1 - AO_STRENGTH * (how far the height lies below its Gaussian average of AO_SIGMA pixels),
  clipped to [0, 1]: pits and crevices are darker, flat and raised areas 1.
All blurs are circular (wrap-around) Gaussian convolutions, separable, cut at BLUR_TRUNCATE sigmas. Each map is
made in bands of rows (srkit.synth.bands) from the uint8 texture, with the halo its blurs need gathered across
the wrap, and written as bytes into a preallocated uint8 map: the float state is O(band rows x width).
Roughness takes two passes over the bands: the maximum of local detail, then the bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from .bands import band_rows as rows_per_band
from .bands import wrapped
from .measures import LUMA

NORMAL_STRENGTH = 4.0
DETAIL_SIGMA = 2.0
ROUGHNESS_WINDOW = 4.0
ROUGHNESS_BASE, ROUGHNESS_RANGE = 0.35, 0.6
AO_SIGMA = 8.0
AO_STRENGTH = 4.0
PBR_MAPS = ("albedo", "normal", "height", "roughness", "ao")
# The weight a Gaussian cut at 6 sigmas leaves out is erfc(6 / sqrt(2)) = 2e-9: at most 2e-6 of a code in the
# most amplified map (ao: 4 x 255), so the cut blur rounds as the exact periodic one does.
BLUR_TRUNCATE = 6.0
_LUMA_CODES = LUMA[:, None] * np.arange(256.0)  # channel weight x code, looked up instead of multiplied


def blur_radius(sigma: float) -> int:
    """Half-width in pixels of the cut Gaussian kernel of `sigma` pixels."""
    return math.ceil(BLUR_TRUNCATE * sigma)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian of `sigma` pixels, sampled at integer offsets out to blur_radius(sigma)."""
    offsets = np.arange(-blur_radius(sigma), blur_radius(sigma) + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


DETAIL_HALO = blur_radius(DETAIL_SIGMA) + blur_radius(ROUGHNESS_WINDOW)  # the roughness steps' halo, 36 rows


def blur_inner(values: np.ndarray, sigma: float) -> np.ndarray:
    """A 2-D float64 array blurred by a Gaussian, cropped by its radius on every side: the part that needs no
    border (callers pass values padded across the wrap, so this is the circular blur of what lies inside)."""
    radius, kernel = blur_radius(sigma), gaussian_kernel(sigma)
    if min(values.shape) <= 2 * radius:
        raise ValueError(f"a {values.shape} array has no inner part for a blur of radius {radius}")
    blurred = cv2.sepFilter2D(values, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    return blurred[radius:-radius, radius:-radius]


def height_of(texture: np.ndarray) -> np.ndarray:
    """(H, W) float height in [0, 1]: the luminance of (H, W, 3|4) uint8 sRGB texels (alpha ignored)."""
    height = _LUMA_CODES[0][texture[..., 0]]
    height += _LUMA_CODES[1][texture[..., 1]]
    height += _LUMA_CODES[2][texture[..., 2]]
    height /= 255.0
    return height


def _u8(values: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _inner(values: np.ndarray, margin: int) -> np.ndarray:
    return values[margin : values.shape[0] - margin, margin : values.shape[1] - margin]


def _check(texture: np.ndarray) -> None:
    if texture.dtype != np.uint8 or texture.ndim != 3 or texture.shape[2] not in (3, 4) or 0 in texture.shape:
        raise ValueError(f"PBR maps need an (H, W, 3|4) uint8 texture, got {texture.dtype} {texture.shape}")


def _height_bands(texture: np.ndarray, halo: int, band_rows: int | None) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, height) for each band of rows: the band's height padded by `halo` texels on every side
    across the wrap, (stop - start + 2 halo, W + 2 halo) float64."""
    height, width = texture.shape[:2]
    step = rows_per_band(width, band_rows, halo)
    for start in range(0, height, step):
        stop = min(start + step, height)
        yield start, stop, height_of(wrapped(wrapped(texture, start - halo, stop + halo), -halo, width + halo, 1))


def normal_map(texture: np.ndarray, strength: float = NORMAL_STRENGTH, band_rows: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 tangent-space normal map (OpenGL: green up) of a texture's luminance as height."""
    _check(texture)
    out = np.empty(texture.shape[:2] + (3,), np.uint8)
    for start, stop, height in _height_bands(texture, 1, band_rows):
        x = -strength * ((height[1:-1, 2:] - height[1:-1, :-2]) / 2.0)
        y = strength * ((height[2:, 1:-1] - height[:-2, 1:-1]) / 2.0)  # rows go down, the green axis up
        length = np.sqrt(x * x + y * y + 1.0)
        for channel, component in enumerate((x, y, 1.0)):
            out[start:stop, :, channel] = np.floor((component / length * 0.5 + 0.5) * 255.0 + 0.5)
    return out


def height_map(texture: np.ndarray, band_rows: int | None = None) -> np.ndarray:
    """(H, W) uint8 height map: the texture's luminance."""
    _check(texture)
    out = np.empty(texture.shape[:2], np.uint8)
    for start, stop, height in _height_bands(texture, 0, band_rows):
        out[start:stop] = _u8(height)
    return out


def _local_detail(height: np.ndarray) -> np.ndarray:
    """RMS of the height's fine detail in the roughness window, for the inner part of a height padded by
    DETAIL_HALO."""
    detail = _inner(height, blur_radius(DETAIL_SIGMA)) - blur_inner(height, DETAIL_SIGMA)
    return np.sqrt(np.maximum(blur_inner(detail * detail, ROUGHNESS_WINDOW), 0.0))


def roughness_map(texture: np.ndarray, band_rows: int | None = None) -> np.ndarray:
    """(H, W) uint8 roughness from the texture's luminance as height: more fine detail, rougher."""
    _check(texture)
    peak = max(_local_detail(height).max() for _, _, height in _height_bands(texture, DETAIL_HALO, band_rows))
    out = np.empty(texture.shape[:2], np.uint8)
    for start, stop, height in _height_bands(texture, DETAIL_HALO, band_rows):
        local = _local_detail(height)
        share = local / peak if peak > 1e-9 else np.full_like(local, 0.5)
        out[start:stop] = _u8(ROUGHNESS_BASE + ROUGHNESS_RANGE * share)
    return out


def occlusion_map(texture: np.ndarray, band_rows: int | None = None) -> np.ndarray:
    """(H, W) uint8 ambient occlusion from the texture's luminance: darker where it lies below its surroundings."""
    _check(texture)
    out = np.empty(texture.shape[:2], np.uint8)
    halo = blur_radius(AO_SIGMA)
    for start, stop, height in _height_bands(texture, halo, band_rows):
        below = blur_inner(height, AO_SIGMA) - _inner(height, halo)
        out[start:stop] = _u8(1.0 - AO_STRENGTH * np.maximum(below, 0.0))
    return out


def pbr_maps(texture: np.ndarray, band_rows: int | None = None) -> dict[str, np.ndarray]:
    """The PBR map set of an (H, W, 3|4) uint8 sRGB texture: albedo (as given), normal, height, roughness, ao."""
    return dict(
        albedo=texture,
        normal=normal_map(texture, band_rows=band_rows),
        height=height_map(texture, band_rows),
        roughness=roughness_map(texture, band_rows),
        ao=occlusion_map(texture, band_rows),
    )
