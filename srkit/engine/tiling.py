"""Upscale a large image tile by tile: overlapping windows, batched runs, smooth blending, output on the CPU.

The image is cut into cores of at most `tile` pixels. Each core is run with `overlap` pixels of context
on every side (taken periodically in wrap mode, so textures stay seamless). Neighbouring results are
blended with a raised-cosine window centred on the core boundary; the window is exactly zero within the
model's receptive radius of a window edge, where the missing context corrupts the result. So when
overlap >= receptive radius the tiled result equals the whole-image result, and beyond that the blend
hides any remaining difference. Only windows go to the device; the full-size output stays on the CPU.
A model that needs sides divisible by `multiple_of` (pixel-unshuffling RRDB) gets an image reflected up to
such a size, cores and overlaps in whole units of it, so every window is aligned and the tiled result still
equals the whole-image one; the output is cropped back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import SrkitError

MIN_TILE = 32  # below this, tiles are mostly overlap: out-of-memory at this size is reported, not retried

RunFn = Callable[[torch.Tensor], torch.Tensor]


class OutOfMemory(SrkitError):
    """Even the smallest tile does not fit in the device's memory."""


@dataclass(frozen=True)
class Core:
    """A rectangle of the input (top, left, height, width) whose upscaled pixels a window is mainly for."""

    top: int
    left: int
    height: int
    width: int

    def quarters(self, unit: int = 1) -> list["Core"]:
        """The core split in two (at a multiple of `unit`) along each side longer than MIN_TILE (for
        out-of-memory retries)."""
        rows = _halves(self.top, self.height, unit)
        cols = _halves(self.left, self.width, unit)
        return [Core(t, l, h, w) for t, h in rows for l, w in cols]


def _halves(start: int, length: int, unit: int) -> list[tuple[int, int]]:
    if length < 2 * MIN_TILE:
        return [(start, length)]
    half = length // 2 // unit * unit
    return [(start, half), (start + half, length - half)]


def split(size: int, tile: int, unit: int = 1) -> list[tuple[int, int]]:
    """(start, length) of near-equal pieces of at most `tile` (whole `unit`s: size is a multiple) covering
    range(size)."""
    units, per_tile = size // unit, max(1, tile // unit)
    count = max(1, math.ceil(units / per_tile))
    bounds = [round(i * units / count) * unit for i in range(count + 1)]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]


def _window(start: int, length: int, overlap: int, size: int, wrap: bool) -> torch.Tensor:
    """Unwrapped input positions of a core's window along one axis (may leave [0, size) in wrap mode)."""
    if wrap:
        return torch.arange(start - overlap, start + length + overlap)
    return torch.arange(max(0, start - overlap), min(size, start + length + overlap))


def _axis_weight(positions: torch.Tensor, start: int, length: int, scale: int, half_width: float) -> torch.Tensor:
    """Blend weight of output pixels (unwrapped input positions x scale) for a core [start, start+length)."""
    out = (positions[0] * scale + torch.arange(len(positions) * scale)).double() + 0.5
    inside = torch.minimum(out - start * scale, (start + length) * scale - out)  # signed distance to the core edge
    if half_width <= 0:
        return (inside > 0).double()
    t = (inside / (half_width * scale)).clamp(-1.0, 1.0)
    return 0.5 + 0.5 * torch.sin(t * (math.pi / 2))


def blend_half_width(overlap: int, receptive_radius: int) -> float:
    """Half-width (input pixels) of the blend around a core edge, leaving the corrupted border out."""
    guard = receptive_radius if receptive_radius <= overlap else overlap / 2
    return overlap - guard


def upscale_tiled(image: torch.Tensor, run: RunFn, scale: int, tile: int, overlap: int, receptive_radius: int,
                  wrap: bool = False, batch: int = 1, on_progress: Callable[[int, int], None] | None = None,
                  on_smaller_tile: Callable[[int], None] | None = None,
                  out_channels: int | None = None, multiple_of: int = 1) -> torch.Tensor:
    """Upscale a (C, H, W) float image with `run` (a (B, C, h, w) batch -> (B, C', h*s, w*s)); returns (H*s, W*s, C').

    `tile` is the core size in input pixels, `overlap` the context added on each side. On out-of-memory a
    core is split into quarters and retried; `on_smaller_tile(new_size)` is told once. C' is `out_channels`,
    by default C (a texture generator maps noise channels to 3). Windows are aligned to `multiple_of`.
    """
    if tile < 1 or overlap < 0 or batch < 1 or multiple_of < 1:
        raise ValueError(f"tile must be >= 1, overlap >= 0, batch >= 1 and multiple_of >= 1; got {tile}, "
                         f"{overlap}, {batch}, {multiple_of}")
    size_in = image.shape[1:]
    image = _pad_to_multiple(image, multiple_of, wrap)
    channels, height, width = image.shape
    overlap += (-overlap) % multiple_of
    if not wrap and height <= tile and width <= tile:  # one window holds the whole image: nothing to blend
        try:
            whole = run(image[None])[0].float().cpu().permute(1, 2, 0)
        except torch.OutOfMemoryError:
            pass  # the tiled path below splits it
        else:
            if on_progress:
                on_progress(1, 1)
            return whole[:size_in[0] * scale, :size_in[1] * scale]
    half_width = blend_half_width(overlap, receptive_radius)
    acc = torch.zeros(height * scale, width * scale, out_channels or channels, dtype=torch.float32)
    weight_sum = torch.zeros(height * scale, width * scale, 1, dtype=torch.float64)
    pending = [Core(t, l, h, w) for t, h in split(height, tile, multiple_of)
               for l, w in split(width, tile, multiple_of)]
    total, done, told = len(pending), 0, False
    while pending:
        group = _same_shape_group(pending, batch, overlap, height, width, wrap)
        windows = [_window_indices(core, overlap, height, width, wrap) for core in group]
        inputs = torch.stack([image[:, rows % height][:, :, cols % width] for rows, cols in windows])
        try:
            outputs = run(inputs)
        except torch.OutOfMemoryError:
            smaller = [part for core in group for part in core.quarters(multiple_of)]
            if len(smaller) == len(group):
                raise OutOfMemory(f"out of device memory even with {MIN_TILE}-pixel tiles and batch "
                                  f"{len(group)}; use --device cpu or free GPU memory") from None
            if on_smaller_tile and not told:
                on_smaller_tile(max(max(c.height, c.width) for c in smaller))
                told = True
            total += len(smaller) - len(group)
            pending = smaller + pending
            continue
        outputs = outputs.float().cpu()
        for core, (rows, cols), result in zip(group, windows, outputs):
            _accumulate(acc, weight_sum, result, rows, cols, core, scale, half_width, height, width)
        done += len(group)
        if on_progress:
            on_progress(done, total)
    return (acc / weight_sum).to(torch.float32)[:size_in[0] * scale, :size_in[1] * scale]


def _pad_to_multiple(image: torch.Tensor, multiple: int, wrap: bool) -> torch.Tensor:
    """(C, H, W) reflected at the bottom and right up to multiples of `multiple` (replicated if tiny)."""
    pad_h, pad_w = (-image.shape[1]) % multiple, (-image.shape[2]) % multiple
    if not pad_h and not pad_w:
        return image
    if wrap:
        raise ValueError(f"wrap mode needs sides divisible by {multiple} for this model, got "
                         f"{image.shape[2]}x{image.shape[1]}")
    mode = "reflect" if pad_h < image.shape[1] and pad_w < image.shape[2] else "replicate"
    return F.pad(image[None], (0, pad_w, 0, pad_h), mode=mode)[0]


def _window_indices(core: Core, overlap: int, height: int, width: int, wrap: bool) -> tuple[torch.Tensor, ...]:
    return (_window(core.top, core.height, overlap, height, wrap),
            _window(core.left, core.width, overlap, width, wrap))


def _same_shape_group(pending: list[Core], batch: int, overlap: int, height: int, width: int,
                      wrap: bool) -> list[Core]:
    """Take up to `batch` cores from the front of `pending` whose windows have the first one's shape."""
    def shape(core: Core) -> tuple[int, int]:
        rows, cols = _window_indices(core, overlap, height, width, wrap)
        return len(rows), len(cols)

    first = shape(pending[0])
    group = [core for core in pending if shape(core) == first][:batch]
    for core in group:
        pending.remove(core)
    return group


def _accumulate(acc, weight_sum, result, rows, cols, core, scale, half_width, height, width) -> None:
    """Add a window's weighted result into the full-size accumulators (indices wrap in wrap mode)."""
    wy = _axis_weight(rows, core.top, core.height, scale, half_width)
    wx = _axis_weight(cols, core.left, core.width, scale, half_width)
    weight = (wy[:, None] * wx[None, :])[..., None]
    values = result.permute(1, 2, 0) * weight.float()
    out_rows = (rows[0] * scale + torch.arange(len(rows) * scale)) % (height * scale)
    out_cols = (cols[0] * scale + torch.arange(len(cols) * scale)) % (width * scale)
    if int(rows[0]) >= 0 and int(cols[0]) >= 0 and int(rows[-1]) < height and int(cols[-1]) < width:
        r0, c0 = int(out_rows[0]), int(out_cols[0])
        acc[r0:r0 + len(out_rows), c0:c0 + len(out_cols)] += values
        weight_sum[r0:r0 + len(out_rows), c0:c0 + len(out_cols)] += weight
    else:  # the window wraps around: scatter with accumulation (a pixel may appear twice in one window)
        index = (out_rows[:, None], out_cols[None, :])
        acc.index_put_(index, values, accumulate=True)
        weight_sum.index_put_(index, weight, accumulate=True)
