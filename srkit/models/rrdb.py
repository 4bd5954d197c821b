"""ESRGAN / Real-ESRGAN RRDBNet: residual-in-residual dense blocks at low resolution, then nearest x2 + conv
steps. Real-ESRGAN's x2 / x1 models pixel-unshuffle the input first (12 / 48 channels); ESRGAN+ adds 1x1
residual paths inside the dense blocks. Weights load from every key layout in use (original ESRGAN
`model.N`, ESRGAN+, basicsr / Real-ESRGAN, BSRGAN / RealSR): they are renamed to srkit's names (basicsr's,
with `conv_upN` for every upsampling step) and every size is read from their shapes."""

from __future__ import annotations

import math
import re
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels as K
from .arch import Arch, Layout, StateDict, load_strict, parameter_count, sequence_indices
from .info import ModelInfo
from .lowering import BoundProgram, ConvStep, element_size, empty, scratch
from .size_rules import SizeRules

LEAKY_SLOPE = 0.2
RESIDUAL_SCALE = 0.2
# (nearest x2 steps, pixel-unshuffle factor) of srkit's RRDBNet for each scale it trains or builds by scale.
BY_SCALE = {8: (3, 1), 4: (2, 1), 2: (2, 2), 1: (2, 4)}
# Context a tile window takes (blend band included): the exact reach of 23 blocks is ~350 pixels, far beyond any
# useful tile; the dense blocks' influence decays fast, and Real-ESRGAN's own tiler pads by 10 pixels.
TILE_CONTEXT = 16


class DenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier output; out = conv5(...) * 0.2 + x.
    ESRGAN+ (`plus`): conv2's output also gets conv1x1(x), conv4's gets conv2's output."""

    conv5: nn.Conv2d  # conv1 .. conv5 are registered by number; the last one is also called by name

    def __init__(self, features: int, growth: int, plus: bool = False) -> None:
        super().__init__()
        for i in range(1, 6):
            self.add_module(
                f"conv{i}", nn.Conv2d(features + (i - 1) * growth, growth if i < 5 else features, 3, padding=1)
            )
        self.conv1x1 = nn.Conv2d(features, growth, 1, bias=False) if plus else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for i in range(1, 5):
            out = F.leaky_relu(getattr(self, f"conv{i}")(torch.cat(features, 1)), LEAKY_SLOPE)
            if self.conv1x1 is not None and i in (2, 4):
                out = out + (self.conv1x1(x) if i == 2 else features[2])
            features.append(out)
        return self.conv5(torch.cat(features, 1)) * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Three dense blocks with a scaled residual around them."""

    def __init__(self, features: int, growth: int, plus: bool = False) -> None:
        super().__init__()
        self.rdb1 = DenseBlock(features, growth, plus)
        self.rdb2 = DenseBlock(features, growth, plus)
        self.rdb3 = DenseBlock(features, growth, plus)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """[unshuffle], conv_first, num_block RRDBs, conv_body (+ skip), upsamples x (nearest x2, conv, lrelu),
    conv_hr, lrelu, conv_last. Scale = 2^upsamples / shuffle; by default both follow from `scale`."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        features: int = 64,
        num_block: int = 23,
        growth: int = 32,
        scale: int = 4,
        upsamples: int | None = None,
        shuffle: int | None = None,
        plus: bool = False,
    ) -> None:
        super().__init__()
        if upsamples is None or shuffle is None:
            if scale not in BY_SCALE:
                raise ValueError(f"RRDBNet scale must be one of {sorted(BY_SCALE)}, got {scale}")
            upsamples, shuffle = BY_SCALE[scale]
        if shuffle not in (1, 2, 4) or 2**upsamples < shuffle:
            raise ValueError(f"RRDBNet: {upsamples} x2 steps after a x{shuffle} unshuffle is no integer scale")
        self.upsamples, self.shuffle, self.growth = upsamples, shuffle, growth
        self.scale = 2**upsamples // shuffle
        self.conv_first = nn.Conv2d(in_channels * shuffle**2, features, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(features, growth, plus) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        for i in range(1, upsamples + 1):
            self.add_module(f"conv_up{i}", nn.Conv2d(features, features, 3, padding=1))
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2:]
        if self.shuffle > 1:  # odd sizes: reflect to a multiple of the factor, crop the result back
            pad_h, pad_w = (-height) % self.shuffle, (-width) % self.shuffle
            x = F.pixel_unshuffle(F.pad(x, (0, pad_w, 0, pad_h), mode="reflect"), self.shuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.upsamples + 1):
            feat = F.interpolate(feat, scale_factor=2, mode="nearest")
            feat = F.leaky_relu(getattr(self, f"conv_up{i}")(feat), LEAKY_SLOPE)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), LEAKY_SLOPE))
        return out[:, :, : height * self.scale, : width * self.scale]


class RRDBProgram(BoundProgram):
    """Dense blocks write their growth channels into one wide buffer per block (no concatenation); the last dense
    block of each RRDB adds both residuals in its conv's epilogue; x2/x1 inputs arrive unshuffled by the input
    copy; the last conv clamps and packs."""

    def __init__(self, module: RRDBNet, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        self.conv_first = ConvStep.from_conv(module.conv_first, device)
        blocks = cast("list[RRDB]", list(module.body))
        self.blocks = [
            [self._dense_steps(rdb, device) for rdb in (block.rdb1, block.rdb2, block.rdb3)] for block in blocks
        ]
        self.conv_body = ConvStep.from_conv(module.conv_body, device)
        self.conv_up = [
            ConvStep.from_conv(getattr(module, f"conv_up{i}"), device, "leaky_relu", LEAKY_SLOPE)
            for i in range(1, module.upsamples + 1)
        ]
        self.conv_hr = ConvStep.from_conv(module.conv_hr, device, "leaky_relu", LEAKY_SLOPE)
        self.conv_last = ConvStep.from_conv(module.conv_last, device)
        self.shuffle, self.growth = module.shuffle, module.growth
        self.plus = any(len(steps) == 6 for block in self.blocks for steps in block)  # ESRGAN+'s conv1x1s

    @staticmethod
    def _dense_steps(rdb: DenseBlock, device: torch.device) -> list[ConvStep]:
        """conv1..conv5 (the first four with LeakyReLU), then ESRGAN+'s conv1x1 if present."""
        convs = [getattr(rdb, f"conv{i}") for i in range(1, 6)]
        steps = [ConvStep.from_conv(conv, device, "leaky_relu", LEAKY_SLOPE) for conv in convs[:4]]
        steps.append(ConvStep.from_conv(convs[4], device))
        return steps + ([ConvStep.from_conv(rdb.conv1x1, device)] if rdb.conv1x1 is not None else [])

    def input_buffer(self, shape, dtype, device):
        """x2/x1 models: the unshuffled input (N, C*u*u, H/u, W/u) and its view as (N, C, H/u, u, W/u, u), so the
        bound run's input copy is F.pixel_unshuffle (channel c*u*u + i*u + j of pixel (h, w) is input pixel
        (h*u + i, w*u + j) of channel c)."""
        u = self.shuffle
        if u == 1:
            return super().input_buffer(shape, dtype, device)
        n, c, h, w = shape
        buffer, _ = super().input_buffer((n, c * u * u, h // u, w // u), dtype, device)
        return buffer, buffer.permute(0, 2, 3, 1).view(n, h // u, w // u, c, u, u).permute(0, 3, 1, 4, 2, 5)

    def bind(self, x):
        ops, (f, g) = K.ops_for(x), (self.info.features, self.growth)
        h, w = x.shape[2:]
        first = scratch(ops, x, f, h, w)  # conv_first's output, kept for the long skip around the body
        bufs = [empty(x, f + 4 * g, h, w) for _ in range(3)]
        high = [(h << i, w << i) for i in range(1, len(self.conv_up) + 1)]
        # Per higher resolution: the nearest upsample's output and conv_up's; conv_hr writes over the last
        # upsample's, which conv_up has read by then.
        upsampled = [scratch(ops, x, f, *size) for size in high]
        ups = [scratch(ops, x, f, *size) for size in high]
        hr = upsampled[-1] if high else scratch(ops, x, f, h, w)
        side = scratch(ops, x, g, h, w) if self.plus else None  # ESRGAN+'s conv1x1 output
        buffers = (first, bufs, list(zip(upsampled, ups)), hr, side)
        self._run(K.CHECKS, x, None, None, *buffers)
        return lambda x, clamp, out_dtype: self._run(ops, x, clamp, out_dtype, *buffers)

    def _dense_block(
        self,
        ops: K.Ops,
        steps: list[ConvStep],
        buf: torch.Tensor,
        out: torch.Tensor,
        outer: torch.Tensor | None = None,
        side: torch.Tensor | None = None,
    ) -> None:
        """buf[:, :F] holds the block input; conv1..4 append G channels each; conv5 * 0.2 + input -> out, and
        with `outer` (the RRDB's input) that times 0.2 plus `outer`: the RRDB residual in the same epilogue.
        ESRGAN+ (six steps) writes its conv1x1 of the input into `side` (a bound buffer on Triton)."""
        f, g = self.info.features, self.growth
        plus = len(steps) == 6
        for i, step in enumerate(steps[:4]):
            residual = None
            if plus and i == 1:
                residual = steps[5].launch(ops, buf[:, :f], out=side)
            elif plus and i == 3:
                residual = buf[:, f + g : f + 2 * g]
            step.launch(ops, buf[:, : f + i * g], residual, out=buf[:, f + i * g : f + (i + 1) * g])
        steps[4].launch(ops, buf, buf[:, :f], RESIDUAL_SCALE, out, outer, RESIDUAL_SCALE if outer is not None else 1.0)

    def _run(
        self,
        ops: K.Ops,
        x,
        clamp,
        out_dtype,
        first: torch.Tensor | None,
        bufs: list[torch.Tensor],
        ups: list[tuple[torch.Tensor | None, torch.Tensor | None]],
        hr: torch.Tensor | None,
        side: torch.Tensor | None,
    ) -> torch.Tensor:
        f = self.info.features
        first = self.conv_first.launch(ops, x, out=first)
        bufs[0][:, :f].copy_(first)
        for block in self.blocks:
            block_in = bufs[0][:, :f]
            self._dense_block(ops, block[0], bufs[0], bufs[1][:, :f], side=side)
            self._dense_block(ops, block[1], bufs[1], bufs[2][:, :f], side=side)
            # RRDB residual (block output * 0.2 + block input) in conv5's epilogue, into the next block's input.
            self._dense_block(ops, block[2], bufs[2], bufs[1][:, :f], outer=block_in, side=side)
            bufs = [bufs[1], bufs[0], bufs[2]]
        feat = self.conv_body.launch(ops, bufs[0][:, :f], first, out=bufs[1][:, :f])
        for step, (upsampled, out) in zip(self.conv_up, ups):
            feat = step.launch(ops, ops.upsample(feat, 2, "nearest", False, upsampled), out=out)
        feat = self.conv_hr.launch(ops, feat, out=hr)
        last = self.conv_last  # its epilogue clamps and packs (a pixel shuffle of scale 1 without a base)
        return ops.conv2d_pixel_shuffle_add(feat, last.weight, last.bias, 1, None, clamp, out_dtype)

    def activation_bytes_per_pixel(self, dtype):
        f, g, u, steps = self.info.features, self.growth, self.shuffle, len(self.conv_up)
        # Per input pixel, all bound at once: the working-resolution buffers; at each higher resolution (4**i
        # working pixels) the upsample's output and conv_up's (conv_hr's output reuses the last upsample's).
        low = 3 * (f + 4 * g) + f + (g if self.plus else 0)  # ESRGAN+: conv1x1's output
        high = 2 * f * sum(4**i for i in range(1, steps + 1)) if steps else f
        return element_size(dtype) * (low + high) / (u * u)


# Key renames into srkit's names, per layout (applied in order; the original layout's tail is numbered).
_BSRGAN = (
    (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2."),
    (r"^trunk_conv\.", "conv_body."),
    (r"^upconv(\d+)\.", r"conv_up\1."),
    (r"^HRconv\.", "conv_hr."),
)
_ORIGINAL = (
    (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", r"body.\1.rdb\2.conv\3."),
    (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv1x1\.", r"body.\1.rdb\2.conv1x1."),
    (r"^model\.0\.", "conv_first."),
)


def _rename(state_dict: StateDict, rules: tuple[tuple[str, str], ...]) -> StateDict:
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def _from_original(state_dict: StateDict) -> StateDict:
    """The original ESRGAN layout: model.1.sub.<last> is the trunk conv; after the shortcut, the convs at
    model.K (K >= 2) are the upsampling convs, then conv_hr and conv_last (the last two)."""
    state = _rename(state_dict, _ORIGINAL)
    blocks = sequence_indices(state, r"body\.(\d+)\.")
    trunk = max(blocks) + 1 if blocks else 0
    state = _rename(state, ((rf"^model\.1\.sub\.{trunk}\.", "conv_body."),))
    tail = sequence_indices(state, r"model\.(\d+)\.weight$")
    names = [f"conv_up{i}" for i in range(1, len(tail) - 1)] + ["conv_hr", "conv_last"]
    return _rename(state, tuple((rf"^model\.{k}\.", f"{name}.") for k, name in zip(tail, names)))


class RRDBArch(Arch):
    """ESRGAN and its descendants in every key layout; x1/x2 pixel-unshuffle models; any depth and width."""

    id = "rrdb"
    name = "ESRGAN / Real-ESRGAN (RRDBNet)"
    max_context = TILE_CONTEXT
    blend_pixels = 0
    layouts = (
        Layout("ESRGAN+", ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.0.RDB1.conv1x1.weight")),
        Layout("original ESRGAN", ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight")),
        Layout(
            "basicsr",
            ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_hr.weight", "conv_last.weight"),
        ),
        Layout(
            "BSRGAN",
            (
                "conv_first.weight",
                "RRDB_trunk.0.RDB1.conv1.weight",
                "trunk_conv.weight",
                "HRconv.weight",
                "conv_last.weight",
            ),
        ),
    )
    trainable = True

    def load(self, state_dict, hints):
        layout = self.layout_of(state_dict)  # None: metadata named rrdb; read as basicsr's keys, which name a gap
        name = layout.name if layout is not None else "basicsr"
        if name in ("ESRGAN+", "original ESRGAN"):
            state_dict = _from_original(state_dict)
        elif name == "BSRGAN":
            state_dict = _rename(state_dict, _BSRGAN)
        first, last = state_dict["conv_first.weight"], state_dict["conv_last.weight"]
        out_channels, features = last.shape[0], first.shape[0]
        shuffle = math.isqrt(first.shape[1] // out_channels)
        if shuffle not in (1, 2, 4) or shuffle * shuffle * out_channels != first.shape[1]:
            raise ValueError(
                f"conv_first takes {first.shape[1]} channels, which matches no x1/x2/x4 unshuffle "
                f"of {out_channels}-channel images"
            )
        upsamples = len(sequence_indices(state_dict, r"conv_up(\d+)\.weight$"))
        num_block = len(sequence_indices(state_dict, r"body\.(\d+)\.rdb1\.conv1\.weight$"))
        growth = state_dict["body.0.rdb1.conv1.weight"].shape[0] if num_block else 32
        plus = any(key.endswith(".conv1x1.weight") for key in state_dict)
        module = RRDBNet(
            in_channels=out_channels,
            out_channels=out_channels,
            features=features,
            num_block=num_block,
            growth=growth,
            upsamples=upsamples,
            shuffle=shuffle,
            plus=plus,
        )
        load_strict(module, state_dict)
        # Reach in input pixels: conv_first + 15 convs per block + conv_body at the working resolution (a
        # working pixel is `shuffle` input pixels), then the upsampling convs, less than one working pixel.
        radius = (2 + 15 * num_block) * shuffle + shuffle
        variant = ", ".join(
            [name, f"{features}nf", f"{num_block}nb"] + ([f"unshuffle x{shuffle}"] if shuffle > 1 else [])
        )
        info = ModelInfo(
            self.id,
            module.scale,
            out_channels,
            out_channels,
            features,
            num_block,
            parameter_count(module),
            variant=variant,
            size_rules=SizeRules(shuffle, shuffle),
            receptive_radius=radius,
        )
        return module, info

    def lower(self, module, info, device):
        return RRDBProgram(cast(RRDBNet, module), info, device)  # this arch's load built it

    def build(self, *, features, depth, scale, growth):
        return RRDBNet(features=features, num_block=depth, growth=growth, scale=scale)

    def train_multiple(self, scale):
        return BY_SCALE[scale][1]

    def train_scales(self):
        return (2, 4)


ARCH = RRDBArch()
