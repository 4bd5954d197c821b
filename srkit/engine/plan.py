"""Inference plans: an architecture's lowered Program on one device and dtype, with the size rules applied.

`build_plan` asks the model's Arch to lower the module once (weights copied to the device); `Plan.run` moves a
batch to the plan's device, dtype and channels_last layout, pads it to the model's size rules (a multiple of
`multiple_of`, at least `min_size`: reflected, cropped again after the run) and runs the program, whose last
step clamps and, if asked, packs to uint8/uint16 HWC.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SrkitError
from ..models.info import ModelInfo
from ..models.lowering import EagerProgram, Program, finish
from ..models.registry import by_id


DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (fp32 accumulation inside the kernels), fp32 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


def padded_size(height: int, width: int, info: ModelInfo) -> tuple[int, int]:
    """The smallest (height, width) at least as large that meets the model's size rules."""
    def side(size: int) -> int:
        size = max(size, info.min_size)
        return size + (-size) % info.multiple_of

    height, width = side(height), side(width)
    return (max(height, width),) * 2 if info.square else (height, width)


def pad_to_rules(x: torch.Tensor, info: ModelInfo) -> torch.Tensor:
    """x padded at the bottom and right to the size rules: reflected as far as the image allows (one pixel
    less than its side), then the edge repeated."""
    height, width = x.shape[2:]
    target_h, target_w = padded_size(height, width, info)
    if (target_h, target_w) == (height, width):
        return x
    reflect_h, reflect_w = min(target_h - height, height - 1), min(target_w - width, width - 1)
    x = F.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
    x = F.pad(x, (0, target_w - width - reflect_w, 0, target_h - height - reflect_h), mode="replicate")
    return x.contiguous(memory_format=torch.channels_last)


class Plan:
    """A model as kernel calls. run(x) with x (N, C, H, W) in [0, 1] returns (N, C', H*s, W*s)."""

    def __init__(self, info: ModelInfo, program: Program, device: torch.device, dtype: torch.dtype) -> None:
        self.info = info
        self.program = program
        self.device = device
        self.dtype = dtype

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Move an input batch to the plan's device, dtype and memory format."""
        return x.to(device=self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)

    def run(self, x: torch.Tensor, clamp: tuple[float, float] | None = None,
            out_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The network's output for x; clamped to `clamp` and converted to `out_dtype` in its last pass."""
        height, width = x.shape[2:]
        with torch.inference_mode():
            padded = pad_to_rules(self.prepare(x), self.info)
            if padded.shape[2:] == x.shape[2:]:
                return self.program.forward(padded, clamp, out_dtype)
            s = self.info.scale
            y = self.program.forward(padded, clamp, None)[:, :, :height * s, :width * s]
            return finish(y, None, out_dtype) if out_dtype is not None else y

    def activation_bytes_per_pixel(self) -> float:
        """Peak activation bytes per input pixel (for choosing a tile that fits in memory)."""
        return self.program.activation_bytes_per_pixel(self.dtype)


def build_plan(module: nn.Module, info: ModelInfo, device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None) -> Plan:
    """The inference plan of `module` (described by `info`) on `device` in `dtype`."""
    device = torch.device(device)
    if dtype is None:  # the device's default where the model supports it, else fp32
        dtype = default_dtype(device)
        dtype = dtype if DTYPE_NAMES[dtype] in info.dtypes else torch.float32
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    if DTYPE_NAMES[dtype] not in info.dtypes:
        raise SrkitError(f"{info.arch} models do not run accurately in {DTYPE_NAMES[dtype]}; use --dtype "
                         f"{' or '.join(info.dtypes)}")
    arch = by_id(info.arch)
    program = arch.lower(module, info, device) if arch is not None and info.fused else \
        EagerProgram(module, info, device)
    return Plan(info, program, device, dtype)
