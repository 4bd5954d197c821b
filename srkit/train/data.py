"""Training photos and the (LR, HR) pairs made from them on the fly.

Photos are decoded once and kept in memory as float32 RGB. Lossy photos (JPEG, WebP) larger than `max_side` are
first reduced with an area filter: a 4000-pixel JPEG carries compression blocks and demosaicing noise at full
size, which a model trained on it would learn to reproduce as detail; averaging 3-4 pixels into one removes them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import SrkitError
from ..io.formats import IMAGE_EXTENSIONS, for_path
from ..io.images import read_picture
from ..io.paths import special_file_reason
from .degrade import degrade
from .options import DEFAULT_MAX_SIDE


def find_files(inputs: Sequence[str | os.PathLike], extensions: AbstractSet[str], kind: str) -> list[Path]:
    """Files named by `inputs` (files, or folders searched recursively for `extensions`), in a stable order,
    each once (the first spelling of a path is kept); a missing entry or a folder without `kind` is an error."""
    found: dict[Path, Path] = {}
    for entry in map(Path, inputs):
        if entry.is_dir():
            files = sorted(p for p in entry.rglob("*") if p.suffix.lower() in extensions and p.is_file())
            if not files:
                raise SrkitError(f"{entry}: no {kind} in this folder")
        elif reason := special_file_reason(entry):  # never opened: a FIFO would block, /dev/zero never ends
            raise SrkitError(f"{entry}: {reason}")
        elif entry.is_file():
            files = [entry]
        else:
            raise SrkitError(f"{entry}: no such file or directory")
        for file in files:
            found.setdefault(file.resolve(), file)
    return list(found.values())


def find_photos(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files named by `inputs` (files, or folders searched recursively)."""
    return find_files(inputs, IMAGE_EXTENSIONS, f"photos ({', '.join(sorted(IMAGE_EXTENSIONS))})")


def rgb_float(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 2|3|4) uint8/uint16 -> (H, W, 3) float32 in [0, 1]; alpha dropped, gray repeated."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    colour = planes[..., :3] if planes.shape[2] >= 3 else np.repeat(planes[..., :1], 3, axis=2)
    return colour.astype(np.float32) / scale


def load_photo(
    path: Path, max_side: int | None = DEFAULT_MAX_SIDE, max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    """(3, H, W) float32 RGB in [0, 1]; lossy photos longer than `max_side` are reduced by area first, photos
    over `max_pixels` refused from their header."""
    rgb = rgb_float(read_picture(path, max_pixels).pixels)
    height, width = rgb.shape[:2]
    lossy = (fmt := for_path(path)) is not None and fmt.lossy
    if max_side and lossy and max(height, width) > max_side:
        factor = max_side / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right so height and width are multiples of `scale`."""
    height, width = image.shape[-2:]
    return image[..., : height - height % scale, : width - width % scale]


@dataclass
class PairSampler:
    """Random HR crops (flips, 90-degree turns) of in-memory photos and their degraded LR versions.

    Every random draw comes from `generator`, whose state is saved in checkpoints, so a resumed run sees the
    same batches it would have seen without the interruption.
    """

    photos: list[torch.Tensor]
    scale: int
    patch: int
    degradation: str
    generator: torch.Generator

    def __post_init__(self) -> None:
        crop = self.patch * self.scale
        usable = [p for p in self.photos if min(p.shape[-2:]) >= crop]
        if not usable:
            raise SrkitError(
                f"no training photo is at least {crop}x{crop} pixels (patch {self.patch} x scale "
                f"{self.scale}); use a smaller --patch"
            )
        self.photos = usable
        # Crops are drawn per image in proportion to its area, so each pixel is about equally likely.
        self.weights = torch.tensor([float(p.shape[-1] * p.shape[-2]) for p in usable])

    def _crop(self) -> torch.Tensor:
        crop = self.patch * self.scale
        index = int(torch.multinomial(self.weights, 1, generator=self.generator))
        photo = self.photos[index]
        top = int(torch.randint(photo.shape[-2] - crop + 1, (), generator=self.generator))
        left = int(torch.randint(photo.shape[-1] - crop + 1, (), generator=self.generator))
        hr = photo[:, top : top + crop, left : left + crop]
        if torch.rand((), generator=self.generator) < 0.5:
            hr = hr.flip(-1)
        return torch.rot90(hr, int(torch.randint(4, (), generator=self.generator)), dims=(-2, -1))

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, HR) batches of shapes (size, 3, patch, patch) and (size, 3, patch*scale, patch*scale)."""
        hr = torch.stack([self._crop() for _ in range(size)]).contiguous()
        return degrade(hr, self.scale, self.degradation, self.generator), hr


def validation_pairs(
    photos: list[torch.Tensor], scale: int, crop: int | None, lr_multiple: int = 1
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(LR, HR) pairs from centre crops (at most `crop` pixels a side; None: whole photos), bicubic degradation;
    LR sides are multiples of `lr_multiple` (RRDB's pixel-unshuffled input needs even sides at x2)."""
    pairs = []
    for photo in photos:
        height, width = photo.shape[-2:]
        if crop is not None:
            top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
            photo = photo[:, top : top + crop, left : left + crop]
        hr = mod_crop(photo, scale * lr_multiple)[None]
        pairs.append((degrade(hr, scale, "bicubic", torch.Generator()), hr))
    return pairs
