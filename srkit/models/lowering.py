"""What an architecture lowers to: a Program of srkit.kernels calls on weights held on one device.

Activations are NCHW channels_last tensors in the program's dtype. A ConvStep is one fused convolution
(bias, activation, residuals, channel-slice output); `finish` clamps and packs a full-resolution result;
a BoundProgram does its work in `bind` (buffers allocated, kernels chosen and every launch checked once, through
`kernels.CHECKS`), its per-call `forward` binds and runs; EagerProgram runs a module as it is (architectures
srkit has not fused).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import kernels as K
from .info import ModelInfo


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
    def from_conv(
        cls,
        conv: nn.Conv2d,
        device: torch.device,
        act: str = "none",
        slope: float | torch.Tensor = 0.2,
        padding_mode: str = "zeros",
    ) -> ConvStep:
        """The step of `conv` (its weight and bias copied to `device` in fp32) followed by `act`."""
        bias = None if conv.bias is None else conv.bias.detach().float().to(device)
        if isinstance(slope, torch.Tensor):
            slope = slope.detach().float().to(device)
        return cls(conv.weight.detach().float().to(device), bias, act, slope, padding_mode)

    def __call__(
        self,
        x: torch.Tensor,
        residual: torch.Tensor | None = None,
        res_scale: float = 1.0,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.transposed:
            return K.conv_transpose2d_act(
                x, self.weight, self.bias, self.act, self.slope, padding_mode=self.padding_mode, out=out
            )
        return K.conv2d_act(
            x,
            self.weight,
            self.bias,
            self.act,
            self.slope,
            residual=residual,
            res_scale=res_scale,
            padding_mode=self.padding_mode,
            out=out,
        )

    def launch(
        self,
        ops: K.Ops,
        x: torch.Tensor,
        residual: torch.Tensor | None = None,
        res_scale: float = 1.0,
        out: torch.Tensor | None = None,
        outer_residual: torch.Tensor | None = None,
        outer_scale: float = 1.0,
        clamp: tuple[float, float] | None = None,
        out_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """This (non-transposed) step through kernels chosen once: `ops_for`'s (unchecked) or `kernels.CHECKS`;
        `clamp` and `out_dtype` make it a last step that writes the final image."""
        return ops.conv2d_act(
            x,
            self.weight,
            self.bias,
            self.act,
            self.slope,
            residual=residual,
            res_scale=res_scale,
            padding_mode=self.padding_mode,
            out=out,
            outer_residual=outer_residual,
            outer_scale=outer_scale,
            clamp=clamp,
            out_dtype=out_dtype,
        )


def empty(like: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """An uninitialised channels_last activation of `like`'s batch, dtype and device."""
    return torch.empty(
        (like.shape[0], channels, height, width),
        dtype=like.dtype,
        device=like.device,
        memory_format=torch.channels_last,
    )


def scratch(ops: K.Ops, like: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor | None:
    """A bound plan's buffer for a launch whose output is no slice of a wider map: allocated once on Triton, None
    (the kernel allocates) for the reference kernels, whose PyTorch ops allocate their result anyway, so writing it
    into a buffer would add a copy."""
    return empty(like, channels, height, width) if ops.backend == "triton" else None


def finish(y: torch.Tensor, clamp: tuple[float, float] | None, out_dtype: torch.dtype | None) -> torch.Tensor:
    """Clamp / pack a full-resolution result (pixel_shuffle_add with scale 1 is exactly that epilogue)."""
    if clamp is None and out_dtype is None:
        return y
    return K.pixel_shuffle_add(y, 1, clamp=clamp, out_dtype=out_dtype)


def element_size(dtype: torch.dtype) -> int:
    """Bytes per element of a float dtype."""
    return torch.finfo(dtype).bits // 8


Forward = Callable[[torch.Tensor, "tuple[float, float] | None", "torch.dtype | None"], torch.Tensor]


class Program(ABC):
    """A network as kernel calls: forward(x) on a prepared batch (N, C, H, W) returns (N, C', H*s, W*s)."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info

    @abstractmethod
    def forward(
        self, x: torch.Tensor, clamp: tuple[float, float] | None, out_dtype: torch.dtype | None
    ) -> torch.Tensor:
        """The network's output for a prepared batch, clamped and converted in its last pass."""

    def input_buffer(
        self, shape: tuple[int, int, int, int], dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the input a bound run reads, the view of it that receives the (N, C, H, W) batch as
        `view.copy_(batch.reshape(view.shape))`), zeroed: one channels_last buffer, both, unless the program
        wants its input laid out otherwise (RRDB's unshuffled x2/x1 input: the copy does the unshuffle)."""
        buffer = torch.empty(shape, dtype=dtype, device=device, memory_format=torch.channels_last).zero_()
        return buffer, buffer

    def bind(self, x: torch.Tensor) -> Forward:
        """forward for batches shaped, typed and placed like `x` (an `input_buffer`) only: programs that
        preallocate their activations and choose their kernels once override this; the others run forward."""
        return self.forward

    @abstractmethod
    def activation_bytes_per_pixel(self, dtype: torch.dtype) -> float:
        """Peak activation bytes per input pixel in `dtype` (for choosing a tile that fits in memory)."""


class BoundProgram(Program):
    """A program whose work is all in `bind`; forward, the per-call path, lays out its batch as a bound run's input
    copy does, binds for that shape and runs once."""

    def forward(self, x, clamp, out_dtype):
        n, c, h, w = x.shape
        buffer, batch = self.input_buffer((n, c, h, w), x.dtype, x.device)
        batch.copy_(x.reshape(batch.shape))
        return self.bind(buffer)(buffer, clamp, out_dtype)

    @abstractmethod
    def bind(self, x: torch.Tensor) -> Forward:
        """The network on buffers allocated once for inputs like `x`, with kernels chosen by `kernels.ops_for`
        and every launch checked once, through `kernels.CHECKS`, on the tensors it will see."""


class EagerProgram(Program):
    """The module itself run in the plan's dtype (architectures without a fused lowering)."""

    # Without a lowering the peak is unknown (spandrel does not publish widths): assume four maps of at least
    # 64 channels alive at output size, a guess on the safe side for convolutional networks; attention-based
    # ones may need more, and the tiler's out-of-memory back-off covers the rest.
    LIVE_MAPS = 4
    MIN_FEATURES = 64

    def __init__(self, module: nn.Module, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        self.module = module.to(device).eval()

    def forward(self, x, clamp, out_dtype):
        self.module.to(x.dtype)
        return finish(self.module(x).contiguous(memory_format=torch.channels_last), clamp, out_dtype)

    def activation_bytes_per_pixel(self, dtype: torch.dtype) -> float:
        maps = self.LIVE_MAPS * max(self.info.features, self.MIN_FEATURES)
        return element_size(dtype) * maps * self.info.net_scale**2
