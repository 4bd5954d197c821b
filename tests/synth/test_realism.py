"""The realism measure (srkit/synth/realism.py): LBP codes as a plain loop and as scikit-image compute them,
histograms and their distance, and the scale from the exemplar's own crops (0) to matched noise (1)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from srkit.synth import realism


def _loop_codes(luma: np.ndarray, radius: int) -> np.ndarray:
    """The LBP definition, one pixel and one neighbour at a time."""
    height, width = luma.shape
    codes = np.zeros((height - 2 * radius, width - 2 * radius), np.int64)
    for y in range(radius, height - radius):
        for x in range(radius, width - radius):
            for bit, (dy, dx) in enumerate(realism.NEIGHBOURS):
                if luma[y + dy * radius, x + dx * radius] >= luma[y, x]:
                    codes[y - radius, x - radius] |= 1 << bit
    return codes


@pytest.mark.parametrize("radius", realism.RADII)
def test_lbp_codes_match_the_definition(radius):
    luma = realism.luminance(np.random.default_rng(radius).integers(0, 4, (13, 17, 3), dtype=np.uint8))
    np.testing.assert_array_equal(realism.lbp_codes(luma, radius), _loop_codes(luma, radius))


# scikit-image's LBP samples P neighbours on a circle of radius R (bit p at angle 2 pi p / P, counter-clockwise
# from +x); its 4-neighbour code at R = r lands exactly on the square's edge midpoints and its 8-neighbour code at
# R = r sqrt 2 on its corners (odd bits), so together they give every bit of srkit's code: (dy, dx) -> (P, bit).
SKIMAGE_BITS = {(0, 1): (4, 0), (-1, 0): (4, 1), (0, -1): (4, 2), (1, 0): (4, 3)}
SKIMAGE_BITS |= {(-1, 1): (8, 1), (-1, -1): (8, 3), (1, -1): (8, 5), (1, 1): (8, 7)}


@pytest.mark.parametrize("radius", realism.RADII)
def test_lbp_codes_match_scikit_image(radius):
    """An independent implementation: scikit-image's local_binary_pattern, whose `>=` ties are srkit's, on a
    grey image with many ties (values 0..3), compared where all of srkit's neighbours lie inside."""
    grey = np.random.default_rng(10 + radius).integers(0, 4, (21, 19), dtype=np.uint8)
    codes = {
        points: local_binary_pattern(grey, points, radius * (1.0 if points == 4 else np.sqrt(2.0))).astype(int)
        for points in (4, 8)
    }
    expected = np.zeros_like(codes[4])
    for bit, offset in enumerate(realism.NEIGHBOURS):
        points, sk_bit = SKIMAGE_BITS[offset]
        expected |= ((codes[points] >> sk_bit) & 1) << bit
    inside = expected[radius:-radius, radius:-radius]
    np.testing.assert_array_equal(realism.lbp_codes(grey.astype(np.float64), radius), inside)


def test_histograms_sum_to_one_and_the_distance_is_a_total_variation():
    rng = np.random.default_rng(0)
    flat, busy = np.full((32, 32, 3), 9, np.uint8), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    histograms = realism.lbp_histograms([flat])
    np.testing.assert_allclose(histograms.sum(1), 1.0)
    assert histograms[:, realism.BINS - 1].min() == 1.0  # equal neighbours set every bit
    assert realism.lbp_distance(histograms, histograms) == 0.0
    busy_histograms = realism.lbp_histograms([busy])  # one bin against a spread: TV = 1 - the spread's mass there
    assert realism.lbp_distance(histograms, busy_histograms) == pytest.approx(1 - busy_histograms[:, -1].mean())


def test_the_scale_puts_the_floor_at_0_and_the_ceiling_at_1():
    assert realism.realism(0.1, 0.1, 0.5) == 0.0 and realism.realism(0.5, 0.1, 0.5) == 1.0
    assert realism.realism(0.2, 0.1, 0.5) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="no farther than the exemplar's own crops"):
        realism.realism(0.2, 0.3, 0.3)
