"""seednet: the project brief's small network, made correct. Two conv+ReLU at low resolution, bilinear
upsampling of the features to the output size, concatenation with the bilinearly upsampled image, a stack
of conv+ReLU at high resolution, and a last conv predicting a residual added to the upsampled image."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels as K
from .arch import Arch, Layout, load_strict, parameter_count, sequence_indices
from .info import ModelInfo
from .lowering import BoundProgram, ConvStep, element_size, empty, scratch

ALIGN_CORNERS = True  # the brief's network resamples with align_corners=True


class SeedNet(nn.Module):
    """head (2 convs, low res) -> bilinear up -> cat(upsampled image) -> body (num_conv convs) -> tail + skip."""

    def __init__(self, *, in_channels: int = 3, features: int = 32, num_conv: int = 3, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.ModuleList(
            [nn.Conv2d(in_channels, features, 3, padding=1), nn.Conv2d(features, features, 3, padding=1)]
        )
        self.body = nn.ModuleList(
            [nn.Conv2d(features + in_channels if i == 0 else features, features, 3, padding=1) for i in range(num_conv)]
        )
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


class SeedNetProgram(BoundProgram):
    """Low-res convs, bilinear upsampling into one buffer beside the upsampled image, high-res convs; the tail's
    epilogue adds the skip, clamps and packs (a pixel shuffle of scale 1 whose base is the upsampled image)."""

    def __init__(self, module: SeedNet, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        self.head = [ConvStep.from_conv(conv, device, "relu") for conv in cast("list[nn.Conv2d]", list(module.head))]
        self.body = [ConvStep.from_conv(conv, device, "relu") for conv in cast("list[nn.Conv2d]", list(module.body))]
        self.tail = ConvStep.from_conv(module.tail, device)

    def bind(self, x):
        ops, s, f = K.ops_for(x), self.info.net_scale, self.info.features
        _, c, h, w = x.shape
        low = [scratch(ops, x, f, h, w) for _ in self.head]
        joined = empty(x, f + c, h * s, w * s)  # upsampled features beside the upsampled image: the body's input
        high = [scratch(ops, x, f, h * s, w * s) for _ in range(2)]  # the body's convs, ping-pong
        self._run(K.CHECKS, x, None, None, low, joined, high)
        return lambda x, clamp, out_dtype: self._run(ops, x, clamp, out_dtype, low, joined, high)

    def _run(
        self,
        ops: K.Ops,
        x,
        clamp,
        out_dtype,
        low: list[torch.Tensor | None],
        joined: torch.Tensor,
        high: list[torch.Tensor | None],
    ) -> torch.Tensor:
        s, f = self.info.net_scale, self.info.features
        feat = x
        for step, out in zip(self.head, low):
            feat = step.launch(ops, feat, out=out)
        ops.upsample(feat, s, "bilinear", ALIGN_CORNERS, joined[:, :f])
        ops.upsample(x, s, "bilinear", ALIGN_CORNERS, joined[:, f:])
        feat = joined
        for i, step in enumerate(self.body):
            feat = step.launch(ops, feat, out=high[i % 2])
        tail = self.tail
        return ops.conv2d_pixel_shuffle_add(feat, tail.weight, tail.bias, 1, joined[:, f:], clamp, out_dtype)

    def activation_bytes_per_pixel(self, dtype):
        # Per input pixel, at the output resolution: the joined buffer, two body maps, and (reference kernels) an
        # upsampled map in flight before it is copied into the joined buffer.
        f, c = self.info.features, self.info.in_channels
        return element_size(dtype) * self.info.net_scale**2 * (4 * f + 2 * c)


class SeedNetArch(Arch):
    """srkit's seednet; its scale is not visible in its shapes, so srkit's metadata carries it."""

    id = "seednet"
    name = "srkit seednet"
    layouts = (Layout("srkit", ("head.0.weight", "head.1.weight", "body.0.weight", "tail.weight")),)
    trainable = True

    def load(self, state_dict, hints):
        if "scale" not in hints:
            raise ValueError(
                "seednet weights do not show their scale; load them from srkit's .safetensors, which records it"
            )
        scale = int(hints["scale"])
        num_conv = len(sequence_indices(state_dict, r"body\.(\d+)\.weight$"))
        in_channels, features = state_dict["head.0.weight"].shape[1], state_dict["head.0.weight"].shape[0]
        module = SeedNet(in_channels=in_channels, features=features, num_conv=num_conv, scale=scale)
        load_strict(module, state_dict)
        # Two convs at input resolution, then num_conv + 1 at output resolution (scale output pixels per input).
        radius = 2 + -(-(num_conv + 1) // scale)
        info = ModelInfo(
            self.id,
            scale,
            in_channels,
            in_channels,
            features,
            num_conv,
            parameter_count(module),
            receptive_radius=radius,
        )
        return module, info

    def hints(self, module):
        return {"scale": module.scale}

    def lower(self, module, info, device):
        return SeedNetProgram(cast(SeedNet, module), info, device)  # this arch's load built it

    def build(self, *, features, depth, scale, growth):
        return SeedNet(features=features, num_conv=depth, scale=scale)


ARCH = SeedNetArch()
