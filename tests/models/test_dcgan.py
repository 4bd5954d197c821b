"""The DCGAN texture networks: output sizes, seamless wrap, BatchNorm folding, save -> detect -> load."""

from __future__ import annotations

import pytest
import torch

from srkit.models import dcgan, detect_arch
from srkit.models.weights import read_weights, write_safetensors

from ..kernels._compare import assert_close
from ..textures._generators import small_generator


@pytest.mark.parametrize("widths", [(6,), (9, 5), (12, 7, 6), (16, 8, 8, 4)], ids=str)
@pytest.mark.parametrize("noise_size", [(1, 1), (2, 3), (5, 4)], ids=str)
def test_generator_output_is_noise_size_times_two_to_the_stages(widths, noise_size):
    module = small_generator(noise_channels=3, widths=widths)
    noise = torch.randn(2, 3, *noise_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        image = module(noise)
    scale = 2 ** len(widths)
    assert module.scale == scale and image.shape == (2, 3, noise_size[0] * scale, noise_size[1] * scale)
    assert image.abs().max() <= 1.0 and image.std() > 0.05  # tanh output, and not a constant


def test_generator_is_periodic_with_its_noise():
    """Noise tiled 2x2 gives the image tiled 2x2: the image wraps left-right and top-bottom without a seam."""
    module = small_generator()
    noise = torch.randn(1, 5, 3, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        one, tiled = module(noise), module(noise.repeat(1, 1, 2, 2))
    assert_close(tiled, one.repeat(1, 1, 2, 2), atol=1e-5, rtol=1e-5, what="tiled noise")


def test_wrap_conv_transpose_equals_the_centre_of_a_tiled_zero_padded_one():
    g = torch.Generator().manual_seed(3)
    x, weight = torch.randn(1, 4, 3, 5, generator=g), torch.randn(4, 2, 4, 4, generator=g)
    tiled = torch.nn.functional.conv_transpose2d(x.repeat(1, 1, 3, 3), weight, stride=2, padding=1)
    expected = tiled[:, :, 6:12, 10:20]  # the centre copy of x: rows 3..5 -> 6..11, columns 5..9 -> 10..19
    assert_close(dcgan.wrap_conv_transpose(x, weight), expected, atol=1e-5, rtol=1e-5, what="wrap")


def test_folded_batchnorm_equals_conv_then_batchnorm_in_eval_mode():
    module = small_generator(seed=4)
    stage = module.stages[1]
    x = torch.randn(2, 12, 3, 4, generator=torch.Generator().manual_seed(5))
    weight, bias = dcgan.fold_batchnorm(stage.conv, stage.norm)
    with torch.no_grad():
        expected = stage.norm(dcgan.wrap_conv_transpose(x, stage.conv.weight))
    assert_close(dcgan.wrap_conv_transpose(x, weight, bias), expected, atol=1e-5, rtol=1e-5, what="folded")


@pytest.mark.parametrize("widths,noise_channels", [((12, 7, 6), 5), ((32, 16, 8, 8), 16), ((4,), 1)], ids=str)
def test_round_trip_through_safetensors_recovers_the_generator(tmp_path, widths, noise_channels):
    module = small_generator(noise_channels=noise_channels, widths=widths, seed=6)
    assert dcgan.ARCH.detect(module.state_dict())
    assert detect_arch(module.state_dict()) is None, "an SR architecture claims the generator's keys"
    path = write_safetensors(tmp_path / "g.safetensors", module.state_dict(), {"arch": dcgan.ARCH.id})
    state, metadata = read_weights(path)
    loaded, info = dcgan.ARCH.load(state, {})
    recovered = tuple(stage.conv.weight.shape[1] for stage in loaded.stages)
    assert (info.arch, info.in_channels, recovered, info.scale) == ("dcgan", noise_channels, widths, 2 ** len(widths))
    noise = torch.randn(1, noise_channels, 2, 3, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(loaded(noise), module(noise))


def test_detect_refuses_sr_and_discriminator_weights():
    from ..engine._models import small_model

    assert not dcgan.ARCH.detect(small_model("compact-x3")[0].state_dict())
    assert not dcgan.ARCH.detect(dcgan.Discriminator(features=4).state_dict())


@pytest.mark.parametrize("size,num_down", [(64, 3), (128, 4), (40, 2)])
def test_discriminator_gives_patch_logits(size, num_down):
    module = dcgan.initialise(dcgan.Discriminator(features=4, num_down=num_down), torch.Generator().manual_seed(8))
    logits = module(torch.rand(3, 3, size, size))
    assert logits.shape == (3, 1, size // 2 ** num_down, size // 2 ** num_down)
