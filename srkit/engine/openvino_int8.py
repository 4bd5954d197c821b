"""`--dtype int8`: the OpenVINO IR quantized to 8-bit by NNCF's post-training quantization, calibrated on real
photos (scikit-image's bundled ones: astronaut, chelsea, rocket, Hubble deep field; seeded
crops of the photos at half size, as an upscaler's inputs look). Opt-in only: the automatic choice never picks it,
since it costs quality (README: PSNR against fp32 per model). The quantized IR is cached beside the fp32 one,
keyed by its weights hash, NNCF's version and CALIBRATION_FORMAT."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import SrkitError

CALIBRATION_FORMAT = 1  # bumped when the calibration set or quantization settings change
PHOTOS = ("astronaut", "chelsea", "rocket", "hubble_deep_field")  # coffee is held out (README figures)
CROPS_PER_PHOTO = 6
CROP = 96  # input pixels per side of a calibration tile
INSTALL = "pip install 'srkit[int8]'"


class Int8UnavailableError(SrkitError, ValueError):
    """--dtype int8 asked where it cannot run (another device, a missing package)."""

    exit_code = 2


def unavailable_reason() -> str | None:
    """Why int8 cannot run here (a package missing), or None."""
    for package in ("openvino", "nncf", "skimage"):
        if importlib.util.find_spec(package) is None:
            return (
                f"--dtype int8 needs the {package} package (NNCF quantization, calibrated on scikit-image's "
                f"photos): {INSTALL}"
            )
    return None


def calibration_tiles(channels: int) -> list[np.ndarray]:
    """The calibration set: seeded CROP x CROP crops of the photos at half size, (1, channels, H, W) in [0, 1]."""
    import cv2
    from skimage import data

    rng = np.random.default_rng(0)
    tiles = []
    for name in PHOTOS:
        photo = getattr(data, name)()
        photo = np.repeat(photo[..., None], 3, 2) if photo.ndim == 2 else photo[..., :3]
        half = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
        for _ in range(CROPS_PER_PHOTO):
            top, left = rng.integers(0, half.shape[0] - CROP), rng.integers(0, half.shape[1] - CROP)
            crop = half[top : top + CROP, left : left + CROP].astype(np.float32) / 255.0
            if channels == 1:
                crop = crop @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
            tiles.append(np.ascontiguousarray(crop.transpose(2, 0, 1)[None]))
    return tiles


def quantized(xml: Path, channels: int) -> Path:
    """The int8 IR of the fp32 IR `xml`, quantizing and saving it (temporary name, then renamed) if new."""
    reason = unavailable_reason()
    if reason:
        raise Int8UnavailableError(reason)
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.WARNING)  # its progress bars say what happens; its INFO lines repeat them
    target = xml.with_name(f"{xml.stem}-int8-{nncf.__version__}-{CALIBRATION_FORMAT}.xml")
    if target.exists() and target.with_suffix(".bin").exists():
        return target
    tiles = calibration_tiles(channels)
    model = nncf.quantize(
        ov.Core().read_model(xml), nncf.Dataset(tiles), subset_size=len(tiles), fast_bias_correction=True
    )
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.xml")
    ov.save_model(model, tmp, compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(target.with_suffix(".bin"))
    tmp.replace(target)  # the .xml appears last, so a present .xml means a complete pair
    return target
