"""`srkit eval`: fidelity of a model against bicubic on high-resolution photos.

For each photo: crop to a multiple of the scale, make the LR input by antialiased bicubic downscaling (stored as
8 bits), upscale it with the model (through the same engine `srkit upscale` uses) and with plain bicubic, and
report PSNR and SSIM on the BT.601 Y channel with `scale` border pixels cropped, the SR papers' convention.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import SrkitError
from ..train.data import find_photos, load_photo, mod_crop
from ..train.degrade import bicubic_downscale, bicubic_upscale, quantize
from ..train.metrics import crop_border, psnr, rgb_to_y, ssim
from ..upscaler import Upscaler


@dataclass
class ImageScore:
    """Scores of one photo (dB and SSIM on Y)."""

    file: str
    width: int
    height: int
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float


def _y_scores(reference: np.ndarray, test: np.ndarray, border: int) -> tuple[float, float]:
    """PSNR and SSIM on Y of two HxWx3 uint8 images, `border` pixels cropped."""
    ref_y, test_y = (crop_border(rgb_to_y(torch.from_numpy(a).permute(2, 0, 1).double()), border)
                     for a in (reference, test))
    return float(psnr(ref_y, test_y)), float(ssim(ref_y, test_y))


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> HxWx3 uint8."""
    return (image[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def score_photo(photo: torch.Tensor, upscaler: Upscaler, scale: int, name: str) -> ImageScore:
    """Scores of the model and of bicubic on one (3, H, W) photo in [0, 1]."""
    hr = quantize(mod_crop(photo, scale))[None]
    if min(hr.shape[-2:]) < scale * 12:
        raise SrkitError(f"{name}: {hr.shape[-1]}x{hr.shape[-2]} is too small to evaluate at x{scale}")
    lr = quantize(bicubic_downscale(hr, scale))
    reference = _to_uint8(hr)
    model_out = upscaler.upscale(_to_uint8(lr))
    bicubic_out = _to_uint8(bicubic_upscale(lr, scale))
    model_psnr, model_ssim = _y_scores(reference, model_out, scale)
    bicubic_psnr, bicubic_ssim = _y_scores(reference, bicubic_out, scale)
    return ImageScore(name, reference.shape[1], reference.shape[0], model_psnr, model_ssim, bicubic_psnr,
                      bicubic_ssim)


def evaluate(inputs: list[str | os.PathLike], upscaler: Upscaler, max_side: int | None,
             on_image: Callable[[ImageScore], None] | None = None) -> dict:
    """Score every photo under `inputs`; returns {"model", "scale", "images": [...], "mean": {...}}."""
    if upscaler.scale != int(upscaler.scale) or upscaler.scale < 2:
        raise SrkitError(f"eval needs an integer scale of at least 2, got {upscaler.scale:g}")
    scale = int(upscaler.scale)
    scores = []
    for path in find_photos(list(inputs)):
        score = score_photo(load_photo(path, max_side), upscaler, scale, Path(path).name)
        scores.append(score)
        if on_image:
            on_image(score)
    fields = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
    mean = {key: sum(getattr(s, key) for s in scores) / len(scores) for key in fields}
    mean["psnr_gain"] = mean["psnr"] - mean["bicubic_psnr"]
    mean["ssim_gain"] = mean["ssim"] - mean["bicubic_ssim"]
    return {"model": upscaler.model.name, "scale": scale, "images": [asdict(s) for s in scores], "mean": mean}
