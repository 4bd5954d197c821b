"""The realism measure (srkit/synth/realism.py): LBP codes as a plain loop computes them, histograms and their
distance, and the scale from the exemplar's own crops (0) to matched noise (1)."""

from __future__ import annotations

import numpy as np
import pytest

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
