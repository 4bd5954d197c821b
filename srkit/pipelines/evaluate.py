"""`srkit eval`: fidelity of a model against bicubic on high-resolution photos.

For each photo: crop to a multiple of the scale, make the LR input by antialiased bicubic downscaling (stored as
8 bits), upscale it with the model (through the same engine `srkit upscale` uses) and with plain bicubic, and
report PSNR and SSIM on the BT.601 Y channel with `scale` border pixels cropped, the SR papers' convention.
Outputs stay uint8: the bicubic baseline is made and both are scored in bands of rows (train/degrade.py,
train/metrics.py), so no full-size float copy of an output exists; the HR photo is the one full-size float.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import SrkitError
from ..train.data import find_photos, load_photo, mod_crop
from ..train.degrade import bicubic_downscale, bicubic_upscale_codes, quantize, to_codes
from ..train.metrics import y_psnr_ssim
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


def score_photo(photo: torch.Tensor, upscaler: Upscaler, scale: int, name: str) -> ImageScore:
    """Scores of the model and of bicubic on one (3, H, W) photo in [0, 1]."""
    reference, lr = _reference_and_input(photo, scale, name)
    model_psnr, model_ssim = y_psnr_ssim(reference, upscaler.upscale(to_codes(lr[0])), scale)
    bicubic_psnr, bicubic_ssim = y_psnr_ssim(reference, bicubic_upscale_codes(lr, scale), scale)
    return ImageScore(name, reference.shape[1], reference.shape[0], model_psnr, model_ssim, bicubic_psnr, bicubic_ssim)


def _reference_and_input(photo: torch.Tensor, scale: int, name: str) -> tuple[np.ndarray, torch.Tensor]:
    """The HR reference as HxWx3 uint8 (cropped to a multiple of `scale`) and the (1, 3, H/s, W/s) LR input in
    [0, 1] (its 8-bit levels); the float HR copy lives only here."""
    hr = quantize(mod_crop(photo, scale))[None]
    if min(hr.shape[-2:]) < scale * 12:
        raise SrkitError(f"{name}: {hr.shape[-1]}x{hr.shape[-2]} is too small to evaluate at x{scale}")
    return to_codes(hr[0]), quantize(bicubic_downscale(hr, scale))


def evaluate(
    inputs: list[str | os.PathLike],
    upscaler: Upscaler,
    max_side: int | None,
    on_image: Callable[[ImageScore], None] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict:
    """Score every photo under `inputs` (photos over `max_pixels` refused from their header); returns {"model",
    "scale", "images": [...], "mean": {...}}."""
    if upscaler.output_scale != int(upscaler.output_scale) or upscaler.output_scale < 2:
        raise SrkitError(f"eval needs an integer scale of at least 2, got {upscaler.output_scale:g}")
    scale = int(upscaler.output_scale)
    scores = []
    for path in find_photos(list(inputs)):
        score = score_photo(load_photo(path, max_side, max_pixels), upscaler, scale, Path(path).name)
        scores.append(score)
        if on_image:
            on_image(score)
    fields = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
    mean = {key: sum(getattr(s, key) for s in scores) / len(scores) for key in fields}
    mean["psnr_gain"] = mean["psnr"] - mean["bicubic_psnr"]
    mean["ssim_gain"] = mean["ssim"] - mean["bicubic_ssim"]
    return {"model": upscaler.model.name, "scale": scale, "images": [asdict(s) for s in scores], "mean": mean}


def report_json(report: dict) -> str:
    """The report as strict JSON: a score that is not finite (PSNR of an output equal to the reference is
    infinite; a gain of two such is undefined) is null, which every JSON parser reads, not Infinity or NaN."""

    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [finite(item) for item in value]
        return value

    return json.dumps(finite(report), indent=1, allow_nan=False)
