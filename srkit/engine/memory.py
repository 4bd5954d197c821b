"""Byte estimates of a tiled run and the tile size they allow in the memory free on the device (`tile="auto"`)."""

from __future__ import annotations

import os

import torch

from ..defaults import MIN_TILE
from .transfer import SPARE_BANDS

SAFETY = 0.6  # share of the free memory a batch of windows may use; the rest covers allocator slack
MAX_TILE = 1024  # beyond this, larger tiles no longer speed anything up but delay the first progress update
CPU_BUDGET_BYTES = 2 << 30  # on the CPU, peak activations are kept to 2 GiB whatever the free RAM


def free_bytes(device: torch.device) -> int:
    """Bytes free for activations on `device` (CUDA: driver's free memory plus torch's cached blocks)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = CPU_BUDGET_BYTES
    return min(available, CPU_BUDGET_BYTES)


def auto_tile(
    bytes_per_pixel: float,
    overlap: int,
    batch: int,
    device: torch.device,
    available: int | None = None,
    bytes_per_row: float = 0.0,
) -> int:
    """Largest core size (multiple of 8, MIN_TILE..MAX_TILE) whose windows, `batch` at a time, fit in memory
    beside `bytes_per_row` per input row of core height (buffers as wide as the image: the output bands)."""
    budget = SAFETY * (free_bytes(device) if available is None else available)
    per_pixel = max(bytes_per_pixel, 1.0) * max(1, batch)
    for side in range(MAX_TILE, MIN_TILE, -8):
        if per_pixel * (side + 2 * overlap) ** 2 + bytes_per_row * side <= budget:
            return side
    return MIN_TILE


def resize_bytes_per_pixel(channels: int, scale: int, out_scale: float) -> float:
    """Bytes per window input pixel of an -s resize's buffers (fp32: the window and its transposed copy, the first
    pass and its transposed copy, the resized window), for a result of `channels` at `scale`, output at
    `out_scale`. (Packing a piece, the other buffer of the tiler's, is left to the memory budget's slack.)"""
    return 4 * channels * (2 * scale**2 + 2 * scale * out_scale + out_scale**2)


def band_bytes_per_row(out_width: float, channels: int, out_scale: float, element_size: int = 2) -> float:
    """Device bytes per input row of core height of the output bands on CUDA (those being written and those
    whose copies may be running: two of each), for an output `out_width` pixels wide."""
    return (2 + SPARE_BANDS) * out_scale * out_width * channels * element_size
