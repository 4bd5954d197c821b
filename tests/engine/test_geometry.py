"""Tile geometry: pieces, the geometry value's checks, windows of one shape, blend weights summing to one."""

from __future__ import annotations

import pytest
import torch

from srkit.engine.geometry import Geometry, split
from srkit.engine.tiling import upscale_tiled
from srkit.models.size_rules import SizeRules


def test_split_covers_the_range_in_near_equal_pieces():
    for size in (1, 7, 64, 65, 1000):
        for tile in (1, 8, 64, 333):
            pieces = split(size, tile)
            assert pieces[0][0] == 0 and sum(n for _, n in pieces) == size
            assert all(a + n == b for (a, n), (b, _) in zip(pieces, pieces[1:]))
            assert max(n for _, n in pieces) <= tile and max(n for _, n in pieces) - min(n for _, n in pieces) <= 1


@pytest.mark.parametrize("scale,tile,overlap,radius", [(2, 0, 4, 1), (2, 8, -1, 1), (0, 8, 4, 1), (2, 8, 4, -1)])
def test_a_geometry_no_grid_can_have_is_refused(scale, tile, overlap, radius):
    with pytest.raises(ValueError, match=f"got {scale}, {tile}, {overlap}, {radius}"):
        Geometry(scale, tile, overlap, radius)


def test_wrap_mode_refuses_sides_off_the_models_grid():
    with pytest.raises(ValueError, match="divisible by 2"):
        Geometry(2, 8, 4, 1, wrap=True, rules=SizeRules(multiple_of=2)).padded(15, 16)


@pytest.mark.parametrize(
    "size,tile,wrap,multiple_of", [((29, 37), 8, False, 1), ((30, 38), 9, True, 2), ((31, 23), 10, False, 4)]
)
def test_windows_cover_their_cores_with_one_shape_in_whole_units(size, tile, wrap, multiple_of):
    geometry = Geometry(2, tile, 3, 2, wrap=wrap, rules=SizeRules(multiple_of=multiple_of))
    grid = geometry.grid(size[0], size[1], [(2, 1), (2, 1)])
    padded = geometry.padded(size[0], size[1])
    assert all(side % multiple_of == 0 for side in padded) and padded[0] >= size[0] and padded[1] >= size[1]
    covered = torch.zeros(padded, dtype=torch.int64)
    for core in grid.cores:
        top, left, bottom, right = grid.window(core)
        assert (bottom - top, right - left) == grid.span and top % multiple_of == left % multiple_of == 0
        assert top <= core.top and core.top + core.height <= bottom  # the core lies inside its window
        assert left <= core.left and core.left + core.width <= right
        covered[core.top : core.top + core.height, core.left : core.left + core.width] += 1
    assert torch.equal(covered, torch.ones_like(covered))  # cores are a partition of the padded image


def test_seams_blend_with_weights_that_sum_to_one():
    """A run that returns a constant gives that constant everywhere, seams and wrap-around included: the
    crossfade weights are a partition of unity (nothing is divided by a weight sum); fp32 rounding only."""
    image = torch.rand(3, 23, 41, generator=torch.Generator().manual_seed(13))
    for wrap in (False, True):
        out = upscale_tiled(
            image,
            lambda batch: torch.full((batch.shape[0], 3, *(2 * n for n in batch.shape[2:])), 0.625),
            Geometry(2, 7, 4, 1, wrap=wrap),
        )
        assert (out - 0.625).abs().max() <= 1e-6
