"""ESRGAN / Real-ESRGAN RRDBNet with basicsr's key names: residual-in-residual dense blocks at low
resolution, then two nearest x2 steps. For x2 / x1 the input is pixel-unshuffled first (12 / 48 channels)."""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .info import ModelInfo

ARCH = "rrdb"
LEAKY_SLOPE = 0.2
RESIDUAL_SCALE = 0.2
# Input channels of conv_first per scale, for 3-channel images: x2 and x1 fold 2x2 / 4x4 pixels into channels.
UNSHUFFLE = {4: 1, 2: 2, 1: 4}
# Overlap used when tiling: the exact reach of 23 blocks is ~350 pixels, far beyond any useful tile; the
# dense blocks' influence decays fast, and Real-ESRGAN's own tiler pads by 10 pixels.
TILE_OVERLAP = 16


class DenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier output; out = conv5(...) * 0.2 + x."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for i in range(1, 6):
            self.add_module(f"conv{i}", nn.Conv2d(features + (i - 1) * growth, growth if i < 5 else features, 3,
                                                  padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for i in range(1, 5):
            features.append(F.leaky_relu(getattr(self, f"conv{i}")(torch.cat(features, 1)), LEAKY_SLOPE))
        return self.conv5(torch.cat(features, 1)) * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Three dense blocks with a scaled residual around them."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = DenseBlock(features, growth)
        self.rdb2 = DenseBlock(features, growth)
        self.rdb3 = DenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """conv_first, num_block RRDBs, conv_body (+ skip), 2 x (nearest x2, conv, lrelu), conv_hr, conv_last."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, features: int = 64, num_block: int = 23,
                 growth: int = 32, scale: int = 4) -> None:
        super().__init__()
        if scale not in UNSHUFFLE:
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, got {scale}")
        self.scale = scale
        self.conv_first = nn.Conv2d(in_channels * UNSHUFFLE[scale] ** 2, features, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        self.conv_up1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv_up2 = nn.Conv2d(features, features, 3, padding=1)
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if UNSHUFFLE[self.scale] > 1:
            x = F.pixel_unshuffle(x, UNSHUFFLE[self.scale])
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), LEAKY_SLOPE)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), LEAKY_SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), LEAKY_SLOPE))


def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    """True if the keys are basicsr's RRDBNet."""
    needed = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up1.weight",
              "conv_up2.weight", "conv_hr.weight", "conv_last.weight")
    return all(key in state_dict for key in needed)


def load(state_dict: dict[str, torch.Tensor]) -> tuple[RRDBNet, ModelInfo]:
    """Build the module from its weights: features, growth, block count and scale come from tensor shapes."""
    blocks = {int(m.group(1)) for key in state_dict if (m := re.match(r"body\.(\d+)\.rdb1\.conv1\.weight$", key))}
    num_block = max(blocks) + 1 if blocks else 0
    first = state_dict["conv_first.weight"]
    out_channels = state_dict["conv_last.weight"].shape[0]
    features = first.shape[0]
    growth = state_dict["body.0.rdb1.conv1.weight"].shape[0]
    folded = first.shape[1] // out_channels
    scale = {factor ** 2: s for s, factor in UNSHUFFLE.items()}.get(folded)
    if scale is None or folded * out_channels != first.shape[1]:
        raise ValueError(f"rrdb: conv_first takes {first.shape[1]} channels, which matches no x1/x2/x4 layout")
    params = dict(in_channels=out_channels, out_channels=out_channels, features=features, num_block=num_block,
                  growth=growth, scale=scale)
    module = RRDBNet(**params)
    module.load_state_dict(state_dict, strict=True)
    # Reach in input pixels: conv_first + 15 convs per block + conv_body at the working resolution (folded
    # pixels count UNSHUFFLE each), then 4 convs at 2x and 4x the working resolution.
    working = 1 + 15 * num_block + 1
    radius = working * UNSHUFFLE[scale] + 1
    info = ModelInfo(ARCH, scale, out_channels, out_channels, features, num_block, params, radius,
                     min(radius, TILE_OVERLAP))
    return module.eval(), info
