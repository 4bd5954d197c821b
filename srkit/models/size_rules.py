"""The input sizes a network accepts, and the only place that pads an input to them and crops the output back.

Padding goes at the bottom and right: the image reflected as far as it allows (one pixel less than its side), then
the last pixel of that reflection (the image's first row / column) repeated. The engine's plan pads whole batches
with `pad`; the tiler gathers windows that reach past the image with `source_index`, the same rule as indices, so a
window and the whole image see the same padding pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SizeRules:
    """Sides a multiple of `multiple_of` and at least `min_size` pixels, and square if `square`."""

    multiple_of: int = 1
    """Input height and width must be multiples of this (a pixel-unshuffling or stride-2 network)."""
    min_size: int = 1
    """Smallest input height and width the network accepts."""
    square: bool = False
    """The input must be square (padded to the longer side)."""

    def __post_init__(self) -> None:
        """Refuse rules no size can meet (a model file's metadata or shapes gave nonsense)."""
        if self.multiple_of < 1 or self.min_size < 1:
            raise ValueError(
                f"size rules need multiple_of >= 1 and min_size >= 1, got {self.multiple_of}, {self.min_size}"
            )

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The smallest (height, width) at least as large that meets the rules."""

        def side(size: int) -> int:
            size = max(size, self.min_size)
            return size + (-size) % self.multiple_of

        height, width = side(height), side(width)
        if self.square:
            height = width = max(height, width)
        return height, width

    def aligned(self, size: int) -> int:
        """`size` rounded up to a multiple of `multiple_of` (a tiled image's grid, windows then padded alone)."""
        return size + (-size) % self.multiple_of

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """An (N, C, H, W) batch padded at the bottom and right to the rules (x itself when it meets them)."""
        height, width = x.shape[2:]
        target_h, target_w = self.padded_size(height, width)
        if (target_h, target_w) == (height, width):
            return x
        rows = source_index(0, target_h, height, target_h)
        cols = source_index(0, target_w, width, target_w)
        return x[:, :, rows][:, :, :, cols].contiguous(memory_format=torch.channels_last)

    @staticmethod
    def crop(y: torch.Tensor, height: int, width: int, scale: int, packed: bool) -> torch.Tensor:
        """The output of an input of (height, width) from the output `y` of its padded input at `scale`: floats
        (N, C, H, W), or `packed` codes (N, H, W, C)."""
        if packed:
            return y[:, : height * scale, : width * scale]
        return y[:, :, : height * scale, : width * scale]

    def describe(self) -> str:
        """The rules in words ('any', 'multiple of 2, at least 20 px, square')."""
        words = f"multiple of {self.multiple_of}" if self.multiple_of > 1 else "any"
        words += f", at least {self.min_size} px" if self.min_size > 1 else ""
        return words + (", square" if self.square else "")


def source_index(first: int, end: int, size: int, padded: int, wrap: bool = False) -> torch.Tensor:
    """Image indices of positions [first, end) along an axis of `size` pixels padded to `padded`: periodic when
    `wrap`, else positions past the image reflected, then the edge of the reflection repeated."""
    index = torch.arange(first, end)
    if wrap:
        return index % size
    if padded > size and size > 1:
        index = torch.where(index >= size, 2 * (size - 1) - index, index)
    return index.clamp(0, size - 1)
