"""How textures are judged: seam score, statistics distance to an exemplar family, and diversity.

- Seam score: mean absolute difference across the wrap border (last column to first, last row to first)
  divided by the same between neighbouring interior columns and rows. A texture that tiles scores about 1,
  an image that does not, 2 or more. One texture's border is a single line, so its score varies with where
  that line falls in the texture's structure (0.6 to 1.6 for exactly periodic textures of 64 pixels);
  `pooled_seam_score` sums border and interior differences over many textures, which averages that out.
  A generator's image has a grid (pixels per noise cell, times an SR upscale's factor) and its border always
  lies on a grid line; with `period` the interior lines are those at the same place in the grid (the lines
  between pixel period*k - 1 and period*k), so the grid's own texture is not counted as a seam.
- Statistics distance between two sets of textures of one size: colour histograms (total variation
  distance, 0..1), radially averaged power spectra of the luminance (mean absolute difference of log10
  power, in decades) and Gram matrices of a fixed random convolutional feature bank (relative Frobenius
  distance, averaged over its three layers).
- Diversity: mean absolute pixel difference between every pair of textures (0 when all are the same image).
- Stride-frequency peak: how far the luminance power spectrum stands out at 1/2, 1/4 and 1/8 cycles per pixel,
  the frequencies where a generator that upsamples by 2 per stage imprints its stride (the checkerboard
  artifact of transposed convolutions). See `stride_peaks`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

LUMA = np.array([0.2126, 0.7152, 0.0722])
HISTOGRAM_BINS = 8  # per channel: 512 colour cells
SPECTRUM_BINS = 12  # log-spaced radial frequency bands from one cycle per image to Nyquist
FEATURE_SEED = 1234
FEATURE_WIDTHS = (16, 32, 32)  # channels of the random feature bank's layers (all but the first after a 2x pool)
STRIDE_FREQUENCIES = (0.5, 0.25, 0.125)  # cycles per pixel: the strides of one, two and three x2 stages
STRIDE_DIRECTIONS = ((1, 0), (0, 1), (1, 1))  # vertical axis, horizontal axis, diagonal
BAND_ELEMENTS = 1 << 18  # elements per band of rows in the seam score's sums (2 MiB as int64)
PEAK_RING = (2, 4)  # the neighbourhood: bins at Chebyshev distance 2..4 from the stride bin (the Hann window's
# own leakage of a line reaches distance 1, so the nearest ring that a line does not lift starts at 2)


def _unit(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float64 in [0, 1] from uint8, uint16 or float input; (H, W) becomes (H, W, 1)."""
    array = np.asarray(image)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, 1.0)
    array = array.astype(np.float64) / scale
    return array[..., None] if array.ndim == 2 else array


def _mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """mean |a - b| of two same-shape views of an image, summed over bands of rows (integers exactly), so no
    full-size float copy of the image is made."""
    rows = max(1, BAND_ELEMENTS // max(1, a[0].size))
    kind = np.float64 if a.dtype.kind == "f" else np.int64
    total = sum(
        np.abs(a[start : start + rows].astype(kind) - b[start : start + rows]).sum()
        for start in range(0, a.shape[0], rows)
    )
    return float(total) / a.size


def _seam_parts(image: np.ndarray, period: int) -> tuple[float, float]:
    """(border, interior): mean |difference| across the wrap border and across interior grid lines, axes summed,
    in units of the image's full range."""
    x = np.asarray(image)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(x.dtype, 1.0)
    x = x[..., None] if x.ndim == 2 else x
    if min(x.shape[:2]) < 2 * period:
        raise ValueError(f"a {x.shape[1]}x{x.shape[0]} image has no interior line of a {period}-pixel grid")
    border = _mean_abs_difference(x[:, -1], x[:, 0]) + _mean_abs_difference(x[-1], x[0])
    interior = _mean_abs_difference(x[:, period::period], x[:, period - 1 : -1 : period]) + _mean_abs_difference(
        x[period::period], x[period - 1 : -1 : period]
    )
    return border / scale, interior / scale


def seam_score(image: np.ndarray, period: int = 1) -> float:
    """Wrap-border difference over interior difference for one (H, W[, C]) texture (about 1 if it tiles)."""
    border, interior = _seam_parts(image, period)
    return border / interior if interior else (1.0 if border == 0 else float("inf"))


def pooled_seam_score(images: list[np.ndarray], period: int = 1) -> float:
    """The seam score of a set of textures: border differences summed over all, over interior ones summed."""
    parts = np.array([_seam_parts(image, period) for image in images])
    return float(parts[:, 0].sum() / parts[:, 1].sum())


def colour_histogram(images: list[np.ndarray]) -> np.ndarray:
    """Joint RGB histogram (HISTOGRAM_BINS per channel) of all pixels of `images`, summing to 1."""
    pixels = np.concatenate([_unit(image).reshape(-1, 3) for image in images])
    cells = np.minimum((pixels * HISTOGRAM_BINS).astype(np.int64), HISTOGRAM_BINS - 1)
    index = (cells[:, 0] * HISTOGRAM_BINS + cells[:, 1]) * HISTOGRAM_BINS + cells[:, 2]
    return np.bincount(index, minlength=HISTOGRAM_BINS**3) / len(index)


def radial_spectrum(images: list[np.ndarray]) -> np.ndarray:
    """log10 of the mean luminance power in SPECTRUM_BINS radial bands (Hann-windowed, so crops that do not
    tile are not penalised for their edges), averaged over `images` of one size."""
    height, width = images[0].shape[:2]
    window = np.outer(np.hanning(height), np.hanning(width))
    power = np.zeros((height, width))
    for image in images:
        luma = _unit(image) @ LUMA
        power += np.abs(np.fft.fft2((luma - luma.mean()) * window)) ** 2 / (height * width)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij"))
    edges = np.geomspace(1.0 / max(height, width), 0.5 * np.sqrt(2.0), SPECTRUM_BINS + 1)
    band = np.digitize(radius, edges) - 1
    inside = (band >= 0) & (band < SPECTRUM_BINS)
    totals = np.bincount(band[inside], power[inside] / len(images), SPECTRUM_BINS)
    counts = np.bincount(band[inside], minlength=SPECTRUM_BINS)
    return np.log10(totals / np.maximum(counts, 1) + 1e-12)


def _feature_bank() -> list[torch.Tensor]:
    """The fixed random 3x3 filters of the Gram features (same numbers everywhere: seeded CPU generator)."""
    generator = torch.Generator().manual_seed(FEATURE_SEED)
    weights, channels = [], 3
    for width in FEATURE_WIDTHS:
        weights.append(
            torch.randn(width, channels, 3, 3, generator=generator, dtype=torch.float64) / (9 * channels) ** 0.5
        )
        channels = width
    return weights


def gram_matrices(images: list[np.ndarray]) -> list[np.ndarray]:
    """Mean Gram matrix (C x C, divided by pixel count) of each random feature layer over `images`."""
    batch = torch.from_numpy(np.stack([_unit(image) for image in images])).permute(0, 3, 1, 2) - 0.5
    grams, x = [], batch
    for index, weight in enumerate(_feature_bank()):
        if index:
            x = F.avg_pool2d(x, 2)
        x = F.relu(F.conv2d(x, weight, padding=1))
        flat = x.flatten(2)
        grams.append((flat @ flat.transpose(1, 2) / flat.shape[2]).mean(0).numpy())
    return grams


@dataclass
class TextureStats:
    """Summary statistics of a set of textures of one size."""

    histogram: np.ndarray
    spectrum: np.ndarray
    grams: list[np.ndarray]


def texture_stats(images: list[np.ndarray]) -> TextureStats:
    """Colour histogram, radial power spectrum and random-feature Gram matrices of `images` (one size)."""
    return TextureStats(colour_histogram(images), radial_spectrum(images), gram_matrices(images))


def stats_distance(stats: TextureStats, reference: TextureStats) -> dict[str, float]:
    """Distances of `stats` to `reference`: colour (0..1), spectrum (decades), gram (relative); lower is closer."""
    gram = np.mean([np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(stats.grams, reference.grams)])
    return {
        "colour": float(0.5 * np.abs(stats.histogram - reference.histogram).sum()),
        "spectrum": float(np.abs(stats.spectrum - reference.spectrum).mean()),
        "gram": float(gram),
    }


def diversity(images: list[np.ndarray]) -> float:
    """Mean absolute pixel difference (0..1) over all pairs of `images`."""
    units = [_unit(image) for image in images]
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(units, 2)]))


def stride_peaks(images: list[np.ndarray]) -> dict[float, float]:
    """Per stride frequency f (1/2, 1/4, 1/8 cycles/pixel): the largest, over the two axes and the diagonal, of
    the mean luminance power at the bin (f, 0), (0, f) or (f, f) divided by its neighbourhood.

    The power is the Hann-windowed periodogram of the mean-removed luminance, averaged over `images` (one size,
    both sides multiples of 8, at least 64). The neighbourhood of a bin is the median power of the bins at
    Chebyshev distance PEAK_RING[0] to PEAK_RING[1] from it (72 bins, indices wrapping around the spectrum's
    period): about 1 where the spectrum is smooth, as in photos and noise (below 1 where it falls steeply), and
    10-1000 where a stage's stride imprints a periodic pattern.
    """
    height, width = images[0].shape[:2]
    if height % 8 or width % 8 or min(height, width) < 64:
        raise ValueError(f"stride peaks need sides that are multiples of 8, at least 64, not {width}x{height}")
    window = np.outer(np.hanning(height), np.hanning(width))
    power = np.zeros((height, width))
    for image in images:
        luma = _unit(image) @ LUMA
        power += np.abs(np.fft.fft2((luma - luma.mean()) * window)) ** 2
    offsets = np.arange(-PEAK_RING[1], PEAK_RING[1] + 1)
    ring = np.maximum(np.abs(offsets)[:, None], np.abs(offsets)[None, :]) >= PEAK_RING[0]
    peaks = {}
    for frequency in STRIDE_FREQUENCIES:
        ratios = []
        for dy, dx in STRIDE_DIRECTIONS:
            row, col = round(dy * frequency * height), round(dx * frequency * width)
            around = power[np.ix_((row + offsets) % height, (col + offsets) % width)][ring]
            ratios.append(power[row, col] / max(float(np.median(around)), 1e-30))
        peaks[frequency] = float(max(ratios))
    return peaks
