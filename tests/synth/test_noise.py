"""Classic noise textures: exactly periodic lattices, continuous simplex kernels, colour maps, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from srkit.synth import noise
from srkit.synth.measures import pooled_seam_score

RNG = np.random.default_rng(0)
POINTS = RNG.uniform(-7.0, 7.0, (2, 500))


def _lattice(method: str, rows: int, cols: int):
    """(evaluate, table, (period along x, period along y)) for a random lattice of `rows` x `cols` points
    (simplex: 2 * rows rows, since its rows pair up)."""
    g = np.random.default_rng(rows * 10 + cols)
    if method == "value":
        return noise.value_at, g.uniform(-1, 1, (rows, cols)), (cols, rows)
    angles = g.uniform(0, 2 * np.pi, (2 * rows if method == "simplex" else rows, cols))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    if method == "simplex":
        return noise.simplex_at, gradients, (cols, rows * np.sqrt(3))
    return noise.perlin_at, gradients, (cols, rows)


@pytest.mark.parametrize("rows,cols", [(2, 3), (4, 4), (7, 5), (1, 1)])
@pytest.mark.parametrize("method", noise.METHODS)
def test_each_lattice_repeats_after_its_period_on_both_axes(method, rows, cols):
    evaluate, table, (period_x, period_y) = _lattice(method, rows, cols)
    x, y = POINTS
    base = evaluate(x, y, table)
    assert np.abs(base).max() > 1e-3, "the field is flat: nothing was tested"
    np.testing.assert_allclose(evaluate(x + period_x, y, table), base, atol=1e-9)
    np.testing.assert_allclose(evaluate(x, y - 3 * period_y, table), base, atol=1e-9)
    np.testing.assert_allclose(evaluate(x - 2 * period_x, y + period_y, table), base, atol=1e-9)


@pytest.mark.parametrize("method", noise.METHODS)
def test_fields_are_continuous(method):
    """Steps of 1e-4 cell change the value by little everywhere (a kernel reaching past its triangle would jump)."""
    evaluate, table, _ = _lattice(method, 4, 5)
    t = np.arange(0.0, 5.0, 1e-4)
    for x, y in ((t, 0.37 + 0.3 * t), (0.21 + 0.1 * t, t * 0.9)):
        assert np.abs(np.diff(evaluate(x, y, table))).max() < 5e-3


@pytest.mark.parametrize("method", noise.METHODS)
def test_textures_are_seamless_deterministic_and_seeded(method):
    palette = noise.colormap_palette("stone")
    textures = [noise.noise_texture(method, 64, seed, palette) for seed in range(32)]
    assert pooled_seam_score(textures) <= 1.1
    assert textures[0].shape == (64, 64, 3) and textures[0].dtype == np.float32
    np.testing.assert_array_equal(noise.noise_texture(method, 64, 0, palette), textures[0])
    assert not np.array_equal(textures[0], textures[1])


@pytest.mark.parametrize("method", noise.METHODS)
@pytest.mark.parametrize("height,width", [(24, 40), (17, 9)])
def test_rectangular_odd_sizes_give_a_varied_field_of_that_shape(method, height, width):
    field = noise.noise_field(method, height, width, seed=3, frequency=2, octaves=3)
    assert field.shape == (height, width) and np.isfinite(field).all() and field.std() > 1e-3


def test_colorize_spans_the_palette_in_rank_order():
    field = np.random.default_rng(1).normal(size=(13, 11))
    palette = noise.colormap_palette("lava")
    rgb = noise.colorize(field, palette)
    np.testing.assert_allclose(rgb.reshape(-1, 3)[field.argmin()], palette[0], atol=1e-6)
    np.testing.assert_allclose(rgb.reshape(-1, 3)[field.argmax()], palette[-1], atol=1e-6)


def test_palette_from_an_image_gives_the_noise_its_luminance_distribution():
    image = np.random.default_rng(2).uniform(0, 1, (64, 64, 3)) ** 2
    texture = noise.noise_texture("simplex", 64, 0, noise.palette_from_image(image))
    luma = np.array([0.2126, 0.7152, 0.0722])
    quantiles = np.linspace(0.05, 0.95, 10)
    np.testing.assert_allclose(np.quantile(texture @ luma, quantiles), np.quantile(image @ luma, quantiles), atol=0.03)


def test_unknown_method_and_colour_map_are_refused():
    with pytest.raises(ValueError, match="method"):
        noise.noise_field("worley", 8, 8, 0)
    with pytest.raises(ValueError, match="colour map"):
        noise.colormap_palette("plaid")


@pytest.mark.parametrize("method", noise.METHODS)
def test_the_field_made_in_bands_of_rows_is_the_whole_fields(method):
    """Bands of 1 and 3 rows (and 4 texels, monkeypatched) give the field bit for bit."""
    whole = noise.noise_field(method, 21, 13, seed=5, frequency=3, octaves=3, band_rows=21)
    for rows in (1, 3):
        np.testing.assert_array_equal(
            noise.noise_field(method, 21, 13, seed=5, frequency=3, octaves=3, band_rows=rows), whole
        )


def test_colorize_in_chunks_equals_the_whole_array_formula(monkeypatch):
    """Independent oracle: ranks from np.linspace over the stable argsort, np.interp per channel, float32, and
    codes rounded half up from those floats; chunks of 7 texels (monkeypatched) give the same bytes."""
    field = np.random.default_rng(4).normal(size=(19, 23))
    field[3, :5] = field[0, 0]  # ties: the stable order decides
    palette = noise.colormap_palette("wood")
    ranks = np.empty(field.size)
    ranks[np.argsort(field, axis=None, kind="stable")] = np.linspace(0.0, len(palette) - 1, field.size)
    expected = np.stack([np.interp(ranks, np.arange(len(palette)), palette[:, k]) for k in range(3)], axis=1)
    expected = expected.reshape(19, 23, 3).astype(np.float32)
    codes = np.floor(np.clip(expected, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    for chunk in (noise.BAND_TEXELS, 7):
        monkeypatch.setattr(noise, "BAND_TEXELS", chunk)
        np.testing.assert_array_equal(noise.colorize(field, palette), expected)
        np.testing.assert_array_equal(noise.colorize(field, palette, np.uint8), codes)
    with pytest.raises(ValueError, match="float32 or uint8"):
        noise.colorize(field, palette, np.float64)
