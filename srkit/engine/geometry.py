"""Where the tiler cuts an image: cores, their windows, the seams between them and the blend weights across them.

The image is cut into a grid of cores of at most `tile` pixels. Each core is run with at least `overlap` pixels
of context on every side (taken periodically in wrap mode, so textures stay seamless), all windows of one shape.
Along each axis, the output pixels within R of a core boundary form a seam where the two neighbours crossfade with
raised-cosine weights w and 1 - w (so the weights are a partition of unity by construction: no weight sums, no
division); the rest of a core's output is its own, weight one. The crossfade is exactly zero within the model's
receptive radius of a window edge, where the missing context corrupts the result, so when overlap >= receptive
radius the tiled result equals the whole-image result. A model whose sides must be multiples of `multiple_of`
(pixel-unshuffling RRDB) gets a grid over the image padded up to such a size (its size rules' padding), cores and
overlaps in whole units of it, so every window is aligned and the tiled result still equals the whole-image one.
With an output resize (-s) the grid maps input boundaries to output positions by the resize's ratio (rounded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from ..defaults import MIN_TILE
from ..models.size_rules import SizeRules, source_index

Bounds = tuple[int, int, int, int]  # a window (top, left, bottom, right) in unwrapped input positions


@dataclass(frozen=True)
class Core:
    """A rectangle of the input (top, left, height, width) whose upscaled pixels a window is mainly for,
    with its place (row, col) in the grid of cores."""

    top: int
    left: int
    height: int
    width: int
    row: int = 0
    col: int = 0


def split(size: int, tile: int, unit: int = 1) -> list[tuple[int, int]]:
    """(start, length) of near-equal pieces of at most `tile` (whole `unit`s: size is a multiple) covering
    range(size)."""
    units, per_tile = size // unit, max(1, tile // unit)
    count = max(1, math.ceil(units / per_tile))
    bounds = [round(i * units / count) * unit for i in range(count + 1)]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]


def blend_half_width(overlap: int, receptive_radius: int) -> float:
    """Half-width (input pixels) of the blend around a core edge, leaving the corrupted border out."""
    guard = receptive_radius if receptive_radius <= overlap else overlap / 2
    return overlap - guard


def halved_tile(cores: list[Core], unit: int) -> int | None:
    """The tile size for an out-of-memory retry: the largest half of these cores' sides longer than
    2 * MIN_TILE (in whole units), or None when no side can be halved."""
    halves = [
        length - length // 2 // unit * unit
        for core in cores
        for length in (core.height, core.width)
        if length >= 2 * MIN_TILE
    ]
    return max(halves) if halves else None


@dataclass(frozen=True)
class Axis:
    """One axis of the grid: core (start, length) pieces, the seam half-width R and the output geometry."""

    pieces: list[tuple[int, int]]
    size: int
    ratio: tuple[int, int]  # output pixels per input pixel as (numerator, denominator): (scale, 1), or a resize's
    seam: int  # R: output pixels on each side of an inner core boundary that crossfade
    half_width: float  # the ramp's half-width in output pixels
    wrap: bool

    def edge(self, position: int) -> int:
        """The output position of input position `position` (unwrapped): position * ratio, rounded half up."""
        numerator, denominator = self.ratio
        return (2 * position * numerator + denominator) // (2 * denominator)

    def parts(self, index: int) -> list[tuple[tuple, int, int]]:
        """(key, first, end) of the output stretches (unwrapped output positions) core `index` writes to:
        its top/left seam, its own part, its bottom/right seam. A seam's key names the boundary it lies on."""
        start, length = self.pieces[index]
        last = len(self.pieces) - 1
        before = self.seam if (index > 0 or self.wrap) else 0
        after = self.seam if (index < last or self.wrap) else 0
        lo, hi = self.edge(start), self.edge(start + length)
        parts = [(("own", index), lo + before, hi - after)]
        if before:
            parts.append((("seam", index), lo - before, lo + before))
        if after:
            parts.append((("seam", (index + 1) % len(self.pieces)), hi - after, hi + after))
        return [part for part in parts if part[2] > part[1]]

    def weight(self, index: int, key: tuple, first: int, end: int, like: torch.Tensor) -> torch.Tensor | None:
        """Core `index`'s crossfade weights over output positions [first, end) of `key` (None: all one)."""
        if key[0] == "own":
            return None
        start, length = self.pieces[index]
        lo, hi = self.edge(start), self.edge(start + length)
        edge = lo if first < lo else hi
        t = (torch.arange(first, end, device=like.device, dtype=torch.float32) + 0.5 - edge) / self.half_width
        rising = 0.5 + 0.5 * torch.sin(t.clamp(-1.0, 1.0) * (math.pi / 2))  # the core after the boundary
        return (rising if edge == lo else 1.0 - rising).to(like.dtype)

    def contributors(self, key: tuple) -> int:
        """How many cores along this axis add to the stretch `key`: one for a core's own part, two for a seam."""
        return 1 if key[0] == "own" else 2

    def band_starts(self) -> list[int]:
        """First output row of each row of cores' band: the rows that are final once that row of cores is added
        (its top seam and own part; in wrap mode row 0's top seam only after the last row)."""
        return [0] + [self.edge(start) - self.seam for start, _ in self.pieces[1:]]


def _axis(
    pieces: list[tuple[int, int]], size: int, ratio: tuple[int, int], blend: float, overlap: int, wrap: bool
) -> Axis:
    """The axis of these cores, its ramp `blend` input pixels wide each side of a boundary where it fits: within
    half the smallest core's output (so a core's two seams never meet) and within the windows' output past it."""
    probe = Axis(pieces, size, ratio, 0, 0.0, wrap)
    lengths = [probe.edge(start + length) - probe.edge(start) for start, length in pieces]
    boundaries = [start for start, _ in (pieces if wrap else pieces[1:])]
    context = [
        min(
            probe.edge(b) - probe.edge(b - overlap if wrap else max(0, b - overlap)),
            probe.edge(b + overlap if wrap else min(size, b + overlap)) - probe.edge(b),
        )
        for b in boundaries
    ]
    half_width = min([blend * ratio[0] / ratio[1], min(lengths) // 2, *context])
    return Axis(pieces, size, ratio, math.ceil(half_width) if half_width > 0 else 0, half_width, wrap)


@dataclass(frozen=True)
class Grid:
    """The cores of one image and their windows, all of one shape (`span`) within the `padded` image."""

    rows: Axis
    cols: Axis
    cores: tuple[Core, ...]
    span: tuple[int, int]
    overlap: int
    padded: tuple[int, int]
    wrap: bool

    def window(self, core: Core) -> Bounds:
        """The window of `core`: its overlap on each side; at the image's edge (not in wrap mode) moved inwards,
        so every window has the one shape and the model one bound plan, taking more context than needed."""
        top, left = core.top - self.overlap, core.left - self.overlap
        if not self.wrap:
            top = min(max(0, top), self.padded[0] - self.span[0])
            left = min(max(0, left), self.padded[1] - self.span[1])
        return top, left, top + self.span[0], left + self.span[1]

    def pixels(self, image: torch.Tensor, window: Bounds) -> torch.Tensor:
        """The (C, h, w) input of a window: a slice where it lies inside the image, else gathered (wrapped, or
        padded past the image's bottom/right edge by its size rules)."""
        top, left, bottom, right = window
        height, width = image.shape[1:]
        if 0 <= top and 0 <= left and bottom <= height and right <= width:
            return image[:, top:bottom, left:right]
        rows = source_index(top, bottom, height, self.padded[0], self.wrap)
        return image[:, rows][:, :, source_index(left, right, width, self.padded[1], self.wrap)]


@dataclass(frozen=True)
class Geometry:
    """How an image is cut for a model: `scale` output pixels per input pixel of a run (the model's output scale),
    cores of at most `tile` input pixels with `overlap` pixels of context on each side, the network's
    `receptive_radius` (where a window's output is corrupted by the missing context), periodic (`wrap`) or not,
    and the network's size `rules` (cores in whole units of its multiple_of)."""

    scale: int
    tile: int
    overlap: int
    receptive_radius: int
    wrap: bool = False
    rules: SizeRules = field(default_factory=SizeRules)

    def __post_init__(self) -> None:
        """Refuse a geometry no grid can have."""
        if self.scale < 1 or self.tile < 1 or self.overlap < 0 or self.receptive_radius < 0:
            raise ValueError(
                f"tile geometry needs scale >= 1, tile >= 1, overlap >= 0 and receptive radius >= 0; "
                f"got {self.scale}, {self.tile}, {self.overlap}, {self.receptive_radius}"
            )

    @property
    def unit(self) -> int:
        """What cores and overlaps are whole multiples of."""
        return self.rules.multiple_of

    def with_tile(self, tile: int) -> Geometry:
        """This geometry with cores of at most `tile` pixels (an out-of-memory retry)."""
        return replace(self, tile=tile)

    def with_reach(self, reach: int) -> Geometry:
        """This geometry for runs followed by a filter reaching `reach` more input pixels (an -s resize)."""
        return replace(self, overlap=self.overlap + reach, receptive_radius=self.receptive_radius + reach)

    def padded(self, height: int, width: int) -> tuple[int, int]:
        """The size the grid covers: the image's sides rounded up to whole units (in wrap mode they must be)."""
        if self.wrap and (height % self.unit or width % self.unit):
            raise ValueError(f"wrap mode needs sides divisible by {self.unit} for this model, got {width}x{height}")
        return self.rules.aligned(height), self.rules.aligned(width)

    def fits_one_window(self, height: int, width: int) -> bool:
        """Whether one window holds the whole image (not in wrap mode): nothing to blend."""
        padded_h, padded_w = self.padded(height, width)
        return not self.wrap and padded_h <= self.tile and padded_w <= self.tile

    def whole(self, height: int, width: int, ratios: list[tuple[int, int]]) -> Grid:
        """The image, padded to whole units, as one core and one window (nothing to blend)."""
        padded = self.padded(height, width)
        axes = [Axis([(0, length)], length, ratio, 0, 0.0, False) for length, ratio in zip(padded, ratios)]
        return Grid(axes[0], axes[1], (Core(0, 0, *padded),), padded, 0, padded, False)

    def grid(self, height: int, width: int, ratios: list[tuple[int, int]]) -> Grid:
        """The cores of a (height, width) image and their windows; `ratios` are the output pixels per input pixel
        of the rows and columns as (numerator, denominator)."""
        padded = self.padded(height, width)
        overlap = self.overlap + (-self.overlap) % self.unit
        row_pieces, col_pieces = split(padded[0], self.tile, self.unit), split(padded[1], self.tile, self.unit)
        blend = blend_half_width(overlap, self.receptive_radius)
        rows, cols = [
            _axis(pieces, size, ratio, blend, overlap, self.wrap)
            for pieces, size, ratio in zip((row_pieces, col_pieces), padded, ratios)
        ]
        cores = tuple(
            Core(top, left, height, width, i, j)
            for i, (top, height) in enumerate(row_pieces)
            for j, (left, width) in enumerate(col_pieces)
        )
        span_h = max(length for _, length in row_pieces) + 2 * overlap
        span_w = max(length for _, length in col_pieces) + 2 * overlap
        if not self.wrap:
            span_h, span_w = min(span_h, padded[0]), min(span_w, padded[1])
        return Grid(rows, cols, cores, (span_h, span_w), overlap, padded, self.wrap)


def wrapped(start: int, length: int, size: int) -> list[tuple[int, int, int]]:
    """(first, end, offset in the piece) of the parts of [start, start+length) taken modulo `size`."""
    parts, offset = [], 0
    while offset < length:
        first = (start + offset) % size
        count = min(length - offset, size - first)
        parts.append((first, first + count, offset))
        offset += count
    return parts
