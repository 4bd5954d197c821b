"""Argument checks shared by the Triton launchers and the PyTorch references.

Both implementations call the same check first, so a bad argument gives the same ValueError/TypeError
(naming the argument) whichever backend runs, and never reaches a Triton compile error.
"""

from __future__ import annotations

import numbers
from typing import NoReturn, SupportsInt, cast

import torch

ACTIVATIONS = ("none", "relu", "leaky_relu", "prelu", "tanh", "silu", "gate")
PADDING_MODES = ("zeros", "circular")
RESAMPLE_MODES = ("nearest", "bilinear", "bicubic")
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INTEGER_IMAGE_DTYPES = (torch.uint8, torch.uint16)


def _fail(op: str, message: str, error: type[Exception] = ValueError) -> NoReturn:
    raise error(f"{op}: {message}")


def require_tensor(op: str, name: str, value: object, ndim: int | None = None) -> torch.Tensor:
    """Check that `value` is a tensor (of `ndim` dimensions) and return it."""
    if not isinstance(value, torch.Tensor):
        _fail(op, f"{name} must be a torch.Tensor, got {type(value).__name__}", TypeError)
    if ndim is not None and value.dim() != ndim:
        _fail(op, f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    return value


def require_float(op: str, name: str, tensor: torch.Tensor) -> None:
    """Check that `tensor` is fp32, fp16 or bf16."""
    if tensor.dtype not in FLOAT_DTYPES:
        _fail(op, f"{name} must be float32, float16 or bfloat16, got {tensor.dtype}", TypeError)


def require_same_device(op: str, reference: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    """Check that every given tensor lives on the device of `reference` (the input `x`)."""
    for name, tensor in tensors.items():
        if tensor is not None and tensor.device != reference.device:
            _fail(op, f"{name} is on {tensor.device} but x is on {reference.device}; move both to one device")


def require_choice(op: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    """Check that `value` is one of `choices`."""
    if value not in choices:
        _fail(op, f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def require_integer_scale(op: str, scale: object, name: str = "scale") -> int:
    """Check that `scale` is an integer >= 1 (bools and non-integral floats refused) and return it as int."""
    if isinstance(scale, numbers.Integral) and not isinstance(scale, bool):
        value = int(scale)
    elif isinstance(scale, numbers.Real) and not isinstance(scale, bool) and float(scale).is_integer():
        value = int(cast(SupportsInt, scale))  # numbers.Real does not declare __int__; floats and numpy's have it
    else:
        _fail(op, f"{name} must be an integer >= 1, got {scale!r}", TypeError)
    if value < 1:
        _fail(op, f"{name} must be an integer >= 1, got {value}")
    return value


def require_output(
    op: str, out: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, x: torch.Tensor, x_name: str = "x"
) -> None:
    """Check a caller-provided output: shape, dtype, device, and no memory shared with the input `x`."""
    if out is None:
        return
    require_tensor(op, "out", out)
    if tuple(out.shape) != tuple(shape):
        _fail(op, f"out must have shape {tuple(shape)}, got {tuple(out.shape)}")
    if out.dtype != dtype:
        _fail(op, f"out must have dtype {dtype}, got {out.dtype}", TypeError)
    require_same_device(op, x, out=out)
    if _may_overlap(out, x):
        _fail(op, f"out shares memory with {x_name}; the op reads neighbours of each pixel, so it cannot run in place")


def _address_span(t: torch.Tensor) -> tuple[int, int]:
    """First and one-past-last element offset that `t` can touch in its storage."""
    first = int(t.storage_offset())
    return first, first + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride())) + 1


def _may_overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Conservative overlap test; exact for channel windows of one NHWC buffer (dense-block outputs)."""
    if a.numel() == 0 or b.numel() == 0:
        return False
    if a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr():
        return False
    a_start, b_start = int(a.storage_offset()), int(b.storage_offset())
    pixel_stride = a.stride(3) if a.dim() == 4 else 0
    if (
        a.dim() == b.dim() == 4
        and a.stride() == b.stride()
        and a.stride(1) == 1
        and a.shape[0] == b.shape[0]
        and a.shape[2:] == b.shape[2:]
        and max(a.shape[1], b.shape[1]) <= pixel_stride
        and abs(a_start - b_start) < pixel_stride
    ):
        # Both are channel windows over the same pixels: they overlap iff the channel ranges do.
        return a_start < b_start + b.shape[1] and b_start < a_start + a.shape[1]
    a_lo, a_hi = _address_span(a)
    b_lo, b_hi = _address_span(b)
    return a_lo < b_hi and b_lo < a_hi


def check_activation(op: str, act: str, slope: object, c_out: int, x: torch.Tensor) -> None:
    """Check `act` and the `slope` it needs: a float for leaky_relu, a C_out (or 1) tensor for prelu."""
    require_choice(op, "act", act, ACTIVATIONS)
    if act == "leaky_relu" and (isinstance(slope, bool) or not isinstance(slope, numbers.Real)):
        _fail(op, f"slope must be a float for act='leaky_relu', got {type(slope).__name__}", TypeError)
    if act == "prelu":
        if not isinstance(slope, torch.Tensor):
            _fail(
                op,
                f"slope must be a tensor of per-channel weights for act='prelu', got {type(slope).__name__}",
                TypeError,
            )
        require_float(op, "slope", slope)
        if slope.numel() not in (1, c_out):
            _fail(op, f"slope for act='prelu' must have 1 or {c_out} elements (C_out), got {slope.numel()}")
        require_same_device(op, x, slope=slope)


def check_bias(op: str, bias: torch.Tensor | None, c_out: int, x: torch.Tensor) -> None:
    """Check an optional bias of C_out elements."""
    if bias is None:
        return
    require_tensor(op, "bias", bias, ndim=1)
    require_float(op, "bias", bias)
    if bias.shape[0] != c_out:
        _fail(op, f"bias must have {c_out} elements (C_out), got {bias.shape[0]}")
    require_same_device(op, x, bias=bias)


def _check_conv_input(op: str, x, weight) -> int:
    """Check x (N, C_in, H, W) and a 1x1/3x3 weight (C_out, C_in, k, k) on one device; returns C_out."""
    require_tensor(op, "x", x, ndim=4)
    require_float(op, "x", x)
    require_tensor(op, "weight", weight, ndim=4)
    require_float(op, "weight", weight)
    c_out, c_in, kh, kw = weight.shape
    if (kh, kw) not in ((1, 1), (3, 3)):
        _fail(op, f"weight must be a 1x1 or 3x3 kernel (C_out, C_in, k, k), got {kh}x{kw}")
    if c_in != x.shape[1]:
        _fail(op, f"weight expects {c_in} input channels but x has {x.shape[1]}")
    require_same_device(op, x, weight=weight)
    return c_out


def _check_clamp_and_output(op: str, clamp, out_dtype, out=None) -> None:
    """Check an optional (low, high) clamp and an optional float / uint8 / uint16 output dtype (integer codes are
    a new HWC image: not with a caller's `out`)."""
    if clamp is not None:
        if (
            not isinstance(clamp, (tuple, list))
            or len(clamp) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in clamp)
        ):
            _fail(op, f"clamp must be None or a (low, high) pair of floats, got {clamp!r}", TypeError)
        if clamp[0] > clamp[1]:
            _fail(op, f"clamp low must not exceed high, got {tuple(clamp)}")
    if out_dtype is not None and out_dtype not in FLOAT_DTYPES + INTEGER_IMAGE_DTYPES:
        _fail(op, f"out_dtype must be None, a float dtype, torch.uint8 or torch.uint16, got {out_dtype!r}", TypeError)
    if out is not None and out_dtype in INTEGER_IMAGE_DTYPES:
        _fail(
            op,
            f"out_dtype={out_dtype} makes a new (N, H, W, C) image; it cannot be written into out: pass "
            "out=None, or a float out_dtype",
        )


def _check_base(op: str, base, expected: tuple[int, ...], reference: torch.Tensor) -> None:
    """Check an optional low-resolution base image of shape `expected`."""
    if base is None:
        return
    require_tensor(op, "base", base, ndim=4)
    require_float(op, "base", base)
    if tuple(base.shape) != expected:
        _fail(op, f"base must have shape {expected} (the low-resolution image), got {tuple(base.shape)}")
    require_same_device(op, reference, base=base)


def _check_residual(op: str, name: str, residual, scale_name: str, scale, out_shape: tuple[int, ...], x) -> None:
    """Check a float scale and an optional residual tensor of the output's shape on x's device."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        _fail(op, f"{scale_name} must be a float, got {type(scale).__name__}", TypeError)
    if residual is None:
        return
    require_tensor(op, name, residual, ndim=4)
    require_float(op, name, residual)
    if tuple(residual.shape) != out_shape:
        _fail(op, f"{name} must have the output shape {out_shape}, got {tuple(residual.shape)}")
    require_same_device(op, x, **{name: residual})


def check_conv2d_act(
    x,
    weight,
    bias,
    act,
    slope,
    residual,
    res_scale,
    padding_mode,
    out,
    outer_residual=None,
    outer_scale=1.0,
    clamp=None,
    out_dtype=None,
) -> None:
    """Validate conv2d_act's arguments (see kernels.reference.conv2d_act for their meaning)."""
    op = "conv2d_act"
    c_out = _check_conv_input(op, x, weight)
    check_bias(op, bias, c_out, x)
    check_activation(op, act, slope, c_out, x)
    require_choice(op, "padding_mode", padding_mode, PADDING_MODES)
    out_shape = (x.shape[0], c_out, x.shape[2], x.shape[3])
    _check_residual(op, "residual", residual, "res_scale", res_scale, out_shape, x)
    _check_residual(op, "outer_residual", outer_residual, "outer_scale", outer_scale, out_shape, x)
    if outer_residual is None and outer_scale != 1.0:
        _fail(
            op,
            f"outer_scale={outer_scale} is given without an outer_residual (it scales the sum that one is "
            "added to); pass outer_residual, or leave outer_scale at 1.0",
        )
    _check_clamp_and_output(op, clamp, out_dtype, out)
    require_output(op, out, out_shape, out_dtype or x.dtype, x)


def check_conv_transpose2d_act(x, weight, bias, act, slope, padding_mode, out) -> None:
    """Validate conv_transpose2d_act's arguments (kernel 4, stride 2, padding 1 only)."""
    op = "conv_transpose2d_act"
    require_tensor(op, "x", x, ndim=4)
    require_float(op, "x", x)
    require_tensor(op, "weight", weight, ndim=4)
    require_float(op, "weight", weight)
    c_in, c_out, kh, kw = weight.shape
    if (kh, kw) != (4, 4):
        _fail(op, f"weight must be a 4x4 transposed-conv kernel (C_in, C_out, 4, 4), got {kh}x{kw}")
    if c_in != x.shape[1]:
        _fail(op, f"weight expects {c_in} input channels but x has {x.shape[1]}")
    require_same_device(op, x, weight=weight)
    check_bias(op, bias, c_out, x)
    check_activation(op, act, slope, c_out, x)
    require_choice(op, "padding_mode", padding_mode, PADDING_MODES)
    require_output(op, out, (x.shape[0], c_out, 2 * x.shape[2], 2 * x.shape[3]), x.dtype, x)


def check_upsample(x, scale, mode, align_corners, out=None) -> int:
    """Validate upsample's arguments (`out`: a caller's (N, C, H*scale, W*scale) result of x's dtype); returns the
    scale as an int."""
    op = "upsample"
    require_tensor(op, "x", x, ndim=4)
    require_float(op, "x", x)
    scale = require_integer_scale(op, scale)
    require_choice(op, "mode", mode, RESAMPLE_MODES)
    if not isinstance(align_corners, bool):
        _fail(op, f"align_corners must be a bool, got {type(align_corners).__name__}", TypeError)
    if align_corners and mode == "nearest":
        _fail(op, "align_corners=True has no meaning for mode='nearest' (torch refuses it too)")
    require_output(op, out, (*x.shape[:2], x.shape[2] * scale, x.shape[3] * scale), x.dtype, x)
    return scale


def check_pixel_shuffle_add(y, scale, base, base_mode, clamp, out_dtype, out=None) -> int:
    """Validate pixel_shuffle_add's arguments (`out`: a caller's (N, C, H*scale, W*scale) float result, e.g. a
    channel slice of a wider buffer); returns the scale as an int."""
    op = "pixel_shuffle_add"
    require_tensor(op, "y", y, ndim=4)
    require_float(op, "y", y)
    scale = require_integer_scale(op, scale)
    if y.shape[1] % (scale * scale):
        _fail(op, f"y has {y.shape[1]} channels, not a multiple of scale**2 = {scale * scale}")
    c = y.shape[1] // (scale * scale)
    _check_base(op, base, (y.shape[0], c, y.shape[2], y.shape[3]), y)
    require_choice(op, "base_mode", base_mode, RESAMPLE_MODES)
    _check_clamp_and_output(op, clamp, out_dtype, out)
    out_shape = (y.shape[0], c, y.shape[2] * scale, y.shape[3] * scale)
    require_output(op, out, out_shape, out_dtype or y.dtype, y, "y")
    if out is not None and base is not None and _may_overlap(out, base):
        _fail(op, "out shares memory with base; the op reads base's neighbours, so it cannot run in place")
    return scale


def check_conv2d_pixel_shuffle_add(x, weight, bias, scale, base, clamp, out_dtype) -> int:
    """Validate conv2d_pixel_shuffle_add's arguments; returns the scale as an int."""
    op = "conv2d_pixel_shuffle_add"
    c_out = _check_conv_input(op, x, weight)
    check_bias(op, bias, c_out, x)
    scale = require_integer_scale(op, scale)
    if c_out % (scale * scale):
        _fail(op, f"weight has {c_out} output channels, not a multiple of scale**2 = {scale * scale}")
    _check_base(op, base, (x.shape[0], c_out // (scale * scale), x.shape[2], x.shape[3]), x)
    _check_clamp_and_output(op, clamp, out_dtype)
    return scale
