"""Turn an SR module or a texture generator into an inference plan: a fixed sequence of srkit.kernels calls.

The plan holds the weights on its device once; activations are NCHW channels_last in the plan's dtype
(fp16 by default on CUDA, fp32 on CPU). Convolutions carry their bias and activation; RRDB dense blocks
write into channel slices of one buffer (no torch.cat); the last step writes the final image once,
clamped and, if asked, packed to uint8/uint16 HWC. The texture generator's BatchNorm is folded into its
transposed convolutions, and all its layers pad circularly, so its images tile seamlessly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels as K
from ..models import compact, dcgan, rrdb, seednet
from ..models.info import ModelInfo


@dataclass
class ConvStep:
    """One fused convolution: weights on the plan's device, activation and its slope, padding mode; a
    `transposed` step is ConvTranspose2d(k4, s2, p1) with a (C_in, C_out, 4, 4) weight."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    act: str = "none"
    slope: float | torch.Tensor = 0.2
    padding_mode: str = "zeros"
    transposed: bool = False

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, device: torch.device, act: str = "none",
                  slope: float | torch.Tensor = 0.2, padding_mode: str = "zeros") -> "ConvStep":
        bias = None if conv.bias is None else conv.bias.detach().float().to(device)
        if isinstance(slope, torch.Tensor):
            slope = slope.detach().float().to(device)
        return cls(conv.weight.detach().float().to(device), bias, act, slope, padding_mode)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[1 if self.transposed else 0]

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None, res_scale: float = 1.0,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        if self.transposed:
            return K.conv_transpose2d_act(x, self.weight, self.bias, self.act, self.slope, self.padding_mode, out)
        return K.conv2d_act(x, self.weight, self.bias, self.act, self.slope, residual, res_scale,
                            self.padding_mode, out)


def _empty(like: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    return torch.empty((like.shape[0], channels, height, width), dtype=like.dtype, device=like.device,
                       memory_format=torch.channels_last)


def _finish(y: torch.Tensor, clamp: tuple[float, float] | None, out_dtype: torch.dtype | None) -> torch.Tensor:
    """Clamp / pack a full-resolution result (pixel_shuffle_add with scale 1 is exactly that epilogue)."""
    if clamp is None and out_dtype is None:
        return y
    return K.pixel_shuffle_add(y, 1, clamp=clamp, out_dtype=out_dtype)


class Plan(ABC):
    """A model as kernel calls. run(x) with x (N, C, H, W) in [0, 1] returns (N, C, H*s, W*s)."""

    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.info = info
        self.device = device
        self.dtype = dtype

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Move an input batch to the plan's device, dtype and memory format."""
        return x.to(device=self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)

    def run(self, x: torch.Tensor, clamp: tuple[float, float] | None = None,
            out_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The network's output for x; clamped to `clamp` and converted to `out_dtype` in its last pass."""
        with torch.inference_mode():
            return self._forward(self.prepare(x), clamp, out_dtype)

    @abstractmethod
    def _forward(self, x: torch.Tensor, clamp: tuple[float, float] | None,
                 out_dtype: torch.dtype | None) -> torch.Tensor:
        """The architecture's kernel calls on a prepared batch."""

    @abstractmethod
    def activation_bytes_per_pixel(self) -> float:
        """Peak activation bytes per input pixel (for choosing a tile that fits in memory)."""


class CompactPlan(Plan):
    """conv+act chain at low resolution; the last conv writes the final image (shuffle, base, clamp, pack)."""

    def __init__(self, module: compact.CompactSR, info: ModelInfo, device, dtype) -> None:
        super().__init__(info, device, dtype)
        body = list(module.body)
        act = info.params["act"]
        self.steps = []
        for conv, activation in zip(body[0:-1:2], body[1::2]):
            slope = activation.weight if act == "prelu" else compact.LEAKY_SLOPE
            self.steps.append(ConvStep.from_conv(conv, device, act, slope))
        self.last = ConvStep.from_conv(body[-1], device)

    def _forward(self, x, clamp, out_dtype):
        feat = x
        for step in self.steps:
            feat = step(feat)
        return K.conv2d_pixel_shuffle_add(feat, self.last.weight, self.last.bias, self.info.scale, base=x,
                                          clamp=clamp, out_dtype=out_dtype)

    def activation_bytes_per_pixel(self) -> float:
        size = torch.finfo(self.dtype).bits // 8
        return size * (2 * self.info.features + 2 * self.info.out_channels * self.info.scale ** 2)


class RRDBPlan(Plan):
    """Dense blocks write their growth channels into one wide buffer per block; no concatenation."""

    def __init__(self, module: rrdb.RRDBNet, info: ModelInfo, device, dtype) -> None:
        super().__init__(info, device, dtype)
        lrelu = dict(act="leaky_relu", slope=rrdb.LEAKY_SLOPE)
        self.conv_first = ConvStep.from_conv(module.conv_first, device)
        self.blocks = [[[ConvStep.from_conv(getattr(rdb, f"conv{i}"), device, **(lrelu if i < 5 else {}))
                         for i in range(1, 6)] for rdb in (block.rdb1, block.rdb2, block.rdb3)]
                       for block in module.body]
        self.conv_body = ConvStep.from_conv(module.conv_body, device)
        self.conv_up1 = ConvStep.from_conv(module.conv_up1, device, **lrelu)
        self.conv_up2 = ConvStep.from_conv(module.conv_up2, device, **lrelu)
        self.conv_hr = ConvStep.from_conv(module.conv_hr, device, **lrelu)
        self.conv_last = ConvStep.from_conv(module.conv_last, device)
        self.unshuffle = rrdb.UNSHUFFLE[info.scale]
        self.growth = info.params["growth"]

    def _dense_block(self, convs: list[ConvStep], buf: torch.Tensor, out: torch.Tensor) -> None:
        """buf[:, :F] holds the block input; conv1..4 append G channels each; conv5*0.2 + input -> out."""
        f, g = self.info.features, self.growth
        for i, step in enumerate(convs[:4]):
            step(buf[:, :f + i * g], out=buf[:, f + i * g:f + (i + 1) * g])
        convs[4](buf, residual=buf[:, :f], res_scale=rrdb.RESIDUAL_SCALE, out=out)

    def _forward(self, x, clamp, out_dtype):
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle).contiguous(memory_format=torch.channels_last)
        f, g = self.info.features, self.growth
        h, w = x.shape[2:]
        feat = self.conv_first(x)
        bufs = [_empty(feat, f + 4 * g, h, w) for _ in range(3)]
        scratch = _empty(feat, f, h, w)
        bufs[0][:, :f].copy_(feat)
        for block in self.blocks:
            block_in = bufs[0][:, :f]
            self._dense_block(block[0], bufs[0], bufs[1][:, :f])
            self._dense_block(block[1], bufs[1], bufs[2][:, :f])
            self._dense_block(block[2], bufs[2], scratch)
            # RRDB residual: block output * 0.2 + block input, into the next block's input slot.
            torch.add(block_in, scratch, alpha=rrdb.RESIDUAL_SCALE, out=bufs[1][:, :f])
            bufs = [bufs[1], bufs[0], bufs[2]]
        feat = self.conv_body(bufs[0][:, :f], residual=feat)
        feat = self.conv_up1(K.upsample(feat, 2, "nearest"))
        feat = self.conv_up2(K.upsample(feat, 2, "nearest"))
        return _finish(self.conv_last(self.conv_hr(feat)), clamp, out_dtype)

    def activation_bytes_per_pixel(self) -> float:
        size = torch.finfo(self.dtype).bits // 8
        f, g, u = self.info.features, self.growth, self.unshuffle
        low = (3 * (f + 4 * g) + 2 * f) / (u * u)          # per input pixel at the working resolution
        high = 3 * f * (16 / (u * u))                        # two x4-resolution maps plus the upsampled copy
        return size * max(low, high)


class SeedNetPlan(Plan):
    """Low-res convs, bilinear upsampling into one buffer beside the upsampled image, high-res convs, skip."""

    def __init__(self, module: seednet.SeedNet, info: ModelInfo, device, dtype) -> None:
        super().__init__(info, device, dtype)
        self.head = [ConvStep.from_conv(conv, device, "relu") for conv in module.head]
        self.body = [ConvStep.from_conv(conv, device, "relu") for conv in module.body]
        self.tail = ConvStep.from_conv(module.tail, device)

    def _forward(self, x, clamp, out_dtype):
        s, f = self.info.scale, self.info.features
        feat = x
        for step in self.head:
            feat = step(feat)
        up = K.upsample(x, s, "bilinear", align_corners=seednet.ALIGN_CORNERS)
        joined = _empty(x, f + x.shape[1], x.shape[2] * s, x.shape[3] * s)
        joined[:, :f].copy_(K.upsample(feat, s, "bilinear", align_corners=seednet.ALIGN_CORNERS))
        joined[:, f:].copy_(up)
        feat = joined
        for step in self.body:
            feat = step(feat)
        return _finish(self.tail(feat, residual=up), clamp, out_dtype)

    def activation_bytes_per_pixel(self) -> float:
        size = torch.finfo(self.dtype).bits // 8
        return size * self.info.scale ** 2 * (3 * self.info.features + 2 * self.info.in_channels)


class GeneratorPlan(Plan):
    """Texture generator: run(noise (N, nz, h, w)) -> (N, 3, h*2^k, w*2^k) in [0, 1]; every layer wraps around."""

    def __init__(self, module: dcgan.Generator, info: ModelInfo, device, dtype) -> None:
        super().__init__(info, device, dtype)
        self.stages = []
        for stage in module.stages:
            weight, bias = dcgan.fold_batchnorm(stage.conv, stage.norm)
            self.stages.append(ConvStep(weight.to(device), bias.to(device), "relu", padding_mode="circular",
                                        transposed=True))
        self.out = ConvStep.from_conv(module.out, device, "tanh", padding_mode="circular")

    def _forward(self, x, clamp, out_dtype):
        for stage in self.stages:
            x = stage(x)
        return _finish(self.out(x).mul_(0.5).add_(0.5), clamp, out_dtype)  # tanh's [-1, 1] to [0, 1]

    def activation_bytes_per_pixel(self) -> float:
        """Peak bytes per noise cell: a stage's input and output maps are alive together."""
        size = torch.finfo(self.dtype).bits // 8
        widths = (self.info.in_channels, *self.info.params["widths"], self.info.out_channels)
        areas = [4 ** min(i, len(self.stages)) for i in range(len(widths))]
        return size * max(a * c + b * d for a, b, c, d in zip(areas, areas[1:], widths, widths[1:]))


PLANS = {compact.ARCH: CompactPlan, rrdb.ARCH: RRDBPlan, seednet.ARCH: SeedNetPlan, dcgan.ARCH: GeneratorPlan}


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (fp32 accumulation inside the kernels), fp32 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


def build_plan(module: nn.Module, info: ModelInfo, device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None) -> Plan:
    """The inference plan of `module` (described by `info`) on `device` in `dtype`."""
    device = torch.device(device)
    dtype = dtype or default_dtype(device)
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    return PLANS[info.arch](module, info, device, dtype)
