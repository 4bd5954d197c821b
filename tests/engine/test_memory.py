"""Tile size from free memory: grows with the memory, stays in bounds, and its windows fit the budget."""

from __future__ import annotations

import torch

from srkit.defaults import MIN_TILE
from srkit.engine import memory


def test_auto_tile_grows_with_memory_and_stays_in_bounds():
    cpu = torch.device("cpu")
    small = memory.auto_tile(1000.0, 10, 1, cpu, available=64 << 20)
    large = memory.auto_tile(1000.0, 10, 1, cpu, available=4 << 30)
    assert MIN_TILE <= small < large <= memory.MAX_TILE
    assert small % 8 == 0
    # the chosen windows fit in the budget
    assert (small + 20) ** 2 * 1000.0 <= memory.SAFETY * (64 << 20)
    assert memory.auto_tile(1e9, 10, 1, cpu, available=1 << 20) == MIN_TILE
