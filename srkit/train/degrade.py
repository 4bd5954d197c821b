"""Degradations that turn a high-resolution crop into the low-resolution input an SR model learns to invert.

`bicubic`: antialiased bicubic downscale, then 8-bit quantisation (an LR image is stored as 8 bits); this is also
how `srkit eval` makes its inputs. `real`: Gaussian blur, downscale, Gaussian noise and a JPEG round trip, each of
random strength, in the spirit of Real-ESRGAN's degradation model, for compressed or noisy sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .options import DEGRADATIONS


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] values to the nearest of 256 levels (what storing as 8 bits does)."""
    return image.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def bicubic_downscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, C, H/scale, W/scale), antialiased bicubic (H, W multiples of scale)."""
    height, width = image.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"image size {width}x{height} is not a multiple of the scale {scale}")
    return F.interpolate(
        image, size=(height // scale, width // scale), mode="bicubic", align_corners=False, antialias=True
    )


def to_codes(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> HxWxC uint8, clamped and rounded (one float temporary)."""
    return image.clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()


def bicubic_upscale_codes(image: torch.Tensor, scale: int, rows: int = 64) -> np.ndarray:
    """(1, C, h, w) in [0, 1] -> (h*scale, w*scale, C) uint8: plain bicubic (the baseline SR models must beat),
    made `rows` input rows at a time and equal to `to_codes` of torch's bicubic of the whole image.

    torch's 2-D bicubic adds up the horizontal passes of four rows with weights it computes in float32 from each
    output row's number, which for a scale not a power of two drifts with the row: a band cut out and upscaled on
    its own would get other weights. So each band runs the horizontal pass on its rows and two rows of halo either
    side (whole rows: exact), then the vertical pass on strips of columns that hold the band at its own row
    numbers, zeros above it, so every output row gets the whole image's weights; a strip has at most a band's
    output pixels. Costs about (bands + 1) / 2 whole vertical passes."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"bicubic_upscale_codes takes one (1, C, h, w) image, got shape {tuple(image.shape)}")
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    _, channels, height, width = image.shape
    out = np.empty((height * scale, width * scale, channels), np.uint8)
    for start in range(0, height, rows):
        stop = min(start + rows, height)
        first, last = max(start - 2, 0), min(stop + 2, height)
        across = F.interpolate(image[:, :, first:last], scale_factor=(1, scale), mode="bicubic", align_corners=False)
        strip = max(1, rows * width * scale // last)
        for left in range(0, width * scale, strip):
            right = min(left + strip, width * scale)
            rows_so_far = across.new_zeros((1, channels, last, right - left))
            rows_so_far[:, :, first:] = across[:, :, :, left:right]
            down = F.interpolate(rows_so_far, scale_factor=(scale, 1), mode="bicubic", align_corners=False)
            out[start * scale : stop * scale, left:right] = to_codes(down[0, :, start * scale : stop * scale])
    return out


@dataclass(frozen=True)
class RealDegradation:
    """Ranges the `real` degradation draws from, once per image."""

    blur_sigma: tuple[float, float] = (0.2, 1.5)
    noise_sigma: tuple[float, float] = (0.0, 6.0 / 255.0)
    jpeg_quality: tuple[int, int] = (45, 95)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3.0 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)


def _jpeg_round_trip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """(C, H, W) RGB in [0, 1] through OpenCV's JPEG encoder and decoder at `quality`."""
    pixels = (image.permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("OpenCV could not decode its own JPEG")
    return torch.from_numpy(decoded[..., ::-1].copy()).permute(2, 0, 1).to(image.dtype).div(255.0)


def degrade(
    hr: torch.Tensor, scale: int, kind: str, generator: torch.Generator, real: RealDegradation = RealDegradation()
) -> torch.Tensor:
    """LR batch for an (N, 3, H, W) HR batch in [0, 1]; random draws come only from `generator` (resumable)."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"degradation must be one of {DEGRADATIONS}, got {kind!r}")
    if kind == "bicubic":
        return quantize(bicubic_downscale(hr, scale))
    out = []
    for image in hr:
        blurred = _gaussian_blur(image[None], _uniform(generator, *real.blur_sigma))
        small = bicubic_downscale(blurred, scale)[0]
        noise = torch.randn(small.shape, generator=generator) * _uniform(generator, *real.noise_sigma)
        noisy = (small + noise.to(small.device)).clamp(0.0, 1.0)
        quality = int(round(_uniform(generator, *real.jpeg_quality)))
        out.append(_jpeg_round_trip(noisy, quality).to(hr.device))
    return torch.stack(out)
