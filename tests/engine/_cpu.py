"""Helpers of the CPU-backend tests: a real photo at an odd size, PSNR, and srkit's fp32 PyTorch output."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data

import srkit


def photo() -> np.ndarray:
    """A real photo (scikit-image's astronaut) reduced to an odd 75x97, as uint8 RGB."""
    return cv2.resize(data.astronaut(), (97, 75), interpolation=cv2.INTER_AREA)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two arrays of the same shape (inf when equal)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def reference(model, image, monkeypatch, **options) -> np.ndarray:
    """srkit's fp32 PyTorch path on the same image."""
    with monkeypatch.context() as patch:
        patch.setenv("SRKIT_CPU_BACKEND", "torch")
        up = srkit.Upscaler(model, device="cpu", **options)
        assert up.runner.choice is None
        return up.upscale(image)
