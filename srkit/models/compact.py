"""Real-ESRGAN's SRVGGNetCompact: a conv + activation stack at low resolution, pixel shuffle, plus the
nearest-upsampled input. State-dict keys are Real-ESRGAN's (`body.N.weight` / `body.N.bias`)."""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .info import BLEND_PIXELS, ModelInfo

ARCH = "compact"
ACTIVATIONS = ("prelu", "relu", "leaky_relu")
LEAKY_SLOPE = 0.1  # Real-ESRGAN's 'leakyrelu' act_type


class CompactSR(nn.Module):
    """conv(in->F), act, num_conv x [conv(F->F), act], conv(F->out*s*s), pixel shuffle, + nearest(x)."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, features: int = 64, num_conv: int = 16,
                 scale: int = 4, act: str = "prelu") -> None:
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


def _conv_indices(state_dict: dict[str, torch.Tensor]) -> list[int]:
    found = (re.fullmatch(r"body\.(\d+)\.weight", key) for key in state_dict)
    return sorted(int(m.group(1)) for m in found if m and state_dict[m.group(0)].dim() == 4)


def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    """True if the keys are SRVGGNetCompact's: convs at body.0, 2, 4, ... and nothing else at top level."""
    convs = _conv_indices(state_dict)
    return (len(convs) >= 2 and convs == list(range(0, convs[-1] + 1, 2))
            and all(key.startswith("body.") for key in state_dict))


def load(state_dict: dict[str, torch.Tensor], act: str | None = None) -> tuple[CompactSR, ModelInfo]:
    """Build the module from its weights; hyper-parameters come from tensor shapes (act from PReLU keys)."""
    convs = _conv_indices(state_dict)
    first, last = state_dict["body.0.weight"], state_dict[f"body.{convs[-1]}.weight"]
    in_channels, features = first.shape[1], first.shape[0]
    num_conv = len(convs) - 2
    if act is None:
        act = "prelu" if "body.1.weight" in state_dict else "leaky_relu"
    out_channels = in_channels
    scale = round((last.shape[0] / out_channels) ** 0.5)
    if scale * scale * out_channels != last.shape[0]:
        raise ValueError(f"compact: last conv has {last.shape[0]} outputs, not {out_channels} x scale^2")
    params = dict(in_channels=in_channels, out_channels=out_channels, features=features, num_conv=num_conv,
                  scale=scale, act=act)
    module = CompactSR(**params)
    module.load_state_dict(state_dict, strict=True)
    radius = num_conv + 2  # one pixel per 3x3 conv, all at input resolution
    info = ModelInfo(ARCH, scale, in_channels, out_channels, features, num_conv, params, radius,
                     radius + BLEND_PIXELS)
    return module.eval(), info
