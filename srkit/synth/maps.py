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
All blurs are circular convolutions (through the FFT), exactly periodic.
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722])
NORMAL_STRENGTH = 4.0
DETAIL_SIGMA = 2.0
ROUGHNESS_WINDOW = 4.0
ROUGHNESS_BASE, ROUGHNESS_RANGE = 0.35, 0.6
AO_SIGMA = 8.0
AO_STRENGTH = 4.0
PBR_MAPS = ("albedo", "normal", "height", "roughness", "ao")


def wrap_blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """An (H, W) float array blurred by a Gaussian of `sigma` pixels, wrapping around both axes."""
    fy = np.fft.fftfreq(values.shape[0])[:, None]
    fx = np.fft.rfftfreq(values.shape[1])[None, :]
    gain = np.exp(-2.0 * np.pi ** 2 * sigma ** 2 * (fy ** 2 + fx ** 2))
    return np.fft.irfft2(np.fft.rfft2(values) * gain, s=values.shape)


def height_of(texture: np.ndarray) -> np.ndarray:
    """(H, W) float height in [0, 1]: the luminance of an (H, W, 3|4) uint8 sRGB texture (alpha ignored)."""
    return texture[..., :3].astype(np.float64) @ LUMA / 255.0


def _u8(values: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def normal_map(texture: np.ndarray, strength: float = NORMAL_STRENGTH) -> np.ndarray:
    """(H, W, 3) uint8 tangent-space normal map (OpenGL: green up) of a texture's luminance as height."""
    height = height_of(texture)
    dx = (np.roll(height, -1, axis=1) - np.roll(height, 1, axis=1)) / 2.0
    dy = (np.roll(height, -1, axis=0) - np.roll(height, 1, axis=0)) / 2.0  # rows go down, the green axis up
    normal = np.stack([-strength * dx, strength * dy, np.ones_like(height)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    return np.floor((normal * 0.5 + 0.5) * 255.0 + 0.5).astype(np.uint8)


def roughness_map(height: np.ndarray) -> np.ndarray:
    """(H, W) uint8 roughness from a float height map: more fine detail, rougher."""
    detail = height - wrap_blur(height, DETAIL_SIGMA)
    local = np.sqrt(np.maximum(wrap_blur(detail ** 2, ROUGHNESS_WINDOW), 0.0))
    peak = local.max()
    return _u8(ROUGHNESS_BASE + ROUGHNESS_RANGE * (local / peak if peak > 1e-9 else np.full_like(local, 0.5)))


def occlusion_map(height: np.ndarray) -> np.ndarray:
    """(H, W) uint8 ambient occlusion from a float height map: darker where it lies below its surroundings."""
    return _u8(1.0 - AO_STRENGTH * np.maximum(wrap_blur(height, AO_SIGMA) - height, 0.0))


def pbr_maps(texture: np.ndarray) -> dict[str, np.ndarray]:
    """The PBR map set of an (H, W, 3|4) uint8 sRGB texture: albedo (as given), normal, height, roughness, ao."""
    height = height_of(texture)
    return dict(albedo=texture, normal=normal_map(texture), height=_u8(height), roughness=roughness_map(height),
                ao=occlusion_map(height))
