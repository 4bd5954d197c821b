"""Texture measures: the seam score separates tiling from non-tiling images; distances and diversity behave."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from srkit.synth import measures, noise


def _crops(image: np.ndarray, count: int, size: int, seed: int) -> list[np.ndarray]:
    """Random crops of a grayscale photo as RGB uint8 (they do not tile)."""
    g = np.random.default_rng(seed)
    rgb = np.repeat(image[..., None], 3, axis=2)
    tops = g.integers(0, image.shape[0] - size, count)
    lefts = g.integers(0, image.shape[1] - size, count)
    return [rgb[t : t + size, c : c + size] for t, c in zip(tops, lefts)]


def _perlin(count: int, size: int = 64, colormap: str = "gray") -> list[np.ndarray]:
    palette = noise.colormap_palette(colormap)
    return [
        (noise.noise_texture("perlin", size, seed, palette) * 255).round().astype(np.uint8) for seed in range(count)
    ]


def test_seam_score_of_a_ramp_counts_the_jump():
    ramp = np.tile(np.arange(10, dtype=np.float64)[None, :, None], (6, 1, 3)) / 9  # 0..1 left to right, flat down
    assert measures.seam_score(ramp) == pytest.approx(1.0 / (1.0 / 9)) and measures.seam_score(ramp.T) > 8
    assert measures.seam_score(np.full((5, 5, 3), 7, np.uint8)) == 1.0


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1)])
@pytest.mark.parametrize("period", [1, 3])
def test_seam_score_in_bands_equals_the_whole_array_formula(monkeypatch, dtype, top, period):
    """Independent oracle: the mean absolute differences written out on a float64 copy of the whole image;
    bands of 1 element and the default give the same score (to 1e-12)."""
    rng = np.random.default_rng(period)
    image = (rng.random((37, 29, 3)) if dtype == np.float32 else rng.integers(0, top + 1, (37, 29, 3))).astype(dtype)
    x = image.astype(np.float64) / top
    border = np.abs(x[:, -1] - x[:, 0]).mean() + np.abs(x[-1] - x[0]).mean()
    interior = (
        np.abs(x[:, period::period] - x[:, period - 1 : -1 : period]).mean()
        + np.abs(x[period::period] - x[period - 1 : -1 : period]).mean()
    )
    assert measures.seam_score(image, period) == pytest.approx(border / interior, rel=1e-12)
    monkeypatch.setattr(measures, "BAND_ELEMENTS", 1)
    assert measures.seam_score(image, period) == pytest.approx(border / interior, rel=1e-12)
    assert measures.seam_score(image[..., 0], period) > 0


@pytest.mark.parametrize("photo", ["grass", "gravel", "brick"])
def test_pooled_seam_score_separates_tiling_textures_from_photo_crops(photo):
    assert measures.pooled_seam_score(_crops(getattr(skimage.data, photo)(), 32, 64, 0)) > 1.5
    assert measures.pooled_seam_score(_perlin(32)) < 1.1


def test_grid_period_compares_the_border_with_interior_lines_at_the_same_place_in_the_grid():
    """Nearest x4 upscaling of tiling textures: the border is a block edge, like 1 in 4 interior lines."""
    blocky = [np.repeat(np.repeat(noise_tile, 4, axis=0), 4, axis=1) for noise_tile in _perlin(32, size=16)]
    assert measures.pooled_seam_score(blocky) > 2.5  # every border is a block edge; most interior lines are not
    assert measures.pooled_seam_score(blocky, period=4) < 1.1
    with pytest.raises(ValueError, match="no interior line"):
        measures.seam_score(blocky[0], period=40)


def test_a_periodic_texture_rolled_is_still_seamless_but_a_cut_one_is_not():
    textures = _perlin(16)
    rolled = [np.roll(t, (17, 29), axis=(0, 1)) for t in textures]
    assert measures.pooled_seam_score(rolled) < 1.1
    assert measures.pooled_seam_score([t[:48, :48] for t in textures]) > 1.5  # a crop of a tile does not tile


def test_statistics_distance_is_zero_to_itself_and_ranks_families():
    perlin = measures.texture_stats(_perlin(12))
    other_perlin = measures.texture_stats(_perlin(24)[12:])
    grass = measures.texture_stats(_crops(skimage.data.grass(), 12, 64, 1))
    assert measures.stats_distance(perlin, perlin) == {"colour": 0.0, "spectrum": 0.0, "gram": 0.0}
    near, far = measures.stats_distance(other_perlin, perlin), measures.stats_distance(grass, perlin)
    assert all(near[key] < far[key] for key in near), (near, far)


def test_statistics_see_colour_spectrum_and_structure_separately():
    base = _perlin(8)
    tinted = [np.clip(t.astype(int) + [60, 0, 0], 0, 255).astype(np.uint8) for t in base]
    blurred = [
        ((t.astype(float) + np.roll(t, 1, 0) + np.roll(t, 1, 1) + np.roll(t, (1, 1), (0, 1))) / 4).astype(np.uint8)
        for t in base
    ]
    reference = measures.texture_stats(base)
    tint = measures.stats_distance(measures.texture_stats(tinted), reference)
    blur = measures.stats_distance(measures.texture_stats(blurred), reference)
    assert tint["colour"] > 0.3 and tint["spectrum"] < 0.05  # a colour shift leaves the luminance spectrum alone
    assert blur["spectrum"] > 0.1 and blur["colour"] < tint["colour"]


def test_diversity_is_zero_for_copies_and_positive_for_different_textures():
    textures = _perlin(4)
    assert measures.diversity([textures[0]] * 3) == 0.0
    assert measures.diversity(textures) > 0.05


def _gravel_crops(count: int = 8, size: int = 256) -> list[np.ndarray]:
    return _crops(skimage.data.gravel(), count, size, 3)


def test_stride_peaks_of_photo_crops_are_about_one():
    peaks = measures.stride_peaks(_gravel_crops())
    assert set(peaks) == {0.5, 0.25, 0.125} and all(0.3 < p < 3 for p in peaks.values()), peaks


@pytest.mark.parametrize("period", [2, 4, 8])
@pytest.mark.parametrize("axis", ["rows", "columns", "both"])
def test_stride_peaks_find_a_faint_pattern_at_its_stride_only(period, axis):
    """A +-3-code square wave of `period` pixels on rows, columns or both (a checkerboard, on the diagonal) added to
    photo crops stands out at 1/period and nowhere else (an odd square wave has no even harmonics)."""
    index = (np.arange(256) // (period // 2)) % 2
    rows, cols = index[:, None], index[None, :]
    wave = {"rows": rows + 0 * cols, "columns": cols + 0 * rows, "both": (rows + cols) % 2}[axis]
    marked = [np.clip(c.astype(int) + 6 * wave[..., None] - 3, 0, 255).astype(np.uint8) for c in _gravel_crops()]
    peaks = measures.stride_peaks(marked)
    assert peaks[1 / period] > 20, peaks
    assert all(p < 3 for f, p in peaks.items() if f != 1 / period), peaks


def test_stride_peaks_refuse_sizes_without_the_stride_bins():
    with pytest.raises(ValueError, match="multiples of 8"):
        measures.stride_peaks([np.zeros((60, 64, 3), np.uint8)])
