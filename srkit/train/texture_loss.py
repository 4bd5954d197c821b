"""A texture statistics loss for the generator: sliced Wasserstein distances between the distributions of
generated and exemplar pixels and of random multi-scale convolutional features, plus a log power spectrum term.

Sliced Wasserstein matching of feature distributions (Heitz et al., "A Sliced Wasserstein Loss for Neural
Texture Synthesis", CVPR 2021) with fixed random filters instead of a pretrained network (random filters at
several scales suffice for texture statistics: Ustyuzhaninov et al., ICLR 2017). It pulls the batch towards the
exemplars' colours, spectrum and local structure; the adversarial loss keeps each texture sharp. The filters
are drawn from their own seed, independent of the evaluation's feature bank in srkit.synth.measures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..synth.measures import LUMA

FEATURE_SEED = 20201  # not measures.FEATURE_SEED: training and evaluation use different random filters
FEATURE_WIDTHS = (32, 48, 64, 64)  # channels per scale; each layer after the first reads a 2x average pool
PROJECTIONS = 32  # random directions per sliced Wasserstein distance, drawn anew every step
SAMPLES = 4096  # feature vectors per distance, drawn anew every step (sorting all 65536 pixels of a batch of
# 64 px crops cost 10x the generator's own step on the CPU)


def _feature_bank(in_channels: int = 3) -> list[torch.Tensor]:
    """The fixed random 3x3 filters (He-scaled), seeded on the CPU."""
    generator = torch.Generator().manual_seed(FEATURE_SEED)
    weights, channels = [], in_channels
    for width in FEATURE_WIDTHS:
        weights.append(torch.randn(width, channels, 3, 3, generator=generator) * (2.0 / (9 * channels)) ** 0.5)
        channels = width
    return weights


def _subsample(samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """At most SAMPLES rows of (N, C) samples, drawn without replacement."""
    if samples.shape[0] <= SAMPLES:
        return samples
    return samples[torch.randperm(samples.shape[0], generator=generator)[:SAMPLES].to(samples.device)]


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mean squared difference of the sorted projections of samples a and b (N, C; equal N) on PROJECTIONS random
    unit directions, over at most SAMPLES random rows of each: the sliced 2-Wasserstein distance squared."""
    if a.shape != b.shape:
        raise ValueError(f"sliced Wasserstein of {tuple(a.shape)} and {tuple(b.shape)} samples: shapes differ")
    directions = F.normalize(torch.randn(a.shape[1], PROJECTIONS, generator=generator), dim=0).to(a)
    pa = (_subsample(a, generator) @ directions).T.sort(-1).values
    pb = (_subsample(b, generator) @ directions).T.sort(-1).values
    return (pa - pb).pow(2).mean()


def log_spectrum(images: torch.Tensor) -> torch.Tensor:
    """log10 of the batch-mean luminance power spectrum (Hann-windowed), radially symmetric folds kept."""
    luma = torch.einsum("nchw,c->nhw", images, torch.tensor(LUMA).to(images))
    height, width = luma.shape[1:]
    window = torch.outer(torch.hann_window(height, periodic=False), torch.hann_window(width, periodic=False))
    centred = (luma - luma.mean((1, 2), keepdim=True)) * window.to(luma)
    return torch.log10(torch.fft.rfft2(centred).abs().pow(2).mean(0) + 1e-6)


class TextureLoss:
    """loss(fake, real) for image batches (N, 3, H, W) in [-1, 1]: colour and per-scale feature sliced
    Wasserstein distances (each divided by the exemplars' own feature variance) plus the mean absolute
    difference of the log spectra."""

    def __init__(self, device: torch.device, generator: torch.Generator, spectrum_weight: float = 0.3) -> None:
        self.weights = [w.to(device) for w in _feature_bank()]
        self.generator = generator
        self.spectrum_weight = spectrum_weight

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Pixels, then each random layer's ReLU features, each as (N*H*W, C) samples."""
        out, x = [images.permute(0, 2, 3, 1).reshape(-1, images.shape[1])], images
        for index, weight in enumerate(self.weights):
            if index:
                x = F.avg_pool2d(x, 2)
            x = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight))
            out.append(x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]))
        return out

    def __call__(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self.features(real)
            spectrum = log_spectrum(real)
        loss = sum(
            sliced_wasserstein(f, t, self.generator) / t.var(0).sum().clamp_min(1e-8) * t.shape[1]
            for f, t in zip(self.features(fake), targets)
        )
        return loss + self.spectrum_weight * (log_spectrum(fake) - spectrum).abs().mean()
