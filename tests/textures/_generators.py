"""Small seeded texture generators for tests: random weights and BatchNorm statistics large enough to matter."""

from __future__ import annotations

import torch

from srkit.models import dcgan


def small_generator(
    noise_channels: int = 5,
    widths: tuple[int, ...] = (12, 7, 6),
    seed: int = 0,
    waves: torch.Tensor | None = None,
    materials: int = 0,
) -> dcgan.Generator:
    """A generator whose every weight and BatchNorm statistic is random (not the identity a fresh one has), with
    wave fields at `waves` (K, 2) if given and the last `materials` of its noise channels a material code (with a
    random phase pattern per material)."""
    module = dcgan.Generator(noise_channels=noise_channels, widths=widths, waves=waves, materials=materials)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for stage in module.stages:
            fan_in = stage.conv.weight[0].numel()
            stage.conv.weight.copy_(torch.randn(stage.conv.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
            stage.norm.weight.copy_(0.5 + torch.rand(stage.norm.weight.shape, generator=g))
            stage.norm.bias.copy_(0.2 * torch.randn(stage.norm.bias.shape, generator=g))
            stage.norm.running_mean.copy_(0.3 * torch.randn(stage.norm.running_mean.shape, generator=g))
            stage.norm.running_var.copy_(0.5 + torch.rand(stage.norm.running_var.shape, generator=g))
            stage.noise_scale.copy_(0.3 * torch.randn(stage.noise_scale.shape, generator=g))
        module.out.weight.copy_(torch.randn(module.out.weight.shape, generator=g) / module.out.weight[0].numel() ** 0.5)
        module.out.bias.copy_(0.1 * torch.randn(module.out.bias.shape, generator=g))
        if materials:  # each material's phase pattern its own
            module.centre.running_mean.copy_(0.1 * torch.randn(module.centre.running_mean.shape, generator=g))
    return module.eval()


WAVES = torch.tensor([[1 / 16, 0.0], [1 / 32, -3 / 32]])  # whole periods across any texture of 32 px or more
