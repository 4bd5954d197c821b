"""Image-quality metrics for SR: PSNR and SSIM (Wang et al. 2004, Gaussian window), and the Y channel they are
reported on. One implementation serves evaluation (float64, exact) and the SSIM training loss (differentiable).

Definitions follow scikit-image's `peak_signal_noise_ratio` and `structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False)`: the SSIM map is averaged over the pixels whose 11x11 window lies wholly
inside the image, so no padding rule enters the result. `y_psnr_ssim` scores two uint8 images band by band, so
evaluation never holds a full-size float plane.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # scikit-image: int(truncate * sigma + 0.5) with truncate 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
# ITU-R BT.601 luma for studio range, as in MATLAB's rgb2ycbcr (the convention of SR papers): Y in [16, 235].
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
BAND_ROWS = 64  # rows of Y that `y_psnr_ssim` makes float at a time (plus the SSIM window's 10 rows of halo)


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 255] -> (..., 1, H, W) BT.601 studio-range luma in [16, 235], same dtype."""
    weights = torch.tensor(Y_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1) / 255.0
    return (rgb * weights).sum(dim=-3, keepdim=True) + Y_OFFSET


def crop_border(image: torch.Tensor, border: int) -> torch.Tensor:
    """Drop `border` pixels on every side of the last two dimensions (SR evaluation crops `scale` pixels)."""
    return image[..., border : image.shape[-2] - border, border : image.shape[-1] - border] if border else image


def psnr(reference: torch.Tensor, test: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over all elements of each leading-batch item (a 0-d tensor if unbatched)."""
    error = (reference.double() - test.double()).pow(2).flatten(start_dim=1 if reference.dim() == 4 else 0)
    mse = error.mean(dim=-1)
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    taps = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    window = torch.exp(-0.5 * (taps / SSIM_SIGMA) ** 2)
    return (window / window.sum()).to(dtype=dtype, device=device)


def _filter(planes: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian over (N, C, H, W) planes, 'valid' region only."""
    channels = planes.shape[1]
    rows = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return F.conv2d(F.conv2d(planes, rows, groups=channels), cols, groups=channels)


def ssim(reference: torch.Tensor, test: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Mean SSIM per batch item of (N, C, H, W) or (C, H, W) images (mean over channels and valid pixels).

    Differentiable; computed in the inputs' dtype (use float64 for evaluation that must match scikit-image).
    """
    unbatched = reference.dim() == 3
    x, y = (reference[None], test[None]) if unbatched else (reference, test)
    if min(x.shape[-2:]) <= 2 * SSIM_RADIUS:
        raise ValueError(f"SSIM needs images larger than {2 * SSIM_RADIUS + 1} pixels, got {tuple(x.shape[-2:])}")
    means = _ssim_map(x, y, data_range).flatten(start_dim=1).mean(dim=1)
    return means[0] if unbatched else means


def _ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """The SSIM index of every pixel of (N, C, H, W) images whose window lies inside: (N, C, H - 10, W - 10)."""
    window = _gaussian_window(x.dtype, x.device)
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    var_x = _filter(x * x, window) - mu_x * mu_x
    var_y = _filter(y * y, window) - mu_y * mu_y
    cov = _filter(x * y, window) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def y_psnr_ssim(reference: np.ndarray, test: np.ndarray, border: int, rows: int = BAND_ROWS) -> tuple[float, float]:
    """PSNR and SSIM (as `psnr` / `ssim`, float64) on the Y of two HxWx3 uint8 images with `border` pixels cropped.

    Computed over bands of `rows` rows, each with the SSIM window's halo below it: the squared errors and the SSIM
    map summed over the bands are the whole image's, so only a band is ever float."""
    if reference.shape != test.shape or reference.ndim != 3 or reference.shape[2] != 3:
        raise ValueError(f"y_psnr_ssim takes two HxWx3 images of one shape, got {reference.shape} and {test.shape}")
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    height, width = reference.shape[0] - 2 * border, reference.shape[1] - 2 * border
    if min(height, width) <= 2 * SSIM_RADIUS:
        raise ValueError(
            f"SSIM needs images larger than {2 * SSIM_RADIUS + 1} pixels after cropping {border}, got {width}x{height}"
        )
    map_rows = height - 2 * SSIM_RADIUS
    squared_error = index_sum = 0.0
    for start in range(0, height, rows):
        stop = min(start + rows, height)
        ref_y, test_y = (
            _y_rows(image, border, start, min(stop + 2 * SSIM_RADIUS, height)) for image in (reference, test)
        )
        squared_error += float((ref_y[:, : stop - start] - test_y[:, : stop - start]).pow(2).sum())
        if start < map_rows:  # this band's map rows: start .. min(stop, map_rows)
            index_sum += float(_ssim_map(ref_y[None], test_y[None], 255.0).sum())
    return (psnr_from_mse(squared_error / (height * width), 255.0), index_sum / (map_rows * (width - 2 * SSIM_RADIUS)))


def _y_rows(image: np.ndarray, border: int, start: int, stop: int) -> torch.Tensor:
    """Rows start..stop of the `border`-cropped BT.601 Y of an HxWx3 uint8 image, as a (1, rows, W') float64 plane."""
    rows = image[border + start : border + stop, border : image.shape[1] - border]
    return rgb_to_y(torch.from_numpy(rows).permute(2, 0, 1).double())


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """PSNR in dB for a mean squared error (inf for a perfect match)."""
    return 10.0 * math.log10(data_range**2 / mse) if mse > 0 else math.inf
