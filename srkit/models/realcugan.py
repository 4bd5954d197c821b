"""RealCUGAN (the UNet pair with squeeze-excitation of bilibili's Real-CUGAN, se and pro, x2/x3/x4, any denoise
level), from its ncnn graph or from the PyTorch .pth files of the original project (spandrel's key layout).

Both are fed by one rule: the input padded by the border the network crops (18/14/19 pixels at x2/x3/x4), its sides
aligned to 2 (x2, x4) or 4 (x3) in the same pad, the result cropped and at x4 added to the nearest-upsampled input.
The ncnn tools (realcugan-ncnn-vulkan) replicate the edge, the original's PyTorch code reflects; pro networks take
and give values mapped to [0.15, 0.85]. For .pth files srkit's engine aligns every image and tile position itself
(the `multiple_of` size rule), so each window meets the stride-2 stages in the phase the whole image does; the
module's own alignment serves direct calls (export) and equals the original's. The squeeze-excitation averages over
the whole tile, so tiles see slightly different statistics than the whole image (the upstream tools' "sync gap" pass
shares them). Plans run the stride-1 3x3/1x1 convolutions on srkit's fused kernels, the rest (2x2 stride-2
convolutions, transposed convolutions, squeeze-excitation) as torch ops."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .arch import Arch, Layout, load_strict, parameter_count
from .info import ModelInfo
from .lowering import ConvStep
from .ncnn_arch import PARAM_HINT, Feed, GraphArch, NcnnSR, ReplacingProgram, cropped
from .ncnn_graph import Graph
from .size_rules import SizeRules

SLOPE = 0.1  # every activation but the squeeze-excitation's is leaky ReLU(0.1)
BORDERS = {2: 18, 3: 14, 4: 19}  # input pixels the networks crop on each side, by scale
PRO_RANGE = (0.7, 0.15)  # pro networks see x * 0.7 + 0.15 and their output is mapped back
# The 2x2 stride-2 stages shift what an output pixel sees by up to a pixel and a half beyond the cropped border
# (measured by perturbing single input pixels of each network with constant squeeze-excitation gates).
STRIDE_REACH = 2
# The shallow UNet's last transposed convolution by the factor it upsamples: kernel, stride, padding.
SHALLOW_BOTTOM = {2: (4, 2, 3), 3: (5, 3, 2)}
Replace = dict[nn.Module, Callable[[torch.Tensor], torch.Tensor]] | None


def feed(scale: int, border: int, padding: str = "replicate") -> Feed:
    """RealCUGAN's feeding rule at `scale`: `border` padded, sides aligned to the UNets' depth, the x4 residual."""
    return Feed(scale, border, 4 if scale == 3 else 2, residual=scale == 4, padding=padding)


def has_squeeze_excitation(graph: Graph, gate: str) -> bool:
    """True if a global average pooling feeds two InnerProducts, the second with a sigmoid, whose result scales a
    map through a `gate` layer (BinaryOp for RealCUGAN, Scale for waifu2x's cunet)."""
    tops = {layer.tops[0]: layer for layer in graph.layers}
    for layer in graph.layers:
        if layer.type != gate or len(layer.bottoms) != 2:
            continue
        fc2 = tops.get(layer.bottoms[1])
        if fc2 is None or fc2.type != "InnerProduct":
            continue
        fc1 = tops.get(fc2.bottoms[0])
        pool = tops.get(fc1.bottoms[0]) if fc1 is not None and fc1.type == "InnerProduct" else None
        if (
            pool is not None
            and pool.type == "Pooling"
            and pool["global_pooling"]
            and pool["pooling_type"] == 1
            and fc2["activation_type"] == 4
        ):
            return True
    return False


def _crop(x: torch.Tensor, rim: int) -> torch.Tensor:
    """`x` without `rim` pixels on each side."""
    return x[:, :, rim : x.shape[2] - rim, rim : x.shape[3] - rim]


def _up(deconv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """A 2x2 stride-2 transposed convolution, then leaky ReLU."""
    return F.leaky_relu(deconv(x), SLOPE)


class Conv(nn.Conv2d):
    """An unpadded convolution, then leaky ReLU where `activated`; or the call `replace` holds for it (a plan's)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, activated: bool = True) -> None:
        super().__init__(c_in, c_out, kernel, stride)
        self.activated = activated

    def forward(self, x: torch.Tensor, replace: Replace = None) -> torch.Tensor:
        if replace and self in replace:
            return replace[self](x)
        y = super().forward(x)
        return F.leaky_relu(y, SLOPE) if self.activated else y


class SqueezeExcitation(nn.Module):
    """x scaled per channel by sigmoid(conv2(relu(conv1(mean of x over the map)))); the mean in fp32."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.float().mean((2, 3), keepdim=True).to(x.dtype)
        return x * torch.sigmoid(self.conv2(F.relu(self.conv1(mean))))


class Stage(nn.Module):
    """Two unpadded 3x3 convolutions with leaky ReLU, then squeeze-excitation where `se` (keys `conv.0`,
    `conv.2`: the original numbers its activations in between)."""

    def __init__(self, c_in: int, middle: int, c_out: int, se: bool) -> None:
        super().__init__()
        self.conv = nn.ModuleDict({"0": Conv(c_in, middle, 3), "2": Conv(middle, c_out, 3)})
        self.seblock = SqueezeExcitation(c_out) if se else None

    def forward(self, x: torch.Tensor, replace: Replace) -> torch.Tensor:
        x = self.conv["2"](self.conv["0"](x, replace), replace)
        return x if self.seblock is None else self.seblock(x)


class ShallowUNet(nn.Module):
    """One level down and up (the skip cropped by 4), a 3x3 convolution, then a transposed convolution that
    upsamples by `up` (4x4 stride 2, or 5x5 stride 3)."""

    def __init__(self, c_in: int, c_out: int, up: int) -> None:
        super().__init__()
        self.conv1 = Stage(c_in, 32, 64, se=False)
        self.conv1_down = Conv(64, 64, 2, stride=2)
        self.conv2 = Stage(64, 128, 64, se=True)
        self.conv2_up = nn.ConvTranspose2d(64, 64, 2, 2)
        self.conv3 = Conv(64, 64, 3)
        self.conv_bottom = nn.ConvTranspose2d(64, c_out, *SHALLOW_BOTTOM[up])

    def forward(self, x: torch.Tensor, replace: Replace) -> torch.Tensor:
        skip = self.conv1(x, replace)
        deep = _up(self.conv2_up, self.conv2(self.conv1_down(skip, replace), replace))
        return self.conv_bottom(self.conv3(_crop(skip, 4) + deep, replace))


class DeepUNet(nn.Module):
    """Two levels down and up (skips cropped by 16 and 4), squeeze-excitation below the top, two 3x3
    convolutions out; the size shrinks by 20 on each side."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = Stage(c_in, 32, 64, se=False)
        self.conv1_down = Conv(64, 64, 2, stride=2)
        self.conv2 = Stage(64, 64, 128, se=True)
        self.conv2_down = Conv(128, 128, 2, stride=2)
        self.conv3 = Stage(128, 256, 128, se=True)
        self.conv3_up = nn.ConvTranspose2d(128, 128, 2, 2)
        self.conv4 = Stage(128, 64, 64, se=True)
        self.conv4_up = nn.ConvTranspose2d(64, 64, 2, 2)
        self.conv5 = Conv(64, 64, 3)
        self.conv_bottom = Conv(64, c_out, 3, activated=False)

    def forward(self, x: torch.Tensor, replace: Replace) -> torch.Tensor:
        top = self.conv1(x, replace)
        middle = self.conv2(self.conv1_down(top, replace), replace)
        bottom = _up(self.conv3_up, self.conv3(self.conv2_down(middle, replace), replace))
        middle = _up(self.conv4_up, self.conv4(_crop(middle, 4) + bottom, replace))
        return self.conv_bottom(self.conv5(_crop(top, 16) + middle, replace))


class RealCUGAN(nn.Module):
    """The shallow UNet upsamples (x2, x3; x4: to 64 channels at x2), the deep UNet refines, both added; x4 ends
    in a 3x3 convolution and a 2x pixel shuffle. Fed by `feed` with reflection, as the original code pads."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, scale: int = 2, pro: bool = False) -> None:
        super().__init__()
        self.scale, self.is_pro, self.feed = scale, pro, feed(scale, BORDERS[scale], "reflect")
        if pro:
            self.register_buffer("pro", torch.zeros(1))  # the original's marker, kept so its keys load
        width = 64 if scale == 4 else out_channels
        self.unet1 = ShallowUNet(in_channels, width, 3 if scale == 3 else 2)
        self.unet2 = DeepUNet(width, width)
        if scale == 4:
            self.conv_final = Conv(64, 4 * out_channels, 3, activated=False)

    def network(self, x: torch.Tensor, replace: Replace = None) -> torch.Tensor:
        """The padded input -> the upscaled image, `BORDERS[scale]` pixels per side cropped."""
        shallow = self.unet1(x, replace)
        y = self.unet2(shallow, replace) + _crop(shallow, 20)
        return F.pixel_shuffle(_crop(self.conv_final(y, replace), 1), 2) if self.scale == 4 else y

    def forward(self, x: torch.Tensor, replace: Replace = None) -> torch.Tensor:
        gain, offset = PRO_RANGE
        y = self.feed(x * gain + offset if self.is_pro else x, lambda padded: self.network(padded, replace))
        return (y - offset) / gain if self.is_pro else y


def fused_convs(module: RealCUGAN, device: torch.device) -> dict[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """Every stride-1 convolution of `module` (all 3x3) as a call of srkit's fused conv kernel with its leaky ReLU,
    run padded and its rim cropped."""
    return {
        conv: cropped(
            ConvStep.from_conv(conv, device, "leaky_relu" if conv.activated else "none", SLOPE),
            conv.kernel_size[0] // 2,
        )
        for conv in module.modules()
        if isinstance(conv, Conv) and conv.stride == (1, 1)
    }


def _is_fast(state_dict) -> bool:
    """The '2x fast' variant (pixel-unshuffled input, conv_final): not this architecture's; spandrel runs it."""
    return (
        "conv_final.weight" in state_dict
        and state_dict["conv_final.weight"].shape[0] == state_dict["unet1.conv1.conv.0.weight"].shape[1]
    )


class RealCuganArch(GraphArch):
    """RealCUGAN se / pro at x2, x3, x4: ncnn files (recognised by their graph) and .pth files in the original
    project's key layout (spandrel's, detected by key), any denoise level."""

    id = "realcugan"
    name = "RealCUGAN (UNet with squeeze-excitation)"
    max_context = None  # its exact radius, unlike other graphs' (tiled results match the whole image's)
    fused = True
    layouts = (
        Layout(
            "Real-CUGAN",
            tuple(
                f"{prefix}.{name}.weight"
                for prefix, names in (
                    (
                        "unet1",
                        (
                            "conv1.conv.0",
                            "conv1.conv.2",
                            "conv1_down",
                            "conv2.conv.0",
                            "conv2.conv.2",
                            "conv2.seblock.conv1",
                            "conv2_up",
                            "conv_bottom",
                        ),
                    ),
                    (
                        "unet2",
                        (
                            "conv1.conv.0",
                            "conv1_down",
                            "conv2.conv.0",
                            "conv2.seblock.conv1",
                            "conv3.conv.0",
                            "conv3.seblock.conv1",
                            "conv3_up",
                            "conv4.conv.0",
                            "conv4_up",
                            "conv5",
                            "conv_bottom",
                        ),
                    ),
                )
                for name in names
            ),
        ),
    )

    def detect(self, state_dict):
        """A .pth in the original's layout (graph weights mean nothing without their .param: never detected)."""
        return Arch.detect(self, state_dict) and not _is_fast(state_dict)

    def matches(self, graph):
        return has_squeeze_excitation(graph, "BinaryOp") and any(
            layer.type == "Deconvolution" for layer in graph.layers
        )

    def feed(self, graph, probed):
        return feed(probed.scale, probed.border)

    def variant(self, graph, feed):
        return f"x{feed.scale} UNet{'s' if feed.scale > 1 else ''} with squeeze-excitation, border {feed.border}"

    def load(self, state_dict, hints):
        if PARAM_HINT in hints:
            return super().load(state_dict, hints)
        in_channels = state_dict["unet1.conv1.conv.0.weight"].shape[1]
        if "conv_final.weight" in state_dict:
            scale, out_channels = 4, state_dict["conv_final.weight"].shape[0] // 4
        else:
            scale = 3 if state_dict["unet1.conv_bottom.weight"].shape[2] == 5 else 2
            out_channels = state_dict["unet2.conv_bottom.weight"].shape[0]
        if scale == 4 and out_channels != in_channels:
            raise ValueError(
                f"x4 adds its input to its output, but it takes {in_channels} channels and gives {out_channels}"
            )
        pro = "pro" in state_dict
        module = RealCUGAN(in_channels=in_channels, out_channels=out_channels, scale=scale, pro=pro)
        load_strict(module, state_dict)
        convs = [
            m
            for name, m in module.named_modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and ".seblock." not in name
        ]
        # Sides and tile positions aligned to the UNets' depth: a window at an odd offset would see the stride-2
        # stages at another phase than the whole image does. The engine reflects an image up to that size, so
        # the module's own alignment (the original's one reflection of border and alignment) runs only when it is
        # called directly; at least border + alignment, so the reflection fits (each pad below the side).
        border = BORDERS[scale]
        radius = border + STRIDE_REACH
        info = ModelInfo(
            self.id,
            scale,
            in_channels,
            out_channels,
            max(conv.out_channels for conv in convs),
            len(convs),
            parameter_count(module),
            variant=f"{'pro' if pro else 'se'} x{scale} UNets with squeeze-excitation, border {border}",
            size_rules=SizeRules(module.feed.align, border + module.feed.align),
            receptive_radius=radius,
        )
        return module, info

    def hints(self, module):
        return super().hints(module) if isinstance(module, NcnnSR) else {}

    def lower(self, module, info, device):
        if isinstance(module, NcnnSR):
            return super().lower(module, info, device)
        return ReplacingProgram(module, info, device, fused_convs(module, device))


ARCH = RealCuganArch()
