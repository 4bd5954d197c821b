"""How real a set of textures looks next to its exemplars, by a statistic that no srkit training optimises.

The statistic is the local binary pattern (LBP, Ojala et al. 2002) histogram of the luminance at three radii:
each pixel's 8 neighbours at distance r (the square's corners and edge midpoints) are compared with it, giving
an 8-bit code (256 bins; orientation kept, so grain direction counts). Codes are taken where every neighbour lies
inside the image (crops need not tile). The distance between two sets is the total variation distance of their
histograms (0..1), averaged over the radii. The GAN's training matches colours, random-filter feature
distributions and spectra, never these binary orderings of neighbours, so a generator cannot reach a low
distance by fitting the measure itself.

`realism` puts a distance on a scale where 0 is that of exemplar crops to held-out crops of the same exemplars
(the floor: two samples of the real thing) and 1 is that of Perlin noise coloured with the exemplars' colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .measures import LUMA

RADII = (1, 2, 4)  # pixels: fine grain, texture elements, larger structure of 64-pixel crops
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))  # clockwise from top-left
BINS = 1 << len(NEIGHBOURS)


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 luminance codes of an (H, W) or (H, W, 3) uint8 image."""
    array = np.asarray(image, np.float64)
    return array if array.ndim == 2 else array[..., :3] @ LUMA


def lbp_codes(luma: np.ndarray, radius: int) -> np.ndarray:
    """(H - 2r, W - 2r) uint8 codes: bit k is set where neighbour k (NEIGHBOURS, scaled by r) >= the centre."""
    height, width = luma.shape
    if min(height, width) <= 2 * radius:
        raise ValueError(f"a {width}x{height} image has no pixel whose neighbours at distance {radius} lie inside")
    centre = luma[radius : height - radius, radius : width - radius]
    codes = np.zeros(centre.shape, np.uint8)
    for bit, (dy, dx) in enumerate(NEIGHBOURS):
        y, x = radius + dy * radius, radius + dx * radius
        codes |= (luma[y : y + centre.shape[0], x : x + centre.shape[1]] >= centre).astype(np.uint8) << bit
    return codes


def lbp_histograms(images: list[np.ndarray]) -> np.ndarray:
    """(len(RADII), BINS) LBP histograms of `images` (each row sums to 1), pooled over all of them."""
    counts = np.zeros((len(RADII), BINS))
    for image in images:
        luma = luminance(image)
        for row, radius in enumerate(RADII):
            counts[row] += np.bincount(lbp_codes(luma, radius).ravel(), minlength=BINS)
    return counts / counts.sum(1, keepdims=True)


def lbp_distance(histograms: np.ndarray, reference: np.ndarray) -> float:
    """Total variation distance of two sets' LBP histograms, averaged over the radii (0 = the same, 1 = disjoint)."""
    return float(0.5 * np.abs(histograms - reference).sum(1).mean())


def realism(distance: float, floor: float, ceiling: float) -> float:
    """`distance` on the scale where `floor` (exemplar to held-out exemplar) is 0 and `ceiling` (Perlin noise
    with the exemplars' colours) is 1; below 0 is as close as the exemplar's own crops, above 1 worse than noise."""
    if ceiling <= floor:
        raise ValueError(
            f"Perlin noise ({ceiling:.4f}) is no farther than the exemplar's own crops ({floor:.4f}): "
            "the scale is undefined"
        )
    return (distance - floor) / (ceiling - floor)


@dataclass(frozen=True)
class RealismScale:
    """The realism scale of one set of exemplars: their reference histograms, the floor and the ceiling."""

    reference: np.ndarray
    floor: float
    ceiling: float

    @classmethod
    def of(cls, reference: list[np.ndarray], again: list[np.ndarray], noise: list[np.ndarray]) -> RealismScale:
        """The scale from reference crops, a second independent set of crops (0) and matched noise (1)."""
        histograms = lbp_histograms(reference)
        return cls(
            histograms, lbp_distance(lbp_histograms(again), histograms), lbp_distance(lbp_histograms(noise), histograms)
        )

    def __call__(self, images: list[np.ndarray]) -> float:
        """The realism of `images` on this scale (NaN where the scale is undefined: noise no farther than the
        exemplars' own crops, as for a flat exemplar)."""
        if self.ceiling <= self.floor:
            return float("nan")
        return realism(lbp_distance(lbp_histograms(images), self.reference), self.floor, self.ceiling)
