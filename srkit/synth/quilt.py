"""Tileable image quilting (Efros & Freeman 2001): a seamless texture of any size made of an exemplar's own patches.

The output is a torus cut into a grid of blocks (block i along an axis starts at round(i * size / n), so the
blocks close around the wrap exactly for any size). Blocks are placed in raster order; each is the exemplar
patch whose pixels best match what is already on the canvas under the block's overlaps (sum of squared
differences over the overlap mask, for every patch at once by FFT correlation; for an exemplar of more than
SEARCH_WINDOW positions a side, every patch of a random window of it), drawn at random among those within
TOLERANCE of the best. The patch replaces the canvas inside the minimum-error boundary cuts (dynamic
programming) of each overlapping side: left and top, plus right and bottom where the last column and row meet
the first again, so the texture has no seam at its wrap border either. Output pixels are exemplar pixels,
copied; the same exemplar, size and seed give the same bytes. The torus is finally rolled so that its border
runs through the middle of the first block, inside patches rather than along a cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

TOLERANCE = 0.1  # candidates within 10% of the best overlap error are drawn from (Efros & Freeman's choice)
PATCH_FRACTION = 4  # default patch side: a quarter of the exemplar's shorter side, within PATCH_RANGE
PATCH_RANGE = (16, 64)
OVERLAP_FRACTION = 4  # overlap: a quarter of the patch side
MIN_EXEMPLAR = 32  # pixels on the exemplar's shorter side
MIN_SIZE = 8  # pixels on the output's shorter side
MIN_PATCH = 8
SEARCH_WINDOW = 512  # patch positions a side searched for one block; a larger exemplar (a phone photo) is searched
# in a random window per block, so a block costs the same whatever the exemplar's size


class QuiltError(ValueError):
    """An exemplar or size that quilting cannot use (the caller names the file or option)."""


@dataclass(frozen=True)
class Blocks:
    """Where the blocks of one axis start on a torus of `size` pixels, and their common side (`patch`)."""

    size: int
    starts: tuple[int, ...]
    patch: int

    @classmethod
    def along(cls, size: int, patch: int, overlap: int) -> Blocks:
        """Blocks of about `patch` - `overlap` steps around `size` pixels (at least two, so each side overlaps
        another block), the overlap cut down where steps are short."""
        count = max(2, round(size / (patch - overlap)))
        starts = tuple(round(i * size / count) for i in range(count))
        shortest = int(np.diff(starts + (size,)).min())
        overlap = max(1, min(overlap, shortest - 1))
        return cls(size, starts, -(-size // count) + overlap)

    def overlaps(self, index: int) -> tuple[int, int]:
        """(before, after): pixels block `index` shares with the block before it and, for the last block, with
        block 0 around the wrap (0 elsewhere: the next block is not placed yet)."""
        before = self.starts[index - 1] + self.patch - self.starts[index] if index else 0
        last = index == len(self.starts) - 1
        after = self.starts[index] + self.patch - self.size if last else 0
        return before, max(0, after)

    @property
    def middle(self) -> int:
        """The middle of block 0 between its overlaps: where the texture's border is put, away from every cut."""
        return (self.overlaps(len(self.starts) - 1)[1] + self.starts[1]) // 2

    def indices(self, index: int) -> np.ndarray:
        """The canvas rows (or columns) block `index` covers, wrapping around."""
        return (self.starts[index] + np.arange(self.patch)) % self.size


def default_patch(exemplar_shape: tuple[int, ...]) -> int:
    """The patch side used when none is given: a quarter of the exemplar's shorter side, within PATCH_RANGE."""
    return int(np.clip(min(exemplar_shape[:2]) // PATCH_FRACTION, *PATCH_RANGE))


def check_exemplar(exemplar: np.ndarray) -> None:
    """Refuse an exemplar quilting cannot sample: not (H, W, 3) uint8, or shorter than MIN_EXEMPLAR."""
    if exemplar.dtype != np.uint8 or exemplar.ndim != 3 or exemplar.shape[2] != 3:
        raise QuiltError(f"the exemplar must be (H, W, 3) uint8, not {exemplar.shape} {exemplar.dtype}")
    if min(exemplar.shape[:2]) < MIN_EXEMPLAR:
        height, width = exemplar.shape[:2]
        raise QuiltError(
            f"{width}x{height} is too small to quilt from; use an exemplar of at least "
            f"{MIN_EXEMPLAR}x{MIN_EXEMPLAR} pixels"
        )


class _Matcher:
    """Overlap errors of every patch position of an exemplar against a masked template, by FFT correlation
    (torch's FFT: several times faster than numpy's on the CPU)."""

    def __init__(self, exemplar: np.ndarray, patch: tuple[int, int], tileable: bool) -> None:
        self.exemplar = exemplar
        self.shape = exemplar.shape[:2]
        self.patch = patch
        height, width = self.shape
        # positions whose patch lies inside the exemplar (all of them when it tiles: patches wrap around it)
        self.valid = (height if tileable else height - patch[0] + 1, width if tileable else width - patch[1] + 1)

    @cached_property
    def spectra(self) -> torch.Tensor:
        """Spectra of the exemplar's squared norm and its channels (made on the first search: a large exemplar is
        only ever searched in windows)."""
        pixels = torch.tensor(self.exemplar).permute(2, 0, 1).float() / 255.0
        spectra = torch.fft.rfft2(torch.cat([pixels.square().sum(0, keepdim=True), pixels]))
        spectra[1:] *= -2.0  # sum M E^2 - 2 sum M T E: the error up to the template's own sum M T^2
        return spectra

    def errors(self, template: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sum over the mask of (patch - template)^2 for every valid patch position."""
        stack = torch.zeros((4,) + self.shape)
        masked = template * mask[..., None]
        stack[0, : self.patch[0], : self.patch[1]] = torch.from_numpy(mask)
        stack[1:, : self.patch[0], : self.patch[1]] = torch.from_numpy(masked).permute(2, 0, 1)
        combined = (torch.fft.rfft2(stack).conj() * self.spectra).sum(0)
        errors = torch.fft.irfft2(combined, s=self.shape)[: self.valid[0], : self.valid[1]].numpy()
        return errors + float((masked * template).sum())

    def patch_at(self, row: int, col: int) -> np.ndarray:
        """The (P, Q, 3) uint8 patch at (row, col), wrapping around a tileable exemplar."""
        rows = (row + np.arange(self.patch[0])) % self.shape[0]
        cols = (col + np.arange(self.patch[1])) % self.shape[1]
        return self.exemplar[np.ix_(rows, cols)]

    def window(self, rng: np.random.Generator) -> _Matcher:
        """The matcher of one block: this one, or for an exemplar of more than SEARCH_WINDOW positions along an
        axis, one of a random window of SEARCH_WINDOW positions there (wrapping around a tileable exemplar)."""
        if max(self.valid) <= SEARCH_WINDOW:
            return self
        indices = []
        for side, valid, patch in zip(self.shape, self.valid, self.patch):
            positions = min(valid, SEARCH_WINDOW)
            start = int(rng.integers(valid - positions + 1)) if positions < valid else 0
            indices.append((start + np.arange(positions + patch - 1)) % side)
        return _Matcher(self.exemplar[np.ix_(*indices)], self.patch, tileable=False)


def _cut(errors: np.ndarray) -> np.ndarray:
    """The minimum-error vertical path through an (rows, width) error strip: one column per row, neighbours
    at most one column apart (dynamic programming, then a trace back)."""
    rows, width = errors.shape
    cost = errors.astype(np.float64).copy()
    padded = np.empty(width + 2)
    for row in range(1, rows):
        padded[0] = padded[-1] = np.inf
        padded[1:-1] = cost[row - 1]
        cost[row] += np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    path = np.empty(rows, np.int64)
    path[-1] = int(np.argmin(cost[-1]))
    for row in range(rows - 2, -1, -1):
        low, high = max(0, path[row + 1] - 1), min(width, path[row + 1] + 2)
        path[row] = low + int(np.argmin(cost[row, low:high]))
    return path


def _new_pixels(difference: np.ndarray, overlaps: tuple[int, int, int, int]) -> np.ndarray:
    """Which pixels of a (P, Q) block take the new patch: those on its side of every overlap's boundary cut.

    `difference` is the per-pixel squared difference between canvas and patch; `overlaps` are the widths of
    the (top, bottom, left, right) strips already on the canvas."""
    top, bottom, left, right = overlaps
    height, width = difference.shape
    keep = np.ones((height, width), bool)
    rows, columns = np.arange(height)[:, None], np.arange(width)[None, :]
    if left:
        keep &= columns >= _cut(difference[:, :left])[:, None]
    if right:
        keep &= columns <= (width - right + _cut(difference[:, width - right :]))[:, None]
    if top:
        keep &= rows >= _cut(difference[:top, :].T)[None, :]
    if bottom:
        keep &= rows <= (height - bottom + _cut(difference[height - bottom :, :].T))[None, :]
    return keep


def plan_blocks(
    height: int, width: int, patch: int, exemplar_shape: tuple[int, ...], tileable: bool
) -> tuple[Blocks, Blocks]:
    """The row and column blocks of a height x width texture of about `patch`-pixel patches; QuiltError where
    quilting cannot make it (a side under MIN_SIZE, patches under MIN_PATCH, or blocks larger than an exemplar
    that does not tile), so a caller can refuse a size before it quilts anything."""
    if min(height, width) < MIN_SIZE:
        raise QuiltError(f"{width}x{height}: quilted textures are at least {MIN_SIZE} pixels on a side")
    if patch < MIN_PATCH:
        raise QuiltError(f"patch {patch}: use patches of at least {MIN_PATCH} pixels")
    overlap = max(1, patch // OVERLAP_FRACTION)
    rows, cols = Blocks.along(height, patch, overlap), Blocks.along(width, patch, overlap)
    if not tileable and (exemplar_shape[0] < rows.patch or exemplar_shape[1] < cols.patch):
        raise QuiltError(
            f"{width}x{height} needs {cols.patch}x{rows.patch}-pixel patches, more than the "
            f"exemplar's {exemplar_shape[1]}x{exemplar_shape[0]}; use a larger exemplar or smaller patches"
        )
    return rows, cols


def quilt(
    exemplar: np.ndarray, height: int, width: int, seed: int, *, patch: int | None = None, tileable: bool = False
) -> np.ndarray:
    """A seamless (height, width, 3) uint8 texture quilted from `exemplar` ((H, W, 3) uint8); the same
    arguments give the same bytes. `tileable`: the exemplar itself tiles, so patches may wrap around it."""
    check_exemplar(exemplar)
    rows, cols = plan_blocks(height, width, patch or default_patch(exemplar.shape), exemplar.shape, tileable)
    if tileable:  # repeat a pattern smaller than the blocks: patches still wrap around its period
        exemplar = np.tile(exemplar, (-(-rows.patch // exemplar.shape[0]), -(-cols.patch // exemplar.shape[1]), 1))
    matcher = _Matcher(exemplar, (rows.patch, cols.patch), tileable)
    rng = np.random.default_rng(seed)
    canvas = np.zeros((height, width, 3), np.uint8)
    for i in range(len(rows.starts)):
        for j in range(len(cols.starts)):
            top, bottom, left, right = overlaps = rows.overlaps(i) + cols.overlaps(j)
            block = np.ix_(rows.indices(i), cols.indices(j))
            mask = np.zeros(matcher.patch, np.float32)
            mask[:top] = mask[rows.patch - bottom :] = 1.0
            mask[:, :left] = mask[:, cols.patch - right :] = 1.0
            if not any(overlaps):  # the first block: any patch
                row, col = (int(rng.integers(n)) for n in matcher.valid)
                canvas[block] = matcher.patch_at(row, col)
                continue
            template = canvas[block].astype(np.float32) / 255.0
            searched = matcher.window(rng)
            errors = searched.errors(template, mask)
            best = max(float(errors.min()), 0.0)
            positions = np.flatnonzero(errors <= best * (1.0 + TOLERANCE) + 1e-4 * mask.sum())
            row, col = divmod(int(positions[rng.integers(len(positions))]), searched.valid[1])
            candidate = searched.patch_at(row, col)
            difference = ((template - candidate.astype(np.float32) / 255.0) ** 2).sum(2)
            canvas[block] = np.where(_new_pixels(difference, overlaps)[..., None], candidate, canvas[block])
    return np.roll(canvas, (-rows.middle, -cols.middle), (0, 1))  # the border inside patches, not on a cut
