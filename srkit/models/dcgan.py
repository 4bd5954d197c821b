"""DCGAN-style texture networks (a spatial GAN): a fully convolutional generator and a patch discriminator.

The generator maps spatial noise (N, nz, h, w) to an image (N, 3, h*2^k, w*2^k): k stages of transposed
convolution (kernel 4, stride 2, padding 1) + BatchNorm + ReLU, then a 3x3 convolution and tanh. Every layer
pads circularly, so the image is periodic with the noise grid: it tiles without a seam, at any size. At
inference BatchNorm is folded into the transposed convolutions (`fold_batchnorm`). State-dict keys:
`stages.N.conv.weight`, `stages.N.norm.*`, `out.weight`, `out.bias` (discriminator: `stages.N.*`, `head.*`).
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .arch import Arch, Layout, load_strict, parameter_count, sequence_indices
from .info import ModelInfo
from .lowering import ConvStep, Program, element_size, finish

LEAKY_SLOPE = 0.2  # the discriminator's LeakyReLU (DCGAN's choice)
INIT_STD = 0.02  # DCGAN's weight initialisation: N(0, 0.02), BatchNorm scales N(1, 0.02)
# Noise cells on each side of a tile whose values can reach its output: every transposed stage reads one
# input pixel beyond its own (1 + 1/2 + 1/4 + ... < 2 noise cells), the last 3x3 conv a fraction more.
RECEPTIVE_RADIUS = 2


def wrap_conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """ConvTranspose2d(k4, s2, p1) of x taken as periodic: pad one pixel circularly, then crop with padding 3."""
    return F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="circular"), weight, bias, stride=2, padding=3)


def generator_widths(features: int, num_up: int) -> tuple[int, ...]:
    """Channels after each transposed stage: halving towards the image, the last two `features` wide."""
    return tuple(features * 2 ** max(0, num_up - 2 - i) for i in range(num_up))


class UpStage(nn.Module):
    """Transposed conv (k4 s2 p1, circular, no bias) + BatchNorm + ReLU: doubles height and width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(wrap_conv_transpose(x, self.conv.weight)))


class Generator(nn.Module):
    """Spatial noise (N, noise_channels, h, w) -> periodic image (N, out_channels, h*2^k, w*2^k) in [-1, 1]."""

    def __init__(self, *, noise_channels: int = 32, widths: tuple[int, ...] = (128, 64, 32, 32),
                 out_channels: int = 3) -> None:
        super().__init__()
        ins = (noise_channels, *widths[:-1])
        self.noise_channels = noise_channels
        self.stages = nn.ModuleList(UpStage(a, b) for a, b in zip(ins, widths))
        self.out = nn.Conv2d(widths[-1], out_channels, 3, padding=1, padding_mode="circular")

    @property
    def scale(self) -> int:
        """Output pixels per noise cell along each side."""
        return 2 ** len(self.stages)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        x = noise
        for stage in self.stages:
            x = stage(x)
        return torch.tanh(self.out(x))


class Discriminator(nn.Module):
    """Image -> patch logits (N, 1, H/2^k, W/2^k): strided 4x4 convs + BatchNorm (not on the first) + LeakyReLU."""

    def __init__(self, *, in_channels: int = 3, features: int = 32, num_down: int = 3) -> None:
        super().__init__()
        widths = [features * 2 ** min(i, 3) for i in range(num_down)]
        stages = []
        for i, (a, b) in enumerate(zip((in_channels, *widths[:-1]), widths)):
            layers: list[nn.Module] = [nn.Conv2d(a, b, 4, stride=2, padding=1, bias=i == 0)]
            if i:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


def initialise(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """DCGAN initialisation, seeded: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0, biases 0."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * INIT_STD)
                if layer.bias is not None:
                    layer.bias.zero_()
            elif isinstance(layer, nn.BatchNorm2d):
                layer.weight.copy_(1.0 + torch.randn(layer.weight.shape, generator=generator) * INIT_STD)
                layer.bias.zero_()
    return module


def recalibrate_batchnorm(generator: Generator, noise_batches: Iterable[torch.Tensor]) -> Generator:
    """A copy of `generator` in eval mode whose BatchNorm statistics are the exact averages over `noise_batches`
    (instead of the moving average over the last training steps, which lags the weights)."""
    calibrated = copy.deepcopy(generator).train()
    for layer in calibrated.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average
    with torch.no_grad():
        for noise in noise_batches:
            calibrated(noise)
    return calibrated.eval()


def fold_batchnorm(conv: nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of one transposed conv equal to conv followed by `norm` in eval mode (running statistics)."""
    scale = norm.weight.detach().double() / torch.sqrt(norm.running_var.double() + norm.eps)
    weight = conv.weight.detach().double() * scale[None, :, None, None]  # (C_in, C_out, 4, 4): C_out is dim 1
    bias = norm.bias.detach().double() - norm.running_mean.double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.detach().double() * scale
    return weight.float(), bias.float()


class GeneratorProgram(Program):
    """run(noise (N, nz, h, w)) -> (N, 3, h*2^k, w*2^k) in [0, 1]; every layer wraps around."""

    def __init__(self, module: Generator, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        self.stages = []
        for stage in module.stages:
            weight, bias = fold_batchnorm(stage.conv, stage.norm)
            self.stages.append(ConvStep(weight.to(device), bias.to(device), "relu", padding_mode="circular",
                                        transposed=True))
        self.out = ConvStep.from_conv(module.out, device, "tanh", padding_mode="circular")
        self.widths = (info.in_channels, *(stage.conv.weight.shape[1] for stage in module.stages),
                       info.out_channels)

    def forward(self, x, clamp, out_dtype):
        for stage in self.stages:
            x = stage(x)
        return finish(self.out(x).mul_(0.5).add_(0.5), clamp, out_dtype)  # tanh's [-1, 1] to [0, 1]

    def activation_bytes_per_pixel(self, dtype):
        """Peak bytes per noise cell: a stage's input and output maps are alive together."""
        areas = [4 ** min(i, len(self.stages)) for i in range(len(self.widths))]
        return element_size(dtype) * max(a * c + b * d for a, b, c, d in zip(areas, areas[1:], self.widths,
                                                                            self.widths[1:]))


class GeneratorArch(Arch):
    """The texture generator (not an SR network: the SR registry does not detect it)."""

    id = "dcgan"
    name = "srkit texture generator (DCGAN)"
    layouts = (Layout("srkit", ("stages.0.conv.weight", "stages.0.norm.running_var", "out.weight")),)

    def detect(self, state_dict):
        """Transposed 4x4 stages 0..k-1 with BatchNorm, and a 3x3 `out` conv."""
        stages = sequence_indices(state_dict, r"stages\.(\d+)\.conv\.weight$")
        return (bool(stages) and stages == list(range(len(stages))) and "out.weight" in state_dict
                and all(state_dict[f"stages.{i}.conv.weight"].shape[2:] == (4, 4) for i in stages)
                and all(f"stages.{i}.norm.running_var" in state_dict for i in stages))

    def load(self, state_dict, hints):
        stages = sequence_indices(state_dict, r"stages\.(\d+)\.conv\.weight$")
        convs = [state_dict[f"stages.{i}.conv.weight"] for i in stages]
        noise_channels = convs[0].shape[0]
        widths = tuple(int(w.shape[1]) for w in convs)
        out_channels = state_dict["out.weight"].shape[0]
        module = load_strict(Generator(noise_channels=noise_channels, widths=widths, out_channels=out_channels),
                             state_dict)
        info = ModelInfo(self.id, module.scale, noise_channels, out_channels, widths[-1], len(widths),
                         parameter_count(module), receptive_radius=RECEPTIVE_RADIUS,
                         tile_overlap=RECEPTIVE_RADIUS + 1)
        return module, info

    def lower(self, module, info, device):
        return GeneratorProgram(module, info, device)


ARCH = GeneratorArch()
