"""srkit's kernel layer: each public op runs a Triton kernel on CUDA tensors and its PyTorch twin otherwise.

SRKIT_KERNELS (read on every call, or once by `ops_for` for a bound plan) chooses: `auto` (default: Triton for
CUDA tensors, reference elsewhere), `triton` (always Triton; CPU tensors only with TRITON_INTERPRET=1 set before
import), `reference` (always the PyTorch reference: debugging, A/B benchmarks). This module is the only dispatcher.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch

from . import _args, reference
from ._launch import INTERPRETING, TRITON_AVAILABLE

# The checker reads the Triton modules as always there: backend_for chooses Triton only where triton imported.
if TYPE_CHECKING or TRITON_AVAILABLE:
    from . import triton_conv as _triton_conv
    from . import triton_pixel_shuffle as _triton_shuffle
    from . import triton_upsample as _triton_upsample
else:  # pragma: no cover - exercised only on platforms without triton
    _triton_conv = _triton_shuffle = _triton_upsample = None

__all__ = [
    "conv2d_act",
    "conv_transpose2d_act",
    "conv2d_pixel_shuffle_add",
    "upsample",
    "pixel_shuffle_add",
    "backend_for",
    "describe_backend",
    "reference",
    "Ops",
    "ops_for",
    "CHECKS",
]

BACKEND_ENV = "SRKIT_KERNELS"
BACKENDS = ("auto", "triton", "reference")


def requested_backend() -> str:
    """The SRKIT_KERNELS setting, checked."""
    value = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={value!r} is not one of {', '.join(BACKENDS)}")
    return value


def backend_for(x: torch.Tensor) -> str:
    """'triton' or 'reference': which implementation an op on tensor `x` will run."""
    choice = requested_backend()
    if choice == "reference" or not isinstance(x, torch.Tensor):  # the reference's checks name a non-tensor argument
        return "reference"
    if choice == "auto":
        return "triton" if x.is_cuda and TRITON_AVAILABLE else "reference"
    if not TRITON_AVAILABLE:
        raise RuntimeError(f"{BACKEND_ENV}=triton but triton is not installed (it ships for Linux x86-64 only)")
    if not x.is_cuda and not INTERPRETING:
        raise RuntimeError(
            f"{BACKEND_ENV}=triton on a {x.device} tensor needs TRITON_INTERPRET=1 set before "
            "srkit is imported (Triton's CPU interpreter); or use CUDA tensors"
        )
    return "triton"


def describe_backend(device: torch.device | str) -> str:
    """One line saying which kernels run for tensors on `device`, and why (for `srkit info`)."""
    device = torch.device(device)
    try:
        choice = requested_backend()
    except ValueError as error:
        return f"invalid ({error})"
    if choice == "reference":
        return f"reference (PyTorch; forced by {BACKEND_ENV}=reference)"
    if device.type == "cuda":
        if not TRITON_AVAILABLE:
            return "reference (PyTorch; triton is not installed)"
        return f"triton (compiled for CUDA{'; forced' if choice == 'triton' else ''})"
    if choice == "triton":
        if TRITON_AVAILABLE and INTERPRETING:
            return "triton (CPU interpreter, TRITON_INTERPRET=1; slow, for tests)"
        return f"none: {BACKEND_ENV}=triton needs CUDA or TRITON_INTERPRET=1 (ops on {device} will raise)"
    return f"reference (PyTorch on {device.type}; Triton runs on CUDA tensors)"


def conv2d_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    act: str = "none",
    slope: float | torch.Tensor = 0.2,
    **epilogue,
) -> torch.Tensor:
    """act(conv(x) + bias) * res_scale + residual [then * outer_scale + outer_residual], 1x1/3x3 same padding,
    clamped, optionally as a uint8/uint16 HWC image; the epilogue (residual, res_scale, padding_mode, out,
    outer_residual, outer_scale, clamp, out_dtype) by keyword only; see reference.conv2d_act."""
    impl = _triton_conv if backend_for(x) == "triton" else reference
    return impl.conv2d_act(x, weight, bias, act, slope, **epilogue)


def conv_transpose2d_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    act: str = "none",
    slope: float | torch.Tensor = 0.2,
    *,
    padding_mode: str = "zeros",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """act(ConvTranspose2d(k4, s2, p1)(x) + bias); see reference.conv_transpose2d_act."""
    impl = _triton_conv if backend_for(x) == "triton" else reference
    return impl.conv_transpose2d_act(x, weight, bias, act, slope, padding_mode=padding_mode, out=out)


def upsample(
    x: torch.Tensor, scale: int, mode: str = "nearest", align_corners: bool = False, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Integer-factor nearest/bilinear/bicubic upsampling equal to F.interpolate, into `out` if given; see
    reference.upsample."""
    impl = _triton_upsample if backend_for(x) == "triton" else reference
    return impl.upsample(x, scale, mode, align_corners, out)


def pixel_shuffle_add(
    y: torch.Tensor,
    scale: int,
    base: torch.Tensor | None = None,
    base_mode: str = "nearest",
    clamp: tuple[float, float] | None = None,
    out_dtype: torch.dtype | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """pixel_shuffle(y) + upsample(base), clamped, optionally as a uint8/uint16 HWC image, or into a float `out`;
    see the reference."""
    impl = _triton_shuffle if backend_for(y) == "triton" else reference
    return impl.pixel_shuffle_add(y, scale, base, base_mode, clamp, out_dtype, out)


def conv2d_pixel_shuffle_add(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    scale: int,
    base: torch.Tensor | None = None,
    clamp: tuple[float, float] | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Last conv + pixel shuffle + nearest base + clamp (+ uint8/uint16 HWC) in one pass; see the reference."""
    impl = _triton_conv if backend_for(x) == "triton" else reference
    return impl.conv2d_pixel_shuffle_add(x, weight, bias, scale, base, clamp, out_dtype)


@dataclass(frozen=True)
class Ops:
    """The implementations chosen for one bound plan: the dispatcher consulted once, convolutions unchecked
    (the plan checked its shapes once, when it was bound)."""

    backend: str
    conv2d_act: Callable[..., torch.Tensor]
    conv2d_pixel_shuffle_add: Callable[..., torch.Tensor]
    upsample: Callable[..., torch.Tensor]
    pixel_shuffle_add: Callable[..., torch.Tensor]


def ops_for(x: torch.Tensor) -> Ops:
    """The ops that tensors like `x` run on, with SRKIT_KERNELS read now rather than on every launch."""
    if backend_for(x) == "triton":
        return Ops(
            "triton",
            partial(_triton_conv.conv2d_act, checked=False),
            partial(_triton_conv.conv2d_pixel_shuffle_add, checked=False),
            _triton_upsample.upsample,
            _triton_shuffle.pixel_shuffle_add,
        )
    return Ops(
        "reference",
        partial(reference.conv2d_act, checked=False),
        partial(reference.conv2d_pixel_shuffle_add, checked=False),
        reference.upsample,
        reference.pixel_shuffle_add,
    )


def _new(like: torch.Tensor, shape: tuple[int, int, int, int], dtype: torch.dtype | None = None) -> torch.Tensor:
    """An uninitialised (N, C, H, W) result: channels_last, or an (N, H, W, C) image for integer dtypes."""
    _, c, h, w = shape
    return reference.new_result(like, c, h, w, dtype)[0]


def _check_conv2d_act(
    x,
    weight,
    bias=None,
    act="none",
    slope=0.2,
    *,
    residual=None,
    res_scale=1.0,
    padding_mode="zeros",
    out=None,
    outer_residual=None,
    outer_scale=1.0,
    clamp=None,
    out_dtype=None,
) -> torch.Tensor:
    _args.check_conv2d_act(
        x,
        weight,
        bias,
        act,
        slope,
        residual,
        res_scale,
        padding_mode,
        out,
        outer_residual,
        outer_scale,
        clamp,
        out_dtype,
    )
    return out if out is not None else _new(x, (x.shape[0], weight.shape[0], x.shape[2], x.shape[3]), out_dtype)


def _check_conv2d_pixel_shuffle_add(x, weight, bias, scale, base=None, clamp=None, out_dtype=None) -> torch.Tensor:
    scale = _args.check_conv2d_pixel_shuffle_add(x, weight, bias, scale, base, clamp, out_dtype)
    return _new(x, (x.shape[0], weight.shape[0] // scale**2, x.shape[2] * scale, x.shape[3] * scale), out_dtype)


def _check_upsample(x, scale, mode="nearest", align_corners=False, out=None) -> torch.Tensor:
    scale = _args.check_upsample(x, scale, mode, align_corners, out)
    return out if out is not None else _new(x, (x.shape[0], x.shape[1], x.shape[2] * scale, x.shape[3] * scale))


def _check_pixel_shuffle_add(
    y, scale, base=None, base_mode="nearest", clamp=None, out_dtype=None, out=None
) -> torch.Tensor:
    scale = _args.check_pixel_shuffle_add(y, scale, base, base_mode, clamp, out_dtype, out)
    return (
        out
        if out is not None
        else _new(y, (y.shape[0], y.shape[1] // scale**2, y.shape[2] * scale, y.shape[3] * scale), out_dtype)
    )


# Ops that only check their arguments and return an uninitialised result of the output's shape: a bound program
# runs its launches through these once, when it is bound, on the tensors the real launches will see, so that those
# (through `ops_for`, unchecked) need no checks of their own and the checks follow the program's code as it is.
CHECKS = Ops("checks", _check_conv2d_act, _check_conv2d_pixel_shuffle_add, _check_upsample, _check_pixel_shuffle_add)
