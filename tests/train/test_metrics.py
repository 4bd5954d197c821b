"""PSNR, SSIM and Y against scikit-image, the independent implementation the eval numbers must equal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srkit.train.metrics import crop_border, psnr, rgb_to_y, ssim, y_psnr_ssim

from ._photos import smooth_photo


def _pair(shape: tuple[int, ...], seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = rng.uniform(0, 255, shape)
    return clean, np.clip(clean + rng.normal(0, noise, shape), 0, 255)


@pytest.mark.parametrize("shape, noise", [((11, 11), 3.0), ((37, 45), 8.0), ((64, 29), 30.0)])
def test_psnr_and_ssim_equal_scikit_image_on_a_plane(shape, noise):
    a, b = _pair(shape, sum(shape), noise)
    expected_ssim = structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    got_ssim = float(ssim(torch.from_numpy(a)[None], torch.from_numpy(b)[None]))
    assert got_ssim == pytest.approx(expected_ssim, abs=1e-12)
    assert float(psnr(torch.from_numpy(a), torch.from_numpy(b))) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10
    )


def test_batched_ssim_is_the_per_image_value_and_channels_are_averaged():
    a, b = _pair((2, 3, 23, 31), 4, 10.0)
    batch = ssim(torch.from_numpy(a), torch.from_numpy(b))
    for i in range(2):
        per_channel = [
            structural_similarity(
                a[i, c], b[i, c], data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
            for c in range(3)
        ]
        assert float(batch[i]) == pytest.approx(np.mean(per_channel), abs=1e-12)
    assert torch.equal(
        psnr(torch.from_numpy(a), torch.from_numpy(b))[1], psnr(torch.from_numpy(a[1]), torch.from_numpy(b[1]))
    )


def test_ssim_is_differentiable_and_one_for_identical_images():
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    value = ssim(x, x.detach() * 0.9, data_range=1.0)
    value.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert float(ssim(x.detach(), x.detach(), data_range=1.0)) == pytest.approx(1.0)


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="larger than 11"):
        ssim(torch.zeros(1, 10, 40), torch.zeros(1, 10, 40))


def test_y_channel_equals_scikit_image_rgb2ycbcr():
    rgb = np.random.default_rng(1).integers(0, 256, (7, 9, 3)).astype(np.uint8)
    expected = rgb2ycbcr(rgb)[..., 0]
    got = rgb_to_y(torch.from_numpy(rgb).permute(2, 0, 1).double())[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_crop_border_drops_that_many_pixels_per_side():
    image = torch.arange(7 * 9).view(1, 7, 9)
    assert torch.equal(crop_border(image, 2), image[:, 2:5, 2:7])
    assert crop_border(image, 0) is image


def _photo_pair(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A generated uint8 photo and a noisy copy of it."""
    reference = smooth_photo(height, width, seed)
    noise = np.random.default_rng(seed).normal(0, 6, reference.shape)
    return reference, np.clip(reference + noise, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("height, width, border", [(37, 45, 3), (64, 29, 2), (23, 53, 0), (90, 71, 4)])
def test_banded_y_scores_equal_scikit_image_whatever_the_band(height, width, border):
    reference, test = _photo_pair(height, width, height + width)
    a, b = (rgb2ycbcr(image)[border : height - border, border : width - border, 0] for image in (reference, test))
    whole = y_psnr_ssim(reference, test, border, rows=height)
    assert whole[0] == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    assert whole[1] == pytest.approx(
        structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
        abs=1e-12,
    )
    for rows in (1, 7, 10, 11, 64):  # bands thinner than, as thick as and thicker than the SSIM halo
        assert y_psnr_ssim(reference, test, border, rows) == pytest.approx(whole, rel=1e-12, abs=0)


def test_banded_y_scores_of_identical_images_and_bad_inputs():
    reference, test = _photo_pair(31, 33, 5)
    assert y_psnr_ssim(reference, reference, 2, rows=7) == (np.inf, pytest.approx(1.0, abs=1e-12))
    with pytest.raises(ValueError, match="one shape"):
        y_psnr_ssim(reference, test[:-1], 2)
    with pytest.raises(ValueError, match="larger than 11 pixels after cropping 11"):
        y_psnr_ssim(reference, test, 11)
    with pytest.raises(ValueError, match="rows must be at least 1"):
        y_psnr_ssim(reference, test, 2, rows=0)
