"""Resizing an upscaled image to another scale than the model's (-s), window by window on the windows' device.

The filters are OpenCV's, as separable taps (output pixel o of an axis is the sum over k of weight[o, k] *
input[index[o, k]]): `area` to shrink (INTER_AREA: each output pixel the mean of the input interval it covers,
partial pixels by their covered fraction) and `lanczos4` to enlarge (INTER_LANCZOS4: 8 taps of sinc(x) sinc(x/4)
around the half-pixel centre (o + 0.5) * in / out - 0.5, normalised to sum to one). Past the image's edges the
edge pixel repeats (OpenCV's border), or the image wraps around when it is periodic (seamless textures).
Taps are made in whole-image coordinates, so a window of the network output resized alone gives the whole
image's pixels wherever the filter's support lies inside the window (the tiler takes only those), and the
full-size float image never exists. Sums run in fp32 whatever the windows' dtype, each axis one product of a sparse
(CSR) matrix of the taps with the window (MKL / cuSPARSE): 3-5x faster on the CPU than dense products over the band.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

FILTERS = ("area", "lanczos4")
LANCZOS_HALF = 4  # Lanczos-4: taps floor(c) - 3 .. floor(c) + 4 around the centre c


def filter_for(in_size: int, out_size: int) -> str:
    """The filter OpenCV's users pick for this change of size: area to shrink, Lanczos-4 otherwise."""
    return "area" if out_size < in_size else "lanczos4"


def taps(
    method: str, in_size: int, out_size: int, first: int, count: int, periodic: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(index, weight), both (count, K): the input positions and float64 weights (summing to one) of output
    positions first .. first + count - 1 of an axis resized from `in_size` to `out_size` pixels. Positions past
    the image are clamped to its edge, or left unwrapped (outside 0 .. in_size - 1) when `periodic`."""
    if method not in FILTERS:
        raise ValueError(f"resize filter must be one of {', '.join(FILTERS)}, got {method!r}")
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resize sizes must be >= 1, got {in_size} -> {out_size}")
    ratio = in_size / out_size
    position = torch.arange(first, first + count, dtype=torch.float64)
    if method == "area":
        start = position * in_size / out_size  # the input interval [start, start + ratio) of each output pixel
        index = torch.floor(start).long()[:, None] + torch.arange(math.ceil(ratio) + 1)
        covered = torch.minimum(index + 1.0, start[:, None] + ratio) - torch.maximum(index.double(), start[:, None])
        weight = covered.clamp(min=0.0) / ratio
    else:
        centre = (position + 0.5) * ratio - 0.5
        base = torch.floor(centre)
        offsets = torch.arange(1 - LANCZOS_HALF, LANCZOS_HALF + 1)
        index = base.long()[:, None] + offsets
        distance = (centre - base)[:, None] - offsets  # from each tap to the centre
        weight = torch.sinc(distance) * torch.sinc(distance / LANCZOS_HALF)
        weight = weight / weight.sum(dim=1, keepdim=True)
    if not periodic:
        index = index.clamp(0, in_size - 1)
    return index, weight


def support(method: str, in_size: int, out_size: int) -> float:
    """How far (input pixels of the resize) an output pixel's taps reach from its centre."""
    return in_size / out_size / 2 + 1 if method == "area" else float(LANCZOS_HALF)


@dataclass
class Resize:
    """Resizing the network output of an image (`net_size` = (height, width) pixels) to `size`, one window at a
    time; `method` "" picks it from the width (area to shrink, else Lanczos-4), as OpenCV's users do."""

    net_size: tuple[int, int]
    size: tuple[int, int]
    method: str = ""
    periodic: bool = False
    _matrices: dict = field(default_factory=dict, repr=False)  # (axis, first, count, start, length, device) -> CSR

    def __post_init__(self) -> None:
        if min(self.size) < 1:
            raise ValueError(f"resize target must be at least 1x1, got {self.size[1]}x{self.size[0]}")
        self.method = self.method or filter_for(self.net_size[1], self.size[1])

    def reach(self, scale: int) -> int:
        """Input pixels of the network beyond which the taps of an output pixel never reach (at `scale` network
        pixels per input pixel; one more for where the tiler's boundaries round to)."""
        return max(math.ceil(support(self.method, n, m) / scale) for n, m in zip(self.net_size, self.size)) + 1

    def window(self, y: torch.Tensor, rows: tuple[int, int, int], cols: tuple[int, int, int]) -> torch.Tensor:
        """The (C, count_r, count_c) fp32 pixels of the resized image from a (C, h, w) window of the network
        output; rows and cols are (first output position, count, the window's first network position)."""
        pixels = y.permute(1, 2, 0).float()  # HWC: the network's channels_last output needs no copy
        across = _apply(pixels.transpose(0, 1), self._matrix(1, *cols, pixels.shape[1], y.device), cols[1])
        down = _apply(across.transpose(0, 1), self._matrix(0, *rows, pixels.shape[0], y.device), rows[1])
        return down.permute(2, 0, 1)

    def _matrix(self, axis: int, first: int, count: int, start: int, length: int, device: torch.device) -> torch.Tensor:
        """One axis's taps as a sparse (count, length) CSR matrix on `device` over the window's positions (start ..
        start + length - 1 in the whole image); positions are clamped to the window where it lacks context
        (which the tiler does not use), and a periodic window of a whole period or more holds every position."""
        key = (axis, first, count, start, length, device)
        if key not in self._matrices:
            size = self.net_size[axis]
            index, weight = taps(self.method, size, self.size[axis], first, count, self.periodic)
            index = (index - start) % size if self.periodic and length >= size else (index - start).clamp(0, length - 1)
            rows = torch.arange(count)[:, None].expand_as(index)
            keep = weight != 0
            matrix = torch.sparse_coo_tensor(
                torch.stack([rows[keep], index[keep]]), weight[keep].float(), (count, length), check_invariants=True
            ).coalesce()  # sums clamped taps
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self._matrices[key] = matrix.to_sparse_csr().to(device)
        return self._matrices[key]


def _apply(pixels: torch.Tensor, matrix: torch.Tensor, count: int) -> torch.Tensor:
    """The resize of the first axis of (n, m, C) fp32 pixels to `count` outputs: one sparse-dense product."""
    return (matrix @ pixels.contiguous().view(pixels.shape[0], -1)).view(count, *pixels.shape[1:])
