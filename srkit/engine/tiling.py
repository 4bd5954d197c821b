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
An output resize (-s, engine/resize.py) turns each window's result into the resized image's pixels before
blending; the grid then maps input boundaries to output positions by the resize's ratio (rounded), and the
overlap grows by the filter's reach so the tiled resize equals the whole image's.
Where the windows run on CUDA and the output is on the host, pieces are written into full-width bands on the
device, one per row of cores (the rows that row finishes); a finished band goes back to the (pinned) host image
in one copy on a side stream while the next tiles run (`Transfer`), and the host waits only before returning.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from .. import kernels as K
from ..defaults import MIN_TILE
from ..errors import SrkitError
from .resize import Resize

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


def _axis(pieces: list[tuple[int, int]], size: int, ratio: tuple[int, int], blend: float, overlap: int,
          wrap: bool) -> _Axis:
    """The axis of these cores, its ramp `blend` input pixels wide each side of a boundary where it fits: within
    half the smallest core's output (so a core's two seams never meet) and within the windows' output past it."""
    probe = _Axis(pieces, size, ratio, 0, 0.0, wrap)
    lengths = [probe.edge(start + length) - probe.edge(start) for start, length in pieces]
    boundaries = [start for start, _ in (pieces if wrap else pieces[1:])]
    context = [min(probe.edge(b) - probe.edge(b - overlap if wrap else max(0, b - overlap)),
                   probe.edge(b + overlap if wrap else min(size, b + overlap)) - probe.edge(b)) for b in boundaries]
    half_width = min([blend * ratio[0] / ratio[1], min(lengths) // 2, *context])
    return _Axis(pieces, size, ratio, math.ceil(half_width) if half_width > 0 else 0, half_width, wrap)


class Transfer(Protocol):
    """How packed output rows made on a device reach the host image: copies that may finish later."""

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> object:
        """Start copying `src` into `dst` after the work queued so far (which writes `src`); returns a token."""

    def done(self, token: object) -> bool:
        """Whether that copy has finished (the host does not wait)."""

    def reuse(self, token: object) -> None:
        """Make the work queued from now on (writes into that copy's source) wait until the copy finished."""

    def finish(self) -> None:
        """Wait until every copy has finished: the only place the host waits."""


class CudaTransfer:
    """Copies on a side stream of a CUDA device, each after the compute stream's work so far (GPU-side waits:
    events, no host synchronisation), into pinned host memory so that they run while the next tiles compute."""

    def __init__(self, device: torch.device) -> None:
        self.compute = torch.cuda.current_stream(device)
        self.side = torch.cuda.Stream(device)

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> torch.cuda.Event:
        self.side.wait_stream(self.compute)
        with torch.cuda.stream(self.side):
            # Asynchronous only into pinned memory and one contiguous block (else torch stages it synchronously).
            dst.copy_(src, non_blocking=dst.is_pinned() and dst.is_contiguous())
        finished = torch.cuda.Event()
        finished.record(self.side)
        return finished

    def done(self, token: torch.cuda.Event) -> bool:
        return token.query()

    def reuse(self, token: torch.cuda.Event) -> None:
        self.compute.wait_event(token)

    def finish(self) -> None:
        self.side.synchronize()


class _Direct:
    """Pieces written straight into the output (it is on the windows' device, or they come back synchronously)."""

    def __init__(self, out: torch.Tensor) -> None:
        self.out = out

    def region(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        return self.out[r0:r1, c0:c1]

    def release(self, band: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bands:
    """Output rows staged on the windows' device, one full-width band per row of cores (rows of the host image are
    contiguous, so a band goes back in one copy); a finished band is copied into `out` by `transfer` while the
    next tiles run, and its buffer is written again only after that copy (at most SPARE copies in flight)."""

    SPARE = 2  # finished bands whose copies may still run before a buffer is reused with a GPU-side wait

    def __init__(self, out: torch.Tensor, starts: list[int], transfer: Transfer, device: torch.device) -> None:
        self.out, self.starts, self.transfer, self.device = out, starts, transfer, device
        rows = out.shape[0]
        self.ends = [min(end, rows) for end in starts[1:] + [rows]]
        self.height = max(end - start for start, end in zip(starts, self.ends))
        self.held: dict[int, torch.Tensor] = {}  # band -> its buffer, being written
        self.free: deque[tuple[torch.Tensor, object]] = deque()  # (buffer, token of the copy out of it), oldest first
        self.allocated = 0

    def region(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        band = bisect.bisect_right(self.starts, r0) - 1
        assert r1 <= self.ends[band], f"rows {r0}..{r1} cross band {band}'s end {self.ends[band]}"
        if band not in self.held:
            self.held[band] = self._take()
        top = self.starts[band]
        return self.held[band][r0 - top:r1 - top, c0:c1]

    def _take(self) -> torch.Tensor:
        """A buffer for a band: a free one whose copy is done (or, with SPARE copies in flight, the oldest after
        its copy), else a new one."""
        if self.free and (len(self.free) >= self.SPARE or self.transfer.done(self.free[0][1])):
            buffer, token = self.free.popleft()
            self.transfer.reuse(token)
            return buffer
        self.allocated += 1
        return torch.empty((self.height, *self.out.shape[1:]), dtype=self.out.dtype, device=self.device)

    def release(self, band: int) -> None:
        """Band `band` is final: copy it into the output."""
        buffer = self.held.pop(band, None)
        if buffer is not None:  # (a band wholly in the padding below the image is never written)
            top, end = self.starts[band], self.ends[band]
            self.free.append((buffer, self.transfer.copy(self.out[top:end], buffer[:end - top])))

    def close(self) -> None:
        self.transfer.finish()


class _Output:
    """The output image and the seams still being blended; finished pieces are packed and written."""

    def __init__(self, out: torch.Tensor, rows: _Axis, cols: _Axis, clamp: tuple[float, float] | None,
                 resize: Resize | None, scale: int, transfer: Transfer | None) -> None:
        self.out, self.rows, self.cols, self.clamp = out, rows, cols, clamp
        self.resize, self.scale, self.transfer = resize, scale, transfer
        self.pending: dict[tuple, list] = {}  # (row key, col key) -> [float sum, contributions so far]
        self.canvas: _Direct | _Bands | None = None

    def add_window(self, core: Core, result: torch.Tensor, window: tuple[int, int, int, int]) -> None:
        """Add the network's (C, h*s, w*s) result for a window (top, left, bottom, right; unwrapped input), resized
        to the output's geometry first when there is a resize."""
        top, left, bottom, right = window
        r0, c0 = self.rows.edge(top), self.cols.edge(left)
        if self.resize is not None:
            result = self.resize.window(result, (r0, self.rows.edge(bottom) - r0, top * self.scale),
                                        (c0, self.cols.edge(right) - c0, left * self.scale))
        self.add(core, result, r0, c0)

    def add(self, core: Core, result: torch.Tensor, origin_row: int, origin_col: int) -> None:
        """Add a core's result in output geometry (C, rows, cols; its first pixel at unwrapped output position
        (origin_row, origin_col))."""
        if self.canvas is None:
            staged = self.transfer is not None or (result.is_cuda and not self.out.is_cuda)
            self.canvas = _Bands(self.out, self.rows.band_starts(), self.transfer or CudaTransfer(result.device),
                                 result.device) if staged else _Direct(self.out)
        for row_key, r0, r1 in self.rows.parts(core.row):
            wy = self.rows.weight(core.row, row_key, r0, r1, result)
            for col_key, c0, c1 in self.cols.parts(core.col):
                wx = self.cols.weight(core.col, col_key, c0, c1, result)
                piece = result[:, r0 - origin_row:r1 - origin_row, c0 - origin_col:c1 - origin_col]
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
        if core.col == len(self.cols.pieces) - 1:
            self._row_added(core.row)

    def _row_added(self, row: int) -> None:
        """Every core of grid row `row` is added: its band is final (in wrap mode row 0's waits for the last row,
        which finishes row 0's top seam)."""
        last = len(self.rows.pieces) - 1
        if not (self.rows.wrap and row == 0 and last > 0):
            self.canvas.release(row)
        if self.rows.wrap and row == last and last > 0:
            self.canvas.release(0)

    def close(self) -> None:
        """Wait for the copies still running (also after an error: their bands are freed next)."""
        if self.canvas is not None:
            self.canvas.close()

    def _write(self, piece: torch.Tensor, top: int, left: int) -> None:
        """Pack a finished (C, h, w) piece and write it at unwrapped output (top, left): wrapped, cropped."""
        out_h, out_w = self.rows.edge(self.rows.size), self.cols.edge(self.cols.size)
        for r0, r1, pr in _wrapped(top, piece.shape[1], out_h):
            if r0 >= self.out.shape[0]:
                continue
            r1 = min(r1, self.out.shape[0])
            for c0, c1, pc in _wrapped(left, piece.shape[2], out_w):
                if c0 >= self.out.shape[1]:
                    continue
                c1 = min(c1, self.out.shape[1])
                block = piece[:, pr:pr + r1 - r0, pc:pc + c1 - c0]
                self.canvas.region(r0, r1, c0, c1).copy_(self._pack(block))

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


def resize_bytes_per_pixel(channels: int, scale: int, out_scale: float) -> float:
    """Bytes per window input pixel of an -s resize's buffers (fp32: the window and its transposed copy, the first
    pass and its transposed copy, the resized window), for a result of `channels` at `scale`, output at
    `out_scale`. (Packing a piece, the other buffer of the tiler's, is left to the memory budget's slack.)"""
    return 4 * channels * (2 * scale ** 2 + 2 * scale * out_scale + out_scale ** 2)


def band_bytes_per_row(out_width: float, channels: int, out_scale: float, element_size: int = 2) -> float:
    """Device bytes per input row of core height of the output bands on CUDA (those being written and those
    whose copies may be running: two of each), for an output `out_width` pixels wide."""
    return (2 + _Bands.SPARE) * out_scale * out_width * channels * element_size


def host_output(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised host image for the tiler to write, for windows run on `device`: in pinned memory on CUDA,
    so the bands' copies back are asynchronous (torch's pinned allocator keeps the block for the next image)."""
    return torch.empty(shape, dtype=dtype, pin_memory=device.type == "cuda")


def upscale_tiled(image: torch.Tensor, run: RunFn, scale: int, tile: int, overlap: int, receptive_radius: int,
                  wrap: bool = False, batch: int = 1, on_progress: Callable[[int, int], None] | None = None,
                  on_smaller_tile: Callable[[int], None] | None = None,
                  out_channels: int | None = None, multiple_of: int = 1, out: torch.Tensor | None = None,
                  clamp: tuple[float, float] | None = None, resize: Resize | None = None,
                  transfer: Transfer | None = None) -> torch.Tensor:
    """Upscale a (C, H, W) image with `run` (a (B, C, h, w) batch of windows in the image's dtype -> (B, C',
    h*s, w*s) floats); returns `out`, the (H*s, W*s, C') output it wrote (float32 allocated here if None).

    `tile` is the core size in input pixels, `overlap` the context added on each side. On out-of-memory the
    grid is made again with tiles half the size and the image run again; `on_smaller_tile(new_size)` is told.
    C' is `out_channels`, by default C (a texture generator maps noise channels to 3). Windows are aligned to
    `multiple_of`. A uint8 / uint16 `out` gets codes (values clamped to [0, 1] and rounded half up); `clamp`
    is applied to every output value. `resize` (its net_size (H*s, W*s)) resizes each window's result to the
    output geometry resize.size before blending; the overlap and radius grow by the filter's reach. Results on
    CUDA for a host `out` come back in bands copied on a side stream (`transfer` sets how, e.g. in tests).
    """
    if tile < 1 or overlap < 0 or batch < 1 or multiple_of < 1:
        raise ValueError(f"tile must be >= 1, overlap >= 0, batch >= 1 and multiple_of >= 1; got {tile}, "
                         f"{overlap}, {batch}, {multiple_of}")
    channels, height, width = image.shape
    if wrap and (height % multiple_of or width % multiple_of):
        raise ValueError(f"wrap mode needs sides divisible by {multiple_of} for this model, got {width}x{height}")
    if resize is not None:
        if tuple(resize.net_size) != (height * scale, width * scale) or resize.periodic != wrap:
            raise ValueError(f"this resize is for a {resize.net_size[1]}x{resize.net_size[0]} network output"
                             f"{' (periodic)' if resize.periodic else ''}, not {width * scale}x{height * scale}"
                             f"{' (periodic)' if wrap else ''}")
        reach = resize.reach(scale)
        overlap, receptive_radius = overlap + reach, receptive_radius + reach
    size = tuple(resize.size) if resize is not None else (height * scale, width * scale)
    if out is None:
        out = torch.empty(*size, out_channels or channels, dtype=torch.float32)
    if tuple(out.shape[:2]) != size:
        raise ValueError(f"out must be {size[0]}x{size[1]} pixels (rows x columns), got {tuple(out.shape[:2])}")
    ratios = [(m, n) if resize is not None else (scale, 1) for m, n in zip(size, (height, width))]
    padded_h, padded_w = height + (-height) % multiple_of, width + (-width) % multiple_of
    overlap += (-overlap) % multiple_of
    if not wrap and padded_h <= tile and padded_w <= tile:  # one window holds the whole image: nothing to blend
        try:
            _run_whole(image, run, scale, (padded_h, padded_w), out, clamp, resize, ratios, transfer)
        except torch.OutOfMemoryError:
            pass  # the tiled path below splits it
        else:
            if on_progress:
                on_progress(1, 1)
            return out
    while True:
        try:
            _run_grid(image, run, scale, tile, overlap, receptive_radius, wrap, batch, on_progress, multiple_of,
                      (padded_h, padded_w), out, clamp, resize, ratios, transfer)
            return out
        except _Smaller as smaller:
            tile = smaller.tile
            if on_smaller_tile:
                on_smaller_tile(tile)


class _Smaller(Exception):
    """Out of memory: run the image again with cores of at most `tile` pixels."""

    def __init__(self, tile: int) -> None:
        self.tile = tile


def _run_whole(image, run, scale, padded, out, clamp, resize, ratios, transfer) -> None:
    """The image as one window (reflected up to the model's size rules)."""
    height, width = image.shape[1:]
    rows = _source_rows(0, padded[0], height, padded[0], False)
    cols = _source_rows(0, padded[1], width, padded[1], False)
    result = run(image[:, rows][:, :, cols][None])[0]
    axes = [_Axis([(0, length)], length, ratio, 0, 0.0, False) for length, ratio in zip(padded, ratios)]
    output = _Output(out, axes[0], axes[1], clamp, resize, scale, transfer)
    try:
        output.add_window(Core(0, 0, *padded), result, (0, 0, *padded))
    finally:
        output.close()


def _run_grid(image, run, scale, tile, overlap, receptive_radius, wrap, batch, on_progress, unit, padded,
              out, clamp, resize, ratios, transfer) -> None:
    """One pass over the grid of cores of at most `tile` pixels; raises _Smaller on out-of-memory."""
    row_pieces, col_pieces = split(padded[0], tile, unit), split(padded[1], tile, unit)
    blend = blend_half_width(overlap, receptive_radius)
    axes = [_axis(pieces, size, ratio, blend, overlap, wrap)
            for pieces, size, ratio in zip((row_pieces, col_pieces), padded, ratios)]
    output = _Output(out, axes[0], axes[1], clamp, resize, scale, transfer)
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

    try:
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
            try:  # the tiler's own buffers (resize passes, bands) may run out of memory too
                outputs = run(inputs)
                for core, bounds, result in zip(group, windows, outputs):
                    output.add_window(core, result, bounds)
            except torch.OutOfMemoryError:
                smaller = _halved_tile(group, unit)
                if smaller is None:
                    raise OutOfMemory(f"out of device memory even with {MIN_TILE}-pixel tiles and batch "
                                      f"{len(group)}; use --device cpu or free GPU memory") from None
                raise _Smaller(smaller) from None
            done += len(group)
            if on_progress:
                on_progress(done, total)
    finally:
        output.close()
