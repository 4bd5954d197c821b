"""Exemplar textures for GAN training: files and folders of images or GIMP patterns, sampled as random crops.

GIMP patterns (.pat) are made to tile, so their crops may cross the edges (wrapping around); other images are
cropped inside their borders and must be at least as large as the crop. Crops keep their orientation unless
flips are asked for. `dominant_waves` finds the strongest periodicities of the crops, for generators with waves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import SrkitError
from ..io.formats import IMAGE_EXTENSIONS
from ..io.images import codes_8bit, read_picture
from ..io.patterns import read_pattern
from ..models.dcgan import WAVE_SPACING
from ..synth.measures import LUMA
from .data import find_files, rgb_float

PATTERN_EXTENSION = ".pat"


@dataclass
class Exemplar:
    """One exemplar image: (3, H, W) float32 in [0, 1], and whether it tiles (may be cropped across edges)."""

    source: Path
    pixels: torch.Tensor
    tileable: bool


def exemplar_files(data: Sequence[str | os.PathLike]) -> list[Path]:
    """Image and .pat files named by `data` (files, or folders searched recursively), in a stable order."""
    return find_files(list(data), IMAGE_EXTENSIONS | {PATTERN_EXTENSION}, "images or .pat patterns")


def _decoded(path: Path, max_pixels: int) -> tuple[np.ndarray, bool]:
    """The exemplar's pixels as stored (uint8 or uint16, 1-4 channels) and whether it tiles: a .pat pattern
    does, any other image srkit reads is not assumed to (and is refused over `max_pixels`, from its header: a
    .pat is uncompressed, its file as large as its pixels)."""
    tileable = path.suffix.lower() == PATTERN_EXTENSION
    return (read_pattern(path).pixels if tileable else read_picture(path, max_pixels).pixels), tileable


def read_exemplar(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, bool]:
    """(H, W, 3) uint8 RGB pixels of one exemplar (alpha dropped, gray repeated, 16-bit rounded to 8 bits), and
    whether it tiles."""
    pixels, tileable = _decoded(path, max_pixels)
    pixels = codes_8bit(pixels) if pixels.dtype == np.uint16 else pixels
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    rgb = planes[..., :3] if planes.shape[2] >= 3 else np.repeat(planes[..., :1], 3, axis=2)
    return np.ascontiguousarray(rgb), tileable


def load_exemplar(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Exemplar:
    """Read one exemplar as training samples it: (3, H, W) float32 in [0, 1]."""
    pixels, tileable = _decoded(path, max_pixels)
    return Exemplar(path, torch.from_numpy(rgb_float(pixels)).permute(2, 0, 1).contiguous(), tileable)


def load_exemplars(data: Sequence[str | os.PathLike]) -> list[Exemplar]:
    """Every exemplar that `data` names."""
    return [load_exemplar(path) for path in exemplar_files(data)]


class CropSampler:
    """Random crops of `size` x `size` from exemplars: image chosen uniformly, random offset, and with `flips`
    random horizontal and vertical flips. Flips are off by default: they turn a material's light direction and the
    twist of its fibres or grain: the exemplars' own crops, flipped, read 0.12 on the realism scale for wood and
    fabric, half of what their GANs read (benchmarks/NOTES.md, issue 33)."""

    def __init__(self, exemplars: list[Exemplar], size: int, generator: torch.Generator, flips: bool = False) -> None:
        if not exemplars:
            raise SrkitError("no exemplar images to train on")
        small = [e.source for e in exemplars if not e.tileable and min(e.pixels.shape[1:]) < size]
        if small:
            raise SrkitError(f"{small[0]}: smaller than the {size}-pixel crops; use --size 64 or a larger image")
        self.exemplars = exemplars
        self.size = size
        self.generator = generator
        self.flips = flips

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (), generator=self.generator))

    def _crop(self) -> tuple[torch.Tensor, int]:
        """One (3, size, size) crop in [0, 1] and the index of the exemplar it came from."""
        index = self._randint(len(self.exemplars))
        exemplar = self.exemplars[index]
        _, height, width = exemplar.pixels.shape
        if exemplar.tileable:  # a pattern wraps around: any offset, indices taken modulo its size
            rows = (self._randint(height) + torch.arange(self.size)) % height
            cols = (self._randint(width) + torch.arange(self.size)) % width
        else:
            rows = self._randint(height - self.size + 1) + torch.arange(self.size)
            cols = self._randint(width - self.size + 1) + torch.arange(self.size)
        crop = exemplar.pixels[:, rows][:, :, cols]
        flips = [dim for dim in (1, 2) if self._randint(2)] if self.flips else []
        return (crop.flip(flips) if flips else crop), index

    def batch(self, count: int) -> torch.Tensor:
        """(count, 3, size, size) crops in [0, 1]."""
        return self.labelled(count)[0]

    def labelled(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(count, 3, size, size) crops in [0, 1] and (count,) the index of each one's exemplar (the same crops
        as `batch` draws from the same stream)."""
        crops, indices = zip(*(self._crop() for _ in range(count)))
        return torch.stack(crops), torch.tensor(indices)


def dominant_waves(crops: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` strongest peaks of the crops' (N, 3, T, T) mean luminance power spectrum, as (count, 2) wave
    vectors in cycles per pixel (down, across): whole periods across T, so fields of them wrap around any texture
    of a multiple of T; only periods of more than two field samples (Nyquist), one of each +-k pair, none next to
    a chosen one (a peak's own spread), and no constant. Fewer if the spectrum has fewer such peaks."""
    size = crops.shape[-1]
    luma = torch.einsum("nchw,c->nhw", crops.double(), torch.from_numpy(LUMA))
    power = torch.fft.fft2(luma - luma.mean((1, 2), keepdim=True)).abs().square().mean(0)
    limit = size // (2 * WAVE_SPACING)  # fewer periods than this across T: above Nyquist of the fields
    frequencies = np.fft.fftfreq(size, 1 / size).astype(int)  # periods across T of each spectrum index
    chosen: list[tuple[int, int]] = []
    for index in torch.argsort(power.flatten(), descending=True).tolist():
        ky, kx = (int(frequencies[i]) for i in divmod(index, size))
        if (ky, kx) < (0, 0):  # the conjugate of a peak in the other half-plane: take that one instead
            ky, kx = -ky, -kx
        if (ky, kx) == (0, 0) or max(abs(ky), abs(kx)) >= limit:
            continue
        if any(max(abs(ky - a), abs(kx - b)) <= 1 or max(abs(ky + a), abs(kx + b)) <= 1 for a, b in chosen):
            continue
        chosen.append((ky, kx))
        if len(chosen) == count:
            break
    return torch.tensor(chosen, dtype=torch.float32).reshape(-1, 2) / size
