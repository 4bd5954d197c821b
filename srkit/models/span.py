"""SPAN (Swift Parameter-free Attention Network, Wan et al. 2024): six attention blocks of re-parameterisable
convolutions, a 1x1 fusion of four feature maps, and a pixel-shuffle head.

Every `Conv3XC` trains as a 1x1 -> 3x3 -> 1x1 chain plus a 1x1 skip; at inference that is one 3x3 conv. srkit
folds the branches into `eval_conv` once, at load (the reference implementation refolds on every eval
forward). A block is SiLU(c1) -> SiLU(c2) -> c3, and its output is (c3 + x) * (sigmoid(c3) - 0.5); the last
block's SiLU(c1) is also one of the fused maps (the reference returns c1's output, which its in-place SiLU has
already overwritten, so trained weights expect the activated map). Input
normalisation ((x - mean) * 255) is on unless the checkpoint carries the `no_norm` marker; the head's output
is used as it is. The fused plan writes the four fused maps as channel slices of one buffer and puts the pixel
shuffle on the last conv."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels as K
from .arch import Arch, Layout, load_strict, parameter_count
from .info import ModelInfo
from .lowering import BoundProgram, ConvStep, element_size, empty, scratch

RGB_MEAN = (0.4488, 0.4371, 0.4040)
IMAGE_RANGE = 255.0
GAIN = 2  # width multiplier of the inner 1x1 -> 3x3 -> 1x1 chain
BLOCKS = 6


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    """The bias of a conv built with one (every conv here is)."""
    return cast(torch.Tensor, conv.bias)


class Conv3XC(nn.Module):
    """A 3x3 conv kept as its training branches (sk: 1x1; conv: 1x1, 3x3 unpadded, 1x1) and their fold."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_in * GAIN, 1), nn.Conv2d(c_in * GAIN, c_out * GAIN, 3), nn.Conv2d(c_out * GAIN, c_out, 1)
        )
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Set eval_conv to the branches folded into one 3x3 conv (in float64, then rounded once)."""
        convs = cast("list[nn.Conv2d]", list(self.conv))
        w1, w2, w3 = (layer.weight.double() for layer in convs)
        b1, b2, b3 = (_bias(layer).double() for layer in convs)
        weight = torch.einsum("oa,abhw,bi->oihw", w3[:, :, 0, 0], w2, w1[:, :, 0, 0])
        bias = w3[:, :, 0, 0] @ (b2 + torch.einsum("abhw,b->a", w2, b1)) + b3
        weight[:, :, 1, 1] += self.sk.weight.double()[:, :, 0, 0]
        self.eval_conv.weight.copy_(weight)
        _bias(self.eval_conv).copy_(bias + _bias(self.sk).double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eval_conv(x)


class AttentionBlock(nn.Module):
    """SPAB: three Conv3XC with SiLU between; returns ((c3 + x) * (sigmoid(c3) - 0.5), SiLU(c1))."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.c1_r = Conv3XC(features, features)
        self.c2_r = Conv3XC(features, features)
        self.c3_r = Conv3XC(features, features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.silu(self.c1_r(x))
        out3 = self.c3_r(F.silu(self.c2_r(hidden)))
        return (out3 + x) * (torch.sigmoid(out3) - 0.5), hidden


class SPAN(nn.Module):
    """conv_1, six attention blocks, conv_2, conv_cat(cat[conv_1, conv_2, block 1, block 6's c1]), shuffle head.
    Inference only: call `reparameterize()` after loading weights."""

    mean: torch.Tensor  # a registered buffer
    block_1: AttentionBlock  # the blocks are registered by number; the first is also called by name

    def __init__(
        self, *, in_channels: int = 3, out_channels: int = 3, features: int = 48, scale: int = 4, norm: bool = True
    ) -> None:
        super().__init__()
        self.scale, self.norm = scale, norm
        if not norm:
            self.register_buffer("no_norm", torch.zeros(1))
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_1 = Conv3XC(in_channels, features)
        for i in range(1, BLOCKS + 1):
            self.add_module(f"block_{i}", AttentionBlock(features))
        self.conv_cat = nn.Conv2d(features * 4, features, 1)
        self.conv_2 = Conv3XC(features, features)
        self.upsampler = nn.Sequential(
            nn.Conv2d(features, out_channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def reparameterize(self) -> SPAN:
        """Fold every Conv3XC's branches into its eval_conv; returns self."""
        for layer in self.modules():
            if isinstance(layer, Conv3XC):
                layer.reparameterize()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm:
            x = (x - self.mean.to(x.dtype)) * IMAGE_RANGE
        first = self.conv_1(x)
        out, _ = self.block_1(first)
        block_1 = out
        for i in range(2, BLOCKS + 1):
            out, hidden = getattr(self, f"block_{i}")(out)
        joined = torch.cat([first, self.conv_2(out), block_1, hidden], 1)
        return self.upsampler(self.conv_cat(joined))


class SPANProgram(BoundProgram):
    """The four fused maps are channel slices of one buffer; SiLU and the attention gate are conv epilogues."""

    def __init__(self, module: SPAN, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        self.mean = module.mean.to(device) if module.norm else None
        self.conv_1 = ConvStep.from_conv(module.conv_1.eval_conv, device)
        self.blocks = [
            [
                ConvStep.from_conv(getattr(block, f"c{j}_r").eval_conv, device, act)
                for j, act in ((1, "silu"), (2, "silu"), (3, "gate"))
            ]
            for block in (getattr(module, f"block_{i}") for i in range(1, BLOCKS + 1))
        ]
        self.conv_2 = ConvStep.from_conv(module.conv_2.eval_conv, device)
        self.conv_cat = ConvStep.from_conv(module.conv_cat, device)
        self.head = ConvStep.from_conv(cast(nn.Conv2d, module.upsampler[0]), device)

    def bind(self, x):
        ops, f = K.ops_for(x), self.info.features
        _, c, h, w = x.shape
        normed = empty(x, c, h, w) if self.mean is not None else None
        joined = empty(x, 4 * f, h, w)  # conv_1, conv_2, block 1 and block 6's SiLU(c1): conv_cat's input
        ping_pong = [empty(x, f, h, w) for _ in range(2)]  # block outputs (read as the next block's residual)
        inner = [scratch(ops, x, f, h, w) for _ in range(2)]  # c1 and c2 inside a block; then conv_cat's output
        mean = None if self.mean is None else self.mean.to(x.dtype)
        buffers = (mean, normed, joined, ping_pong, inner)
        self._run(K.CHECKS, x, None, None, *buffers)
        return lambda x, clamp, out_dtype: self._run(ops, x, clamp, out_dtype, *buffers)

    def _run(
        self,
        ops: K.Ops,
        x,
        clamp,
        out_dtype,
        mean: torch.Tensor | None,
        normed: torch.Tensor | None,
        joined: torch.Tensor,
        ping_pong: list[torch.Tensor],
        inner: list[torch.Tensor | None],
    ) -> torch.Tensor:
        if mean is not None:  # rounded as the module rounds it: the one-pass 255x - 255mean measured 2.7x further
            # from spandrel's float64 run on random SPAN weights (1.1e-4 of the peak vs 4e-5)
            x = torch.sub(x, mean, out=normed).mul_(IMAGE_RANGE)
        f = self.info.features
        first, fused, block_1, hidden = (joined[:, i * f : (i + 1) * f] for i in range(4))
        self.conv_1.launch(ops, x, out=first)
        current = first
        for i, (c1, c2, c3) in enumerate(self.blocks, start=1):
            out = block_1 if i == 1 else ping_pong[i % 2]
            # c3's gate epilogue: (c3 + block input) * (sigmoid(c3) - 0.5); the last block's SiLU(c1) is a fused map.
            t = c1.launch(ops, current, out=hidden if i == BLOCKS else inner[0])
            c3.launch(ops, c2.launch(ops, t, out=inner[1]), current, out=out)
            current = out
        self.conv_2.launch(ops, current, out=fused)
        cat = self.conv_cat.launch(ops, joined, out=inner[0])
        return ops.conv2d_pixel_shuffle_add(
            cat, self.head.weight, self.head.bias, self.info.net_scale, None, clamp, out_dtype
        )

    def activation_bytes_per_pixel(self, dtype):
        f, c, s = self.info.features, self.info.out_channels, self.info.net_scale
        # Bound at once: the normalised input, the four fused maps, two block outputs, two scratch maps; then the
        # head's transients (the reference kernel's conv result and its shuffle).
        return element_size(dtype) * (c + 4 * f + 4 * f + 2 * c * s * s)


class SPANArch(Arch):
    """SPAN in its reference key layout (branches and eval_conv stored), any width and scale, with or without
    input normalisation."""

    id = "span"
    name = "SPAN"
    layouts = (
        Layout(
            "reference",
            (
                "conv_1.sk.weight",
                "block_1.c1_r.sk.weight",
                "block_1.c1_r.eval_conv.weight",
                "block_1.c3_r.eval_conv.weight",
                "conv_cat.weight",
                "conv_2.sk.weight",
                "conv_2.eval_conv.weight",
                "upsampler.0.weight",
            ),
        ),
    )

    def load(self, state_dict, hints):
        in_channels, features = state_dict["conv_1.sk.weight"].shape[1], state_dict["conv_1.sk.weight"].shape[0]
        head = state_dict["upsampler.0.weight"].shape[0]
        scale = round((head / in_channels) ** 0.5)
        if scale * scale * in_channels != head:
            raise ValueError(f"upsampler has {head} outputs, not {in_channels} x scale^2")
        norm = "no_norm" not in state_dict
        module = SPAN(in_channels=in_channels, out_channels=in_channels, features=features, scale=scale, norm=norm)
        load_strict(module, state_dict)
        module.reparameterize()
        radius = 1 + 3 * BLOCKS + 1 + 1  # conv_1, three 3x3 convs per block, conv_2, the head (conv_cat is 1x1)
        info = ModelInfo(
            self.id,
            scale,
            in_channels,
            in_channels,
            features,
            BLOCKS,
            parameter_count(module),
            variant=f"{features}nf" + ("" if norm else ", no_norm"),
            receptive_radius=radius,
        )
        return module, info

    def lower(self, module, info, device):
        return SPANProgram(cast(SPAN, module), info, device)  # this arch's load built it


ARCH = SPANArch()
