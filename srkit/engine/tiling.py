"""Upscale a large image tile by tile: windows of a grid (geometry.py) run in batches, blended and packed into the
output (transfer.py), the grid made again with smaller tiles when the device runs out of memory.

When the image fits in one window it runs whole (padded to the model's multiple_of). An output resize (-s,
engine/resize.py) grows the overlap and the receptive radius by the filter's reach, so the tiled resize equals the
whole image's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..defaults import MIN_TILE
from ..errors import SrkitError
from .geometry import Geometry, Grid, halved_tile
from .resize import Resize
from .transfer import Output, Transfer

RunFn = Callable[[torch.Tensor], torch.Tensor]


class OutOfMemory(SrkitError):
    """Even the smallest tile does not fit in the device's memory."""


def upscale_tiled(
    image: torch.Tensor,
    run: RunFn,
    geometry: Geometry,
    *,
    batch: int = 1,
    out: torch.Tensor | None = None,
    out_channels: int | None = None,
    clamp: tuple[float, float] | None = None,
    resize: Resize | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_smaller_tile: Callable[[int], None] | None = None,
    transfer: Transfer | None = None,
) -> torch.Tensor:
    """Upscale a (C, H, W) image with `run` (a (B, C, h, w) batch of windows in the image's dtype -> (B, C',
    h*s, w*s) floats, s = geometry.scale) cut as `geometry` says, `batch` windows at a time; returns `out`, the
    (H*s, W*s, C') output it wrote (float32 allocated here if None).

    On out-of-memory the grid is made again with tiles half the size and the image run again;
    `on_smaller_tile(new_size)` is told. C' is `out_channels`, by default C (a texture generator maps noise
    channels to 3). A uint8 / uint16 `out` gets codes (values clamped to [0, 1] and rounded half up); `clamp` is
    applied to every output value. `resize` (its net_size (H*s, W*s)) resizes each window's result to the output
    geometry resize.size before blending. Results on CUDA for a host `out` come back in bands copied on a side
    stream (`transfer` sets how, e.g. in tests).
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    channels, height, width = image.shape
    scale = geometry.scale
    geometry.padded(height, width)  # refuses a wrapped image that is not in whole units
    if resize is not None:
        if tuple(resize.net_size) != (height * scale, width * scale) or resize.periodic != geometry.wrap:
            raise ValueError(
                f"this resize is for a {resize.net_size[1]}x{resize.net_size[0]} network output"
                f"{' (periodic)' if resize.periodic else ''}, not {width * scale}x{height * scale}"
                f"{' (periodic)' if geometry.wrap else ''}"
            )
        geometry = geometry.with_reach(resize.reach(scale))
    size = tuple(resize.size) if resize is not None else (height * scale, width * scale)
    if out is None:
        out = torch.empty(*size, out_channels or channels, dtype=torch.float32)
    if tuple(out.shape[:2]) != size:
        raise ValueError(f"out must be {size[0]}x{size[1]} pixels (rows x columns), got {tuple(out.shape[:2])}")
    ratios = [(m, n) if resize is not None else (scale, 1) for m, n in zip(size, (height, width))]
    if geometry.fits_one_window(height, width):
        try:
            _run(image, run, geometry.whole(height, width, ratios), 1, out, clamp, resize, scale, transfer, None)
        except torch.OutOfMemoryError:
            pass  # the tiled path below splits it
        else:
            if on_progress:
                on_progress(1, 1)
            return out
    while True:
        try:
            _run(
                image,
                run,
                geometry.grid(height, width, ratios),
                batch,
                out,
                clamp,
                resize,
                scale,
                transfer,
                on_progress,
                geometry.unit,
            )
            return out
        except _Smaller as smaller:
            geometry = geometry.with_tile(smaller.tile)
            if on_smaller_tile:
                on_smaller_tile(smaller.tile)


class _Smaller(Exception):
    """Out of memory: run the image again with cores of at most `tile` pixels."""

    def __init__(self, tile: int) -> None:
        self.tile = tile


def _run(
    image: torch.Tensor,
    run: RunFn,
    grid: Grid,
    batch: int,
    out: torch.Tensor,
    clamp: tuple[float, float] | None,
    resize: Resize | None,
    scale: int,
    transfer: Transfer | None,
    on_progress: Callable[[int, int], None] | None,
    retry_unit: int | None = None,
) -> None:
    """One pass over the grid's cores, `batch` windows (all of one shape) at a time. With `retry_unit` (the
    units cores are cut in) out-of-memory raises _Smaller, else torch's error goes up (a whole image: tile it)."""
    output = Output(out, grid.rows, grid.cols, clamp, resize, scale, transfer)
    pending = list(grid.cores)
    total, done = len(pending), 0
    try:
        while pending:
            group, pending = pending[:batch], pending[batch:]
            windows = [grid.window(core) for core in group]
            inputs = torch.stack([grid.pixels(image, window) for window in windows])
            try:  # the tiler's own buffers (resize passes, bands) may run out of memory too
                outputs = run(inputs)
                for core, bounds, result in zip(group, windows, outputs):
                    output.add_window(core, result, bounds)
            except torch.OutOfMemoryError:
                if retry_unit is None:
                    raise
                smaller = halved_tile(group, retry_unit)
                if smaller is None:
                    raise OutOfMemory(
                        f"out of device memory even with {MIN_TILE}-pixel tiles and batch "
                        f"{len(group)}; use --device cpu or free GPU memory"
                    ) from None
                raise _Smaller(smaller) from None
            done += len(group)
            if on_progress:
                on_progress(done, total)
    finally:
        output.close()
