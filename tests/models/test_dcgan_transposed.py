"""The earlier transposed-convolution texture generator, kept for the families trained with it: wrap mode,
BatchNorm folding, its plan on both kernel backends, and loading by its 4x4 stage weights."""

from __future__ import annotations

import pytest
import torch

from srkit.engine.plan import build_plan
from srkit.models import dcgan, dcgan_transposed
from srkit.models.generators import read_generator
from srkit.models.weights import write_safetensors
from srkit.models.zoo import LoadedModel

from ..kernels._compare import assert_close


def small_transposed(noise_channels: int = 5, widths: tuple[int, ...] = (9, 6), seed: int = 0):
    """A transposed generator whose every weight and BatchNorm statistic is random."""
    module = dcgan_transposed.TransposedGenerator(noise_channels=noise_channels, widths=widths)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for stage in module.stages:
            stage.conv.weight.copy_(torch.randn(stage.conv.weight.shape, generator=g) * (2 / (4 * widths[0])) ** 0.5)
            stage.norm.weight.copy_(0.5 + torch.rand(stage.norm.weight.shape, generator=g))
            stage.norm.bias.copy_(0.2 * torch.randn(stage.norm.bias.shape, generator=g))
            stage.norm.running_mean.copy_(0.3 * torch.randn(stage.norm.running_mean.shape, generator=g))
            stage.norm.running_var.copy_(0.5 + torch.rand(stage.norm.running_var.shape, generator=g))
        module.out.weight.copy_(torch.randn(module.out.weight.shape, generator=g) / module.out.weight[0].numel() ** 0.5)
        module.out.bias.copy_(0.1 * torch.randn(module.out.bias.shape, generator=g))
    return module.eval()


def test_wrap_conv_transpose_equals_the_centre_of_a_tiled_zero_padded_one():
    g = torch.Generator().manual_seed(3)
    x, weight = torch.randn(1, 4, 3, 5, generator=g), torch.randn(4, 2, 4, 4, generator=g)
    tiled = torch.nn.functional.conv_transpose2d(x.repeat(1, 1, 3, 3), weight, stride=2, padding=1)
    expected = tiled[:, :, 6:12, 10:20]  # the centre copy of x: rows 3..5 -> 6..11, columns 5..9 -> 10..19
    assert_close(dcgan_transposed.wrap_conv_transpose(x, weight), expected, atol=1e-5, rtol=1e-5, what="wrap")


def test_folded_batchnorm_equals_conv_then_batchnorm_in_eval_mode():
    stage = small_transposed(seed=4).stages[1]
    x = torch.randn(2, 9, 3, 4, generator=torch.Generator().manual_seed(5))
    weight, bias = dcgan_transposed.fold_batchnorm(stage.conv, stage.norm)
    with torch.no_grad():
        expected = stage.norm(dcgan_transposed.wrap_conv_transpose(x, stage.conv.weight))
    assert_close(dcgan_transposed.wrap_conv_transpose(x, weight, bias), expected, atol=1e-5, rtol=1e-5, what="fold")


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_plan_equals_module_and_stays_periodic(use_backend, backend):
    use_backend(backend)
    module, info = dcgan_transposed.ARCH.load(small_transposed(seed=1).state_dict(), {})
    noise = torch.randn(1, 5, 2, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = module(noise) * 0.5 + 0.5
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    assert_close(plan.run(noise), expected, atol=1e-5, rtol=1e-4, what=f"plan on {backend}")
    assert_close(plan.run(noise.repeat(1, 1, 2, 2)), expected.repeat(1, 1, 2, 2), atol=1e-5, rtol=1e-4, what="tiled")


def test_files_load_as_the_transposed_design_and_new_ones_as_today_s(tmp_path):
    old = small_transposed(seed=6)
    assert dcgan_transposed.ARCH.detect(old.state_dict()) and not dcgan.ARCH.detect(old.state_dict())
    path = write_safetensors(tmp_path / "old.safetensors", old.state_dict(), {"arch": "dcgan"})
    loaded = read_generator(path)
    assert loaded.info.arch == "dcgan-transposed" and loaded.info.in_channels == 5 and loaded.info.net_scale == 4
    noise = torch.randn(1, 5, 2, 2, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(loaded.module(noise), old(noise))
    assert not dcgan_transposed.ARCH.detect(dcgan.Generator(noise_channels=3, widths=(4,)).state_dict())
