"""The earlier texture generator design, kept to run the families trained with it: k stages of transposed
convolution (kernel 4, stride 2, padding 1, circular) + BatchNorm + ReLU, then a 3x3 convolution and tanh.

Its stride imprints a grid on its textures (the checkerboard artifact that srkit.models.dcgan's
resize-convolution design removes); `srkit train gan` no longer makes it. Files load by their 4x4 stage weights.
State-dict keys: `stages.N.conv.weight` (C_in, C_out, 4, 4), `stages.N.norm.*`, `out.weight`, `out.bias`.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from .arch import Arch, Layout, load_strict, parameter_count, sequence_indices
from .dcgan import batchnorm_affine
from .info import ModelInfo
from .lowering import ConvStep, Program, element_size, finish

# Noise cells on each side of a tile whose values can reach its output: every transposed stage reads one
# input pixel beyond its own (1 + 1/2 + 1/4 + ... < 2 noise cells), the last 3x3 conv a fraction more.
RECEPTIVE_RADIUS = 2


def wrap_conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """ConvTranspose2d(k4, s2, p1) of x taken as periodic: pad one pixel circularly, then crop with padding 3."""
    return F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="circular"), weight, bias, stride=2, padding=3)


class TransposedStage(nn.Module):
    """Transposed conv (k4 s2 p1, circular, no bias) + BatchNorm + ReLU: doubles height and width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(wrap_conv_transpose(x, self.conv.weight)))


class TransposedGenerator(nn.Module):
    """Spatial noise (N, noise_channels, h, w) -> periodic image (N, out_channels, h*2^k, w*2^k) in [-1, 1]."""

    def __init__(self, *, noise_channels: int, widths: tuple[int, ...], out_channels: int = 3) -> None:
        super().__init__()
        ins = (noise_channels, *widths[:-1])
        self.noise_channels = noise_channels
        self.stages = nn.ModuleList(TransposedStage(a, b) for a, b in zip(ins, widths))
        self.out = nn.Conv2d(widths[-1], out_channels, 3, padding=1, padding_mode="circular")

    @property
    def scale(self) -> int:
        """Output pixels per noise cell along each side."""
        return 2 ** len(self.stages)

    @property
    def input_channels(self) -> int:
        """Noise channels per cell (this design takes no per-pixel noise)."""
        return self.noise_channels

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        x = noise
        for stage in self.stages:
            x = stage(x)
        return torch.tanh(self.out(x))


def fold_batchnorm(conv: nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of one transposed conv equal to conv followed by `norm` in eval mode (running statistics)."""
    scale, bias = batchnorm_affine(norm)
    weight = conv.weight.detach().double() * scale[None, :, None, None]  # (C_in, C_out, 4, 4): C_out is dim 1
    return weight.float(), bias.float()


class TransposedProgram(Program):
    """run(noise (N, nz, h, w)) -> (N, 3, h*2^k, w*2^k) in [0, 1]; every layer wraps around."""

    def __init__(self, module: TransposedGenerator, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        stages = cast("list[TransposedStage]", list(module.stages))
        self.stages = []
        for stage in stages:
            weight, bias = fold_batchnorm(stage.conv, stage.norm)
            self.stages.append(
                ConvStep(weight.to(device), bias.to(device), "relu", padding_mode="circular", transposed=True)
            )
        self.out = ConvStep.from_conv(module.out, device, "tanh", padding_mode="circular")
        self.widths = (info.in_channels, *(stage.conv.weight.shape[1] for stage in stages), info.out_channels)

    def forward(self, x, clamp, out_dtype):
        for stage in self.stages:
            x = stage(x)
        return finish(self.out(x).mul_(0.5).add_(0.5), clamp, out_dtype)  # tanh's [-1, 1] to [0, 1]

    def activation_bytes_per_pixel(self, dtype):
        """Peak bytes per noise cell: a stage's input and output maps are alive together."""
        areas = [4 ** min(i, len(self.stages)) for i in range(len(self.widths))]
        return element_size(dtype) * max(
            a * c + b * d for a, b, c, d in zip(areas, areas[1:], self.widths, self.widths[1:])
        )


class TransposedGeneratorArch(Arch):
    """The earlier texture generator (4x4 transposed stages with BatchNorm, a 3x3 `out` conv)."""

    id = "dcgan-transposed"
    name = "srkit texture generator (DCGAN, transposed convolution; earlier design)"
    blend_pixels = 1  # tiles are in noise cells (16 output pixels each): one cell blends enough
    layouts = (Layout("srkit", ("stages.0.conv.weight", "stages.0.norm.running_var", "out.weight")),)

    def detect(self, state_dict):
        stages = sequence_indices(state_dict, r"stages\.(\d+)\.conv\.weight$")
        return (
            bool(stages)
            and stages == list(range(len(stages)))
            and "out.weight" in state_dict
            and all(state_dict[f"stages.{i}.conv.weight"].shape[2:] == (4, 4) for i in stages)
            and all(f"stages.{i}.norm.running_var" in state_dict for i in stages)
        )

    def load(self, state_dict, hints):
        stages = sequence_indices(state_dict, r"stages\.(\d+)\.conv\.weight$")
        convs = [state_dict[f"stages.{i}.conv.weight"] for i in stages]
        widths = tuple(int(w.shape[1]) for w in convs)
        module = TransposedGenerator(
            noise_channels=convs[0].shape[0], widths=widths, out_channels=state_dict["out.weight"].shape[0]
        )
        load_strict(module, state_dict)
        info = ModelInfo(
            self.id,
            module.scale,
            module.noise_channels,
            state_dict["out.weight"].shape[0],
            widths[-1],
            len(widths),
            parameter_count(module),
            receptive_radius=RECEPTIVE_RADIUS,
        )
        return module, info

    def lower(self, module, info, device):
        return TransposedProgram(cast(TransposedGenerator, module), info, device)  # this arch's load built it


ARCH = TransposedGeneratorArch()
