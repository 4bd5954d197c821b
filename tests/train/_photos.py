"""Small generated 'photos' for training and eval tests: smooth colour fields plus edges, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def smooth_photo(height: int, width: int, seed: int) -> np.ndarray:
    """HxWx3 uint8: bicubic-upsampled coarse noise (learnable structure) plus a few hard edges."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 6 + 2, width // 6 + 2, generator=g)
    image = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0]
    for _ in range(3):
        top, left = (int(torch.randint(s // 2, (), generator=g)) for s in (height, width))
        image[:, top : top + height // 3, left : left + width // 4] += 0.3
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def write_photos(folder: Path, sizes: list[tuple[int, int]], seed: int = 0, suffix: str = ".png") -> list[Path]:
    """Write one generated photo per (height, width) into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (height, width) in enumerate(sizes):
        path = folder / f"photo{i}{suffix}"
        Image.fromarray(smooth_photo(height, width, seed + i)).save(path)
        paths.append(path)
    return paths
