"""seednet: the project brief's small network, made correct. Two conv+ReLU at low resolution, bilinear
upsampling of the features to the output size, concatenation with the bilinearly upsampled image, a stack
of conv+ReLU at high resolution, and a last conv predicting a residual added to the upsampled image."""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .info import BLEND_PIXELS, ModelInfo

ARCH = "seednet"
ALIGN_CORNERS = True  # the brief's network resamples with align_corners=True


class SeedNet(nn.Module):
    """head (2 convs, low res) -> bilinear up -> cat(upsampled image) -> body (num_conv convs) -> tail + skip."""

    def __init__(self, *, in_channels: int = 3, features: int = 32, num_conv: int = 3, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.ModuleList([nn.Conv2d(in_channels, features, 3, padding=1),
                                   nn.Conv2d(features, features, 3, padding=1)])
        self.body = nn.ModuleList([nn.Conv2d(features + in_channels if i == 0 else features, features, 3, padding=1)
                                   for i in range(num_conv)])
        self.tail = nn.Conv2d(features, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = x
        for conv in self.head:
            feat = F.relu(conv(feat))
        up = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=ALIGN_CORNERS)
        feat = F.interpolate(feat, scale_factor=self.scale, mode="bilinear", align_corners=ALIGN_CORNERS)
        feat = torch.cat([feat, up], 1)
        for conv in self.body:
            feat = F.relu(conv(feat))
        return self.tail(feat) + up


def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    """True if the keys are seednet's (head.0/1, body.N, tail)."""
    return {"head.0.weight", "head.1.weight", "body.0.weight", "tail.weight"} <= set(state_dict)


def load(state_dict: dict[str, torch.Tensor], scale: int) -> tuple[SeedNet, ModelInfo]:
    """Build the module from its weights; seednet's scale is not visible in its shapes, so it is given."""
    num_conv = 1 + max(int(m.group(1)) for key in state_dict if (m := re.match(r"body\.(\d+)\.weight$", key)))
    in_channels, features = state_dict["head.0.weight"].shape[1], state_dict["head.0.weight"].shape[0]
    params = dict(in_channels=in_channels, features=features, num_conv=num_conv, scale=scale)
    module = SeedNet(**params)
    module.load_state_dict(state_dict, strict=True)
    # Two convs at input resolution, then num_conv + 1 at output resolution (scale output pixels per input).
    radius = 2 + -(-(num_conv + 1) // scale)
    info = ModelInfo(ARCH, scale, in_channels, in_channels, features, num_conv, params, radius,
                     radius + BLEND_PIXELS)
    return module.eval(), info
