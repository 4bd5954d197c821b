"""Mip chains (wrap-aware, linear light, renormalised normals), PBR maps that tile, and the lit sphere preview."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
from PIL import Image

from srkit.synth.maps import blur_inner, blur_radius, normal_map, pbr_maps
from srkit.synth.mipmaps import decode_normals, halve, linear_to_srgb, mip_chain, srgb_to_linear
from srkit.synth.shading import BACKGROUND, LIGHT, render_sphere

RNG = np.random.default_rng(17)


def _texture(size: int, seed: int) -> np.ndarray:
    """A seeded periodic colour texture: random Fourier modes, wrapped exactly."""
    coarse = np.random.default_rng(seed).normal(size=(size, size, 3))
    smooth = scipy.ndimage.gaussian_filter(coarse, (2.0, 2.0, 0.0), mode="wrap", truncate=8.0)
    return np.floor(np.clip(0.5 + 0.12 * smooth * 8, 0, 1) * 255 + 0.5).astype(np.uint8)


def test_halving_is_pillows_bilinear_reduction_of_the_tiled_image():
    """Independent oracle: Pillow's antialiased bilinear 2x reduction of the 3x3 tiling, centre cropped."""
    values = RNG.random((16, 8)).astype(np.float32)
    tiled = Image.fromarray(np.tile(values, (3, 3)), mode="F")
    expected = np.asarray(tiled.resize((12, 24), Image.Resampling.BILINEAR))[8:16, 4:8]
    np.testing.assert_allclose(halve(values.astype(np.float64)), expected, atol=1e-5)


def test_levels_wrap_around_exactly():
    """Rolling a texture by 2^k pixels rolls level k by one pixel: no level treats the border as an edge."""
    texture = _texture(32, 1)
    shifted = mip_chain(np.roll(texture, (8, -8), axis=(0, 1)), "srgb")
    for index, (level, rolled) in enumerate(zip(mip_chain(texture, "srgb")[:4], shifted[:4])):
        step = 8 >> index
        np.testing.assert_array_equal(np.roll(level, (step, -step), axis=(0, 1)), rolled)


def test_srgb_levels_average_light_not_code_values():
    checker = np.zeros((4, 4, 3), np.uint8)
    checker[::2, ::2] = checker[1::2, 1::2] = 255
    levels = mip_chain(checker, "srgb")
    assert [lv.shape for lv in levels] == [(4, 4, 3), (2, 2, 3), (1, 1, 3)]
    assert (levels[1] == 188).all(), "half the light is sRGB 188, not 128"  # 255 * linear_to_srgb(0.5) = 187.5
    assert (mip_chain(checker, "linear")[1] == 128).all()
    values = np.linspace(0, 1, 101)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-12)


def test_non_square_chain_ends_at_one_by_one():
    levels = mip_chain(RNG.integers(0, 256, (4, 16), np.uint8), "linear")
    assert [lv.shape for lv in levels] == [(4, 16), (2, 8), (1, 4), (1, 2), (1, 1)]
    with pytest.raises(ValueError, match="power-of-two"):
        mip_chain(np.zeros((12, 16), np.uint8), "linear")


def test_normal_levels_are_unit_length():
    normals = normal_map(_texture(64, 2), strength=12.0)
    for level in mip_chain(normals, "normal"):
        vectors = level.astype(np.float64) / 255.0 * 2.0 - 1.0
        assert np.abs(np.linalg.norm(vectors, axis=-1) - 1.0).max() < 0.01  # 8-bit rounding: at most 0.7 %
    averaged = halve(decode_normals(normals))  # what a plain average would store: shorter than 1
    assert np.linalg.norm(averaged, axis=-1).min() < 0.95


@pytest.mark.parametrize("shape", [(24, 40), (13, 7), (1, 5)])
@pytest.mark.parametrize("sigma", [2.0, 4.0, 8.0])
def test_blur_of_wrap_padded_values_is_scipys_circular_blur(shape, sigma):
    """The cut kernel (6 sigmas) against scipy's at 8 sigmas: the tail left out is 2e-9 of the weight."""
    values = RNG.random(shape)
    padded = np.pad(values, blur_radius(sigma), mode="wrap")  # pads wider than the array wrap more than once
    np.testing.assert_allclose(
        blur_inner(padded, sigma),
        scipy.ndimage.gaussian_filter(values, sigma, mode="wrap", truncate=8.0),
        rtol=0,
        atol=1e-8,
    )


def test_pbr_maps_tile_together_and_share_one_size():
    """The maps of a 2x2 tiling are the 2x2 tilings of the maps (every step wraps around)."""
    texture = _texture(32, 3)
    maps, tiled = pbr_maps(texture), pbr_maps(np.tile(texture, (2, 2, 1)))
    assert sorted(maps) == ["albedo", "ao", "height", "normal", "roughness"]
    for name, image in maps.items():
        assert image.shape[:2] == (32, 32) and image.dtype == np.uint8
        reps = (2, 2, 1) if image.ndim == 3 else (2, 2)
        assert np.abs(tiled[name].astype(int) - np.tile(image, reps)).max() <= 1, name


def test_roughness_and_occlusion_follow_the_relief():
    height = np.full((64, 64, 3), 160, np.uint8)
    height[20:28, 20:28] = 40  # a pit
    height[40:, :] = RNG.integers(100, 220, (24, 64, 1))  # a rough band (grey noise)
    maps = pbr_maps(height)
    assert maps["ao"][24, 24] < 200 < maps["ao"][5, 50], "the pit is occluded, flat ground is not"
    assert maps["roughness"][52, 30] > maps["roughness"][5, 50] + 60, "detail reads rough, flat reads glossy"


def test_sphere_is_lit_from_the_light_direction():
    flat = dict(
        albedo=np.full((16, 16, 3), 200, np.uint8),
        normal=np.full((16, 16, 3), (128, 128, 255), np.uint8),
        roughness=np.full((16, 16), 255, np.uint8),
        ao=np.full((16, 16), 255, np.uint8),
    )
    image = render_sphere(flat, 101).astype(int)
    assert image.shape == (101, 101, 3)
    assert np.abs(image[0, 0] - float(linear_to_srgb(np.array(BACKGROUND))) * 255).max() <= 0.5, "background"
    rows, columns = np.nonzero(image[..., 1] == image[..., 1].max())  # a plateau of equal bytes: its centre
    row, column = rows.mean(), columns.mean()
    x, y = (column + 0.5) / 101 * 2.08 - 1.04, 1.04 - (row + 0.5) / 101 * 2.08
    assert np.hypot(x - LIGHT[0], y - LIGHT[1]) < 0.04, "the brightest point faces the light"
    bumpy = dict(flat, normal=normal_map(_texture(16, 4), strength=20.0))
    assert np.abs(render_sphere(bumpy, 101).astype(int) - image).mean() > 3, "the normal map shows"
