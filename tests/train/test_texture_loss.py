"""The generator's texture statistics loss: sliced Wasserstein against sorted samples, zero on the real batch
itself, larger the further a batch's colours, structure or spectrum are from it, and differentiable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srkit.train import texture_loss


def test_sliced_wasserstein_of_one_dimension_is_the_mean_squared_gap_of_sorted_samples():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 1, generator=g), torch.rand(500, 1, generator=g) * 3
    expected = np.mean((np.sort(a.numpy()[:, 0]) - np.sort(b.numpy()[:, 0])) ** 2)  # every direction is +-1
    got = texture_loss.sliced_wasserstein(a, b, torch.Generator().manual_seed(1))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_sliced_wasserstein_subsamples_large_sets_and_refuses_unequal_ones():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3 * texture_loss.SAMPLES, 4, generator=g)
    assert texture_loss.sliced_wasserstein(a, a.clone(), torch.Generator().manual_seed(3)).item() > 0  # other rows
    shifted = texture_loss.sliced_wasserstein(a, a + 2.0, torch.Generator().manual_seed(3)).item()
    assert 4.0 * 4 / 4 * 0.3 < shifted  # a shift of 2 in each of 4 dims: about |d|^2 / C = 4 per projection
    with pytest.raises(ValueError, match="shapes differ"):
        texture_loss.sliced_wasserstein(a, a[:10], torch.Generator())


def test_loss_is_zero_on_the_real_batch_and_grows_with_colour_structure_and_spectrum():
    g = torch.Generator().manual_seed(4)
    real = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    loss = texture_loss.TextureLoss(torch.device("cpu"), torch.Generator().manual_seed(5))
    assert loss(real, real).item() == 0.0
    tinted = (real + torch.tensor([0.3, 0.0, -0.3])[None, :, None, None]).clamp(-1, 1)
    smooth = torch.nn.functional.avg_pool2d(real, 3, 1, 1)
    flat = real.mean((2, 3), keepdim=True).expand_as(real) + 0.01 * torch.randn(real.shape, generator=g)
    values = {name: loss(x, real).item() for name, x in (("tinted", tinted), ("smooth", smooth), ("flat", flat))}
    assert min(values.values()) > 0.05 and values["flat"] > values["smooth"], values


def test_gradient_reaches_the_generated_batch():
    g = torch.Generator().manual_seed(6)
    real = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    fake = torch.zeros(2, 3, 16, 16, requires_grad=True)
    texture_loss.TextureLoss(torch.device("cpu"), torch.Generator().manual_seed(7))(fake, real).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0 and torch.isfinite(fake.grad).all()
