"""Real-ESRGAN's SRVGGNetCompact and its smaller cuts (UltraCompact: 64 features, 8 convs; SuperUltraCompact:
24 features, 8 convs): a conv + activation stack at low resolution, pixel shuffle, plus the nearest-upsampled
input. State-dict keys are Real-ESRGAN's (`body.N.weight` / `body.N.bias`); PReLU slopes sit at the odd indices,
ReLU / LeakyReLU variants have none there."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels as K
from .arch import Arch, Layout, StateDict, load_strict, parameter_count, sequence_indices
from .info import ModelInfo
from .lowering import BoundProgram, ConvStep, element_size, scratch

ACTIVATIONS = ("prelu", "relu", "leaky_relu")
LEAKY_SLOPE = 0.1  # Real-ESRGAN's 'leakyrelu' act_type


class CompactSR(nn.Module):
    """conv(in->F), act, num_conv x [conv(F->F), act], conv(F->out*s*s), pixel shuffle, + nearest(x)."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        features: int = 64,
        num_conv: int = 16,
        scale: int = 4,
        act: str = "prelu",
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        self.scale = scale
        self.act = act
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), self._activation(features)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(features, features, 3, padding=1), self._activation(features)]
        layers.append(nn.Conv2d(features, out_channels * scale * scale, 3, padding=1))
        self.body = nn.ModuleList(layers)

    def _activation(self, features: int) -> nn.Module:
        if self.act == "prelu":
            return nn.PReLU(num_parameters=features)
        return nn.ReLU(inplace=True) if self.act == "relu" else nn.LeakyReLU(LEAKY_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return F.pixel_shuffle(out, self.scale) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class CompactProgram(BoundProgram):
    """conv+act chain at low resolution; the last conv writes the final image (shuffle, base, clamp, pack)."""

    def __init__(self, module: CompactSR, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        body = list(module.body)
        convs = cast("list[nn.Conv2d]", body[0::2])  # the body alternates conv, activation and ends on a conv
        self.steps = []
        for conv, activation in zip(convs[:-1], body[1::2]):
            slope = cast(nn.PReLU, activation).weight if module.act == "prelu" else LEAKY_SLOPE
            self.steps.append(ConvStep.from_conv(conv, device, module.act, slope))
        self.last = ConvStep.from_conv(convs[-1], device)

    def bind(self, x):
        """The chain on two preallocated feature maps (ping-pong, Triton only: see `scratch`)."""
        ops = K.ops_for(x)
        targets = [scratch(ops, x, self.info.features, *x.shape[2:]) for _ in range(2)]
        self._run(K.CHECKS, x, None, None, targets)
        return lambda x, clamp, out_dtype: self._run(ops, x, clamp, out_dtype, targets)

    def _run(self, ops: K.Ops, x, clamp, out_dtype, targets: list[torch.Tensor | None]) -> torch.Tensor:
        feat = x
        for i, step in enumerate(self.steps):
            feat = step.launch(ops, feat, out=targets[i % 2])
        last = self.last
        return ops.conv2d_pixel_shuffle_add(feat, last.weight, last.bias, self.info.net_scale, x, clamp, out_dtype)

    def activation_bytes_per_pixel(self, dtype):
        return element_size(dtype) * (2 * self.info.features + 2 * self.info.out_channels * self.info.net_scale**2)


def _conv_indices(state_dict: StateDict) -> list[int]:
    indices = sequence_indices(state_dict, r"body\.(\d+)\.weight$")
    return [i for i in indices if state_dict[f"body.{i}.weight"].dim() == 4]


class CompactArch(Arch):
    """SRVGGNetCompact in Real-ESRGAN's key layout, any width, depth, scale and activation."""

    id = "compact"
    name = "Real-ESRGAN Compact (SRVGGNetCompact)"
    layouts = (Layout("Real-ESRGAN", ("body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias")),)
    trainable = True

    def detect(self, state_dict):
        """Convs at body.0, 2, 4, ... and nothing else outside `body.`."""
        convs = _conv_indices(state_dict)
        return (
            len(convs) >= 2
            and convs == list(range(0, convs[-1] + 1, 2))
            and all(key.startswith("body.") for key in state_dict)
        )

    def load(self, state_dict, hints):
        convs = _conv_indices(state_dict)
        first, last = state_dict["body.0.weight"], state_dict[f"body.{convs[-1]}.weight"]
        in_channels, features = first.shape[1], first.shape[0]
        # Without PReLU slopes the activation is not in the weights; Real-ESRGAN's other choice is LeakyReLU.
        act = hints.get("act") or ("prelu" if "body.1.weight" in state_dict else "leaky_relu")
        scale = round((last.shape[0] / in_channels) ** 0.5)
        if scale * scale * in_channels != last.shape[0]:
            raise ValueError(f"last conv has {last.shape[0]} outputs, not {in_channels} x scale^2")
        module = CompactSR(
            in_channels=in_channels,
            out_channels=in_channels,
            features=features,
            num_conv=len(convs) - 2,
            scale=scale,
            act=act,
        )
        load_strict(module, state_dict)
        radius = len(convs)  # one pixel per 3x3 conv, all at input resolution
        info = ModelInfo(
            self.id,
            scale,
            in_channels,
            in_channels,
            features,
            len(convs) - 2,
            parameter_count(module),
            variant=act,
            receptive_radius=radius,
        )
        return module, info

    def hints(self, module):
        return {"act": module.act}

    def lower(self, module, info, device):
        return CompactProgram(cast(CompactSR, module), info, device)  # this arch's load built it

    def build(self, *, features, depth, scale, growth):
        return CompactSR(features=features, num_conv=depth, scale=scale)


ARCH = CompactArch()
