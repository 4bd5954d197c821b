"""PBR maps and mip chains made in row bands: against whole-array oracles written here (scipy's circular
Gaussian and [1, 3, 3, 1] filters, the sRGB curve from its definition), and the same bytes for any band size."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from srkit.synth import mipmaps
from srkit.synth.maps import blur_inner, pbr_maps
from srkit.synth.mipmaps import mip_chain

LUMA = np.array([0.2126, 0.7152, 0.0722])


def _texture(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    """Seeded smooth colour (what generated textures look like) plus a rough and a flat patch."""
    rng = np.random.default_rng(seed)
    smooth = scipy.ndimage.gaussian_filter(rng.normal(size=(height, width, channels)), (1.5, 1.5, 0), mode="wrap")
    texture = np.clip(128 + 200 * smooth, 0, 255)
    texture[: height // 3, : width // 3] = rng.integers(0, 256, (height // 3, width // 3, channels))
    texture[height // 2 :, width // 2 :] = 90
    return texture.astype(np.uint8)


def _bytes(values: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5)


def _blur(values: np.ndarray, sigma: float) -> np.ndarray:
    return scipy.ndimage.gaussian_filter(values, sigma, mode="wrap", truncate=8.0)


def _oracle_maps(texture: np.ndarray) -> dict[str, np.ndarray]:
    """The maps as srkit/synth/maps.py's docstring defines them, computed on the whole array."""
    height = texture[..., :3].astype(np.float64) @ LUMA / 255.0
    dx = (np.roll(height, -1, 1) - np.roll(height, 1, 1)) / 2.0
    dy = (np.roll(height, -1, 0) - np.roll(height, 1, 0)) / 2.0
    normal = np.stack([-4.0 * dx, 4.0 * dy, np.ones_like(height)], axis=-1)
    normal /= np.sqrt((normal**2).sum(-1, keepdims=True))
    detail = height - _blur(height, 2.0)
    local = np.sqrt(np.maximum(_blur(detail**2, 4.0), 0.0))
    return dict(
        normal=_bytes(normal * 0.5 + 0.5),
        height=_bytes(height),
        roughness=_bytes(0.35 + 0.6 * local / local.max()),
        ao=_bytes(1.0 - 4.0 * np.maximum(_blur(height, 8.0) - height, 0.0)),
    )


@pytest.mark.parametrize("shape", [(64, 64, 3), (37, 53, 3), (32, 128, 4), (128, 16, 3), (5, 9, 3)])
def test_maps_match_the_whole_array_oracle(shape):
    """Within one code everywhere (rounding of the last bits: the cut 6-sigma blur, summation order), and the
    same bytes almost everywhere."""
    texture = _texture(*shape, seed=sum(shape))
    maps, oracle = pbr_maps(texture), _oracle_maps(texture)
    assert maps["albedo"] is texture
    for name, expected in oracle.items():
        got = maps[name]
        assert got.dtype == np.uint8 and got.shape == expected.shape, name
        difference = np.abs(got - expected)
        assert difference.max() <= 1 and (difference > 0).mean() < 0.001, (
            name,
            difference.max(),
            (difference > 0).sum(),
        )


def test_flat_texture_reads_half_rough_unoccluded_and_straight_up():
    maps = pbr_maps(np.full((8, 12, 3), 77, np.uint8))
    assert (maps["roughness"] == 166).all() and (maps["ao"] == 255).all()  # 255 * (0.35 + 0.6 / 2) = 165.75
    assert (maps["normal"] == (128, 128, 255)).all()


@pytest.mark.parametrize("band_rows", [1, 2, 3])
def test_band_size_does_not_change_the_maps(band_rows):
    """Bit for bit: every texel's arithmetic is the same whatever band holds it."""
    texture = _texture(40, 24, 3, seed=band_rows)
    whole = pbr_maps(texture, band_rows=40)
    for name, image in pbr_maps(texture, band_rows=band_rows).items():
        np.testing.assert_array_equal(image, whole[name], err_msg=name)


def _srgb_to_linear(codes: np.ndarray) -> np.ndarray:
    values = codes / 255.0
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(values: np.ndarray) -> np.ndarray:
    values = np.clip(values, 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def _unit(vectors: np.ndarray) -> np.ndarray:
    length = np.sqrt((vectors**2).sum(-1, keepdims=True))
    return np.where(length > 1e-6, vectors / np.maximum(length, 1e-6), np.array([0.0, 0.0, 1.0]))


def _oracle_chain(pixels: np.ndarray, space: str) -> list[np.ndarray]:
    """Whole-array levels: scipy's circular [1, 3, 3, 1] / 8 filter, every other sample, in the map's space."""
    if space == "normal":
        values = _unit(pixels[..., :3] / 255.0 * 2.0 - 1.0)
    elif space == "srgb":
        values = np.concatenate([_srgb_to_linear(pixels[..., :3]), pixels[..., 3:] / 255.0], axis=-1)
    else:
        values = pixels / 255.0
    levels = [pixels]
    while values.shape[0] > 1 or values.shape[1] > 1:
        for axis in (0, 1):
            if values.shape[axis] > 1:
                filtered = scipy.ndimage.correlate1d(values, np.array([1, 3, 3, 1]) / 8, axis, mode="wrap", origin=-1)
                values = np.take(filtered, np.arange(0, values.shape[axis], 2), axis=axis)
        if space == "normal":
            values = _unit(values)
            levels.append(_bytes(values * 0.5 + 0.5))
        elif space == "srgb":
            levels.append(_bytes(np.concatenate([_linear_to_srgb(values[..., :3]), values[..., 3:]], axis=-1)))
        else:
            levels.append(_bytes(values))
    return levels


CHAINS = [
    ((64, 64, 3), "srgb"),
    ((16, 128), "linear"),
    ((128, 8, 4), "srgb"),
    ((32, 32, 3), "normal"),
    ((1, 16), "linear"),
    ((2, 1), "linear"),
]


@pytest.mark.parametrize("tail", [mipmaps.TAIL_TEXELS, 4, 1])
@pytest.mark.parametrize("shape,space", CHAINS)
def test_levels_match_the_whole_array_oracle(monkeypatch, shape, space, tail):
    """Within one code (the oracle's filter sums in another order), for short and deep row cascades (a smaller
    TAIL_TEXELS streams more levels before the rest is halved whole)."""
    monkeypatch.setattr(mipmaps, "TAIL_TEXELS", tail)
    pixels = np.random.default_rng(len(shape) + shape[0]).integers(0, 256, shape, np.uint8)
    if space == "normal":
        pixels = _texture(*shape, seed=4)
    levels, oracle = mip_chain(pixels, space), _oracle_chain(pixels, space)
    assert [level.shape for level in levels] == [level.shape for level in oracle]
    for index, (level, expected) in enumerate(zip(levels, oracle)):
        assert level.dtype == np.uint8
        assert np.abs(level - expected).max() <= 1, (index, np.abs(level - expected).max())


@pytest.mark.parametrize("band_rows", [1, 2, 3])
@pytest.mark.parametrize("shape,space", CHAINS[:4])
def test_band_size_does_not_change_the_levels(monkeypatch, shape, space, band_rows):
    monkeypatch.setattr(mipmaps, "TAIL_TEXELS", 4)
    pixels = np.random.default_rng(band_rows).integers(0, 256, shape, np.uint8)
    whole = mip_chain(pixels, space, band_rows=10**6)
    for index, (level, expected) in enumerate(zip(mip_chain(pixels, space, band_rows=band_rows), whole)):
        np.testing.assert_array_equal(level, expected, err_msg=f"level {index}")


def test_bad_inputs_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"\(H, W, 3\|4\) uint8 texture, got uint8 \(8, 8\)"):
        pbr_maps(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8 texture, got float64"):
        pbr_maps(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="band_rows must be at least 1, got 0"):
        mip_chain(np.zeros((8, 8), np.uint8), "linear", band_rows=0)
    with pytest.raises(ValueError, match="no inner part for a blur of radius 12"):
        blur_inner(np.zeros((24, 40)), 2.0)
