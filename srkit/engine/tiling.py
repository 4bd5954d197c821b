"""Upscale a large image tile by tile: overlapping windows, batched runs, blends that sum to one, output packed.

The image is cut into a grid of cores of at most `tile` pixels. Each core is run with at least `overlap` pixels
of context on every side (taken periodically in wrap mode, so textures stay seamless), all windows of one shape. Along each axis, the
output pixels within R of a core boundary form a seam where the two neighbours crossfade with raised-cosine
weights w and 1 - w (so the weights are a partition of unity by construction: no weight sums, no division);
the rest of a core's output is its own, weight one. The crossfade is exactly zero within the model's
receptive radius of a window edge, where the missing context corrupts the result, so when overlap >=
receptive radius the tiled result equals the whole-image result. Blending runs on the windows' device in
their dtype; a finished piece of the output (a core's own pixels, or a seam once all its neighbours have
added to it) is clamped, packed to the output's dtype (uint8/uint16 HWC through the kernels' epilogue) and
written straight into the output image. The only float state is the seams not yet finished: with cores taken
in raster order, the strip below the current row of cores (in wrap mode also the first row's top seam).
A model that needs sides divisible by `multiple_of` (pixel-unshuffling RRDB) gets an image reflected up to
such a size, cores and overlaps in whole units of it, so every window is aligned and the tiled result still
equals the whole-image one; pixels beyond the image are not written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import kernels as K
from ..errors import SrkitError

MIN_TILE = 32  # below this, tiles are mostly overlap: out-of-memory at this size is reported, not retried

RunFn = Callable[[torch.Tensor], torch.Tensor]
INTEGER_OUT = (torch.uint8, torch.uint16)


class OutOfMemory(SrkitError):
    """Even the smallest tile does not fit in the device's memory."""


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


def _halved_tile(cores: list[Core], unit: int) -> int | None:
    """The tile size for an out-of-memory retry: the largest half of these cores' sides longer than
    2 * MIN_TILE (in whole units), or None when no side can be halved."""
    halves = [length - length // 2 // unit * unit for core in cores for length in (core.height, core.width)
              if length >= 2 * MIN_TILE]
    return max(halves) if halves else None


@dataclass(frozen=True)
class _Axis:
    """One axis of the grid: core (start, length) pieces, the seam half-width R and the output scale."""

    pieces: list[tuple[int, int]]
    size: int
    scale: int
    seam: int  # R: output pixels on each side of an inner core boundary that crossfade
    half_width: float  # the ramp's half-width in output pixels
    wrap: bool

    def parts(self, index: int) -> list[tuple[tuple, int, int]]:
        """(key, first, end) of the output stretches (unwrapped output positions) core `index` writes to:
        its top/left seam, its own part, its bottom/right seam. A seam's key names the boundary it lies on."""
        start, length = self.pieces[index]
        last = len(self.pieces) - 1
        before = self.seam if (index > 0 or self.wrap) else 0
        after = self.seam if (index < last or self.wrap) else 0
        lo, hi = start * self.scale, (start + length) * self.scale
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
        edge = start * self.scale if first < start * self.scale else (start + length) * self.scale
        t = (torch.arange(first, end, device=like.device, dtype=torch.float32) + 0.5 - edge) / self.half_width
        rising = 0.5 + 0.5 * torch.sin(t.clamp(-1.0, 1.0) * (math.pi / 2))  # the core after the boundary
        return (rising if edge == start * self.scale else 1.0 - rising).to(like.dtype)

    def contributors(self, key: tuple) -> int:
        """How many cores along this axis add to the stretch `key`: one for a core's own part, two for a seam."""
        return 1 if key[0] == "own" else 2


class _Output:
    """The output image and the seams still being blended; finished pieces are packed and written."""

    def __init__(self, out: torch.Tensor, rows: _Axis, cols: _Axis, clamp: tuple[float, float] | None) -> None:
        self.out, self.rows, self.cols, self.clamp = out, rows, cols, clamp
        self.pending: dict[tuple, list] = {}  # (row key, col key) -> [float sum, contributions so far]

    def add(self, core: Core, result: torch.Tensor, window_top: int, window_left: int) -> None:
        """Add a window's result (C, h*s, w*s; its first pixel at unwrapped input (window_top, window_left))."""
        s = self.rows.scale
        for row_key, r0, r1 in self.rows.parts(core.row):
            wy = self.rows.weight(core.row, row_key, r0, r1, result)
            for col_key, c0, c1 in self.cols.parts(core.col):
                wx = self.cols.weight(core.col, col_key, c0, c1, result)
                piece = result[:, r0 - window_top * s:r1 - window_top * s, c0 - window_left * s:c1 - window_left * s]
                needed = self.rows.contributors(row_key) * self.cols.contributors(col_key)
                if needed == 1:
                    self._write(piece, r0, c0)
                    continue
                weighted = piece * (wy[:, None] if wy is not None else 1) * (wx[None, :] if wx is not None else 1)
                key = (row_key, col_key)
                if key not in self.pending:
                    self.pending[key] = [weighted, 1]
                    continue
                entry = self.pending[key]
                entry[0] += weighted
                entry[1] += 1
                if entry[1] == needed:
                    del self.pending[key]
                    self._write(entry[0], r0, c0)

    def _write(self, piece: torch.Tensor, top: int, left: int) -> None:
        """Pack a finished (C, h, w) piece and write it at unwrapped output (top, left): wrapped, cropped."""
        out_h, out_w = self.rows.size * self.rows.scale, self.cols.size * self.cols.scale
        for r0, r1, pr in _wrapped(top, piece.shape[1], out_h):
            if r0 >= self.out.shape[0]:
                continue
            r1 = min(r1, self.out.shape[0])
            for c0, c1, pc in _wrapped(left, piece.shape[2], out_w):
                if c0 >= self.out.shape[1]:
                    continue
                c1 = min(c1, self.out.shape[1])
                block = piece[:, pr:pr + r1 - r0, pc:pc + c1 - c0]
                self.out[r0:r1, c0:c1].copy_(self._pack(block))

    def _pack(self, block: torch.Tensor) -> torch.Tensor:
        """(C, h, w) floats -> (h, w, C) in the output's dtype: the kernels' clamp / uint8-uint16 epilogue."""
        if self.out.dtype in INTEGER_OUT:
            return K.pixel_shuffle_add(block[None], 1, clamp=self.clamp, out_dtype=self.out.dtype)[0]
        if self.clamp is not None:
            block = block.clamp(*self.clamp)
        return block.permute(1, 2, 0)


def _wrapped(start: int, length: int, size: int) -> list[tuple[int, int, int]]:
    """(first, end, offset in the piece) of the parts of [start, start+length) taken modulo `size`."""
    parts, offset = [], 0
    while offset < length:
        first = (start + offset) % size
        count = min(length - offset, size - first)
        parts.append((first, first + count, offset))
        offset += count
    return parts


def _source_rows(first: int, end: int, size: int, padded: int, wrap: bool) -> torch.Tensor:
    """Input indices of window positions [first, end): periodic in wrap mode, else positions past the image
    (up to the padded size) reflected, then the edge repeated (a tiny image)."""
    index = torch.arange(first, end)
    if wrap:
        return index % size
    if padded > size and size > 1:
        index = torch.where(index >= size, 2 * (size - 1) - index, index)
    return index.clamp(0, size - 1)


def _window_pixels(image: torch.Tensor, window: tuple[int, int, int, int], padded: tuple[int, int],
                   wrap: bool) -> torch.Tensor:
    """The (C, h, w) input of a window (top, left, bottom, right): a slice where it lies inside the image, else
    gathered (wrapped, or reflected past the image's bottom/right edge)."""
    top, left, bottom, right = window
    height, width = image.shape[1:]
    if 0 <= top and 0 <= left and bottom <= height and right <= width:
        return image[:, top:bottom, left:right]
    rows = _source_rows(top, bottom, height, padded[0], wrap)
    return image[:, rows][:, :, _source_rows(left, right, width, padded[1], wrap)]


def upscale_tiled(image: torch.Tensor, run: RunFn, scale: int, tile: int, overlap: int, receptive_radius: int,
                  wrap: bool = False, batch: int = 1, on_progress: Callable[[int, int], None] | None = None,
                  on_smaller_tile: Callable[[int], None] | None = None,
                  out_channels: int | None = None, multiple_of: int = 1, out: torch.Tensor | None = None,
                  clamp: tuple[float, float] | None = None) -> torch.Tensor:
    """Upscale a (C, H, W) image with `run` (a (B, C, h, w) batch of windows in the image's dtype -> (B, C',
    h*s, w*s) floats); returns `out`, the (H*s, W*s, C') output it wrote (float32 allocated here if None).

    `tile` is the core size in input pixels, `overlap` the context added on each side. On out-of-memory the
    grid is made again with tiles half the size and the image run again; `on_smaller_tile(new_size)` is told.
    C' is `out_channels`, by default C (a texture generator maps noise channels to 3). Windows are aligned to
    `multiple_of`. A uint8 / uint16 `out` gets codes (values clamped to [0, 1] and rounded half up); `clamp`
    is applied to every output value.
    """
    if tile < 1 or overlap < 0 or batch < 1 or multiple_of < 1:
        raise ValueError(f"tile must be >= 1, overlap >= 0, batch >= 1 and multiple_of >= 1; got {tile}, "
                         f"{overlap}, {batch}, {multiple_of}")
    channels, height, width = image.shape
    if wrap and (height % multiple_of or width % multiple_of):
        raise ValueError(f"wrap mode needs sides divisible by {multiple_of} for this model, got {width}x{height}")
    if out is None:
        out = torch.empty(height * scale, width * scale, out_channels or channels, dtype=torch.float32)
    padded_h, padded_w = height + (-height) % multiple_of, width + (-width) % multiple_of
    overlap += (-overlap) % multiple_of
    if not wrap and padded_h <= tile and padded_w <= tile:  # one window holds the whole image: nothing to blend
        try:
            _run_whole(image, run, scale, padded_h, padded_w, out, clamp)
        except torch.OutOfMemoryError:
            pass  # the tiled path below splits it
        else:
            if on_progress:
                on_progress(1, 1)
            return out
    while True:
        try:
            _run_grid(image, run, scale, tile, overlap, receptive_radius, wrap, batch, on_progress, multiple_of,
                      (padded_h, padded_w), out, clamp)
            return out
        except _Smaller as smaller:
            tile = smaller.tile
            if on_smaller_tile:
                on_smaller_tile(tile)


class _Smaller(Exception):
    """Out of memory: run the image again with cores of at most `tile` pixels."""

    def __init__(self, tile: int) -> None:
        self.tile = tile


def _run_whole(image, run, scale, padded_h, padded_w, out, clamp) -> None:
    height, width = image.shape[1:]
    rows = _source_rows(0, padded_h, height, padded_h, False)
    cols = _source_rows(0, padded_w, width, padded_w, False)
    result = run(image[:, rows][:, :, cols][None])[0]
    axis = _Axis([(0, padded_h)], padded_h, scale, 0, 0.0, False)
    _Output(out, axis, _Axis([(0, padded_w)], padded_w, scale, 0, 0.0, False), clamp)._write(result, 0, 0)


def _run_grid(image, run, scale, tile, overlap, receptive_radius, wrap, batch, on_progress, unit, padded,
              out, clamp) -> None:
    """One pass over the grid of cores of at most `tile` pixels; raises _Smaller on out-of-memory."""
    height, width = image.shape[1:]
    row_pieces, col_pieces = split(padded[0], tile, unit), split(padded[1], tile, unit)
    smallest = min(length for _, length in row_pieces + col_pieces)
    # The ramp (output pixels) stays within half the smallest core, so a core's two seams never meet.
    half_width = min(blend_half_width(overlap, receptive_radius) * scale, smallest * scale // 2)
    seam = math.ceil(half_width) if half_width > 0 else 0
    axes = [_Axis(pieces, size, scale, seam, half_width, wrap)
            for pieces, size in ((row_pieces, padded[0]), (col_pieces, padded[1]))]
    output = _Output(out, axes[0], axes[1], clamp)
    pending = [Core(t, l, h, w, i, j) for i, (t, h) in enumerate(row_pieces) for j, (l, w) in enumerate(col_pieces)]
    total, done = len(pending), 0

    # Every window has one shape (the largest core plus the overlap on each side, within the image): windows
    # of cores at the image's edge or a pixel smaller are moved or grown inwards, taking more context than needed.
    # So the model sees one input shape per image (one bound plan, one compiled graph).
    span_h = max(length for _, length in row_pieces) + 2 * overlap
    span_w = max(length for _, length in col_pieces) + 2 * overlap
    if not wrap:
        span_h, span_w = min(span_h, padded[0]), min(span_w, padded[1])

    def window(core: Core) -> tuple[int, int, int, int]:
        top, left = core.top - overlap, core.left - overlap
        if not wrap:
            top, left = min(max(0, top), padded[0] - span_h), min(max(0, left), padded[1] - span_w)
        return top, left, top + span_h, left + span_w

    while pending:
        first = window(pending[0])
        shape = (first[2] - first[0], first[3] - first[1])
        group = [pending.pop(0)]
        while pending and len(group) < batch:  # consecutive cores with windows of the same shape
            top, left, bottom, right = window(pending[0])
            if (bottom - top, right - left) != shape:
                break
            group.append(pending.pop(0))
        windows = [window(core) for core in group]
        inputs = torch.stack([_window_pixels(image, window, padded, wrap) for window in windows])
        try:
            outputs = run(inputs)
        except torch.OutOfMemoryError:
            smaller = _halved_tile(group, unit)
            if smaller is None:
                raise OutOfMemory(f"out of device memory even with {MIN_TILE}-pixel tiles and batch "
                                  f"{len(group)}; use --device cpu or free GPU memory") from None
            raise _Smaller(smaller) from None
        for core, (top, left, _, _), result in zip(group, windows, outputs):
            output.add(core, result, top, left)
        done += len(group)
        if on_progress:
            on_progress(done, total)
