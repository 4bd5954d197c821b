"""Plain-PyTorch twins of every srkit kernel: same signatures, same semantics, fp32 arithmetic.

These define what each op means. They run on any device, compute in float32 (like the Triton kernels'
fp32 accumulation) and round once to the output dtype. Outputs are NCHW tensors in channels_last memory.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F

from . import _args

# How integer image outputs map [0, 1] floats to codes.
INTEGER_RANGE = {torch.uint8: 255.0, torch.uint16: 65535.0}


def activate(y: torch.Tensor, act: str, slope: float | torch.Tensor) -> torch.Tensor:
    """Apply an activation in place to a fresh fp32 NCHW tensor (`slope`: leaky_relu's float, prelu's tensor).
    'silu' is y * sigmoid(y); 'gate' is y * (sigmoid(y) - 0.5) (SPAN's parameter-free attention)."""
    if act == "relu":
        return torch.relu_(y)
    if act == "leaky_relu":
        return F.leaky_relu_(y, float(slope))
    if act == "prelu":
        prelu_slope = cast(torch.Tensor, slope)  # _args.check_activation makes prelu's slope a tensor
        return F.prelu(y, prelu_slope.detach().float().reshape(-1))
    if act == "tanh":
        return torch.tanh_(y)
    if act == "silu":
        return F.silu(y, inplace=True)
    if act == "gate":
        return y.mul_(torch.sigmoid(y) - 0.5)
    return y


def new_result(
    like: torch.Tensor, c: int, h: int, w: int, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(an uninitialised result of `like`'s batch and device, the (N, C, H, W) view a kernel writes it through):
    for uint8/uint16 an (N, H, W, C) image of codes, whose permuted view has channels_last strides; for a float
    dtype (default like.dtype) one channels_last tensor, both."""
    dtype = dtype or like.dtype
    if dtype in INTEGER_RANGE:
        image = torch.empty((like.shape[0], h, w, c), dtype=dtype, device=like.device)
        return image, image.permute(0, 3, 1, 2)
    result = torch.empty((like.shape[0], c, h, w), dtype=dtype, device=like.device, memory_format=torch.channels_last)
    return result, result


def _emit(y: torch.Tensor, dtype: torch.dtype, out: torch.Tensor | None) -> torch.Tensor:
    """Round an fp32 result to `dtype` once, into `out` if given, else a new channels_last tensor."""
    if out is not None:
        out.copy_(y)
        return out
    return y.to(dtype).contiguous(memory_format=torch.channels_last)


def conv2d_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    act: str = "none",
    slope: float | torch.Tensor = 0.2,
    *,
    residual: torch.Tensor | None = None,
    res_scale: float = 1.0,
    padding_mode: str = "zeros",
    out: torch.Tensor | None = None,
    outer_residual: torch.Tensor | None = None,
    outer_scale: float = 1.0,
    clamp: tuple[float, float] | None = None,
    out_dtype: torch.dtype | None = None,
    checked: bool = True,
) -> torch.Tensor:
    """Stride-1 'same' convolution (1x1 or 3x3) with bias, activation, scaled residual, zero or circular padding.

    Everything after `slope` (the epilogue, padding and output) goes by keyword.
    out = act(conv(x, weight) + bias) * res_scale + residual   (the residual term only when given;
    res_scale multiplies the activated conv even without one). act='gate' gates the sum instead:
    out = (y * res_scale + residual) * (sigmoid(y) - 0.5) for y = conv(x) + bias. With an outer_residual, that
    result (the inner sum) becomes inner * outer_scale + outer_residual: a residual around a residual, as
    RRDB's last dense block and its block skip are (`(conv5 * 0.2 + rdb_in) * 0.2 + block_in`). x: (N, C_in, H, W);
    weight: (C_out, C_in, k, k); bias, prelu slope: (C_out,); residuals and out: (N, C_out, H, W), out may be a
    channel slice of a wider channels_last tensor and may be either residual (in place). Arithmetic in fp32,
    rounded once to x.dtype. Last, the result is clamped and converted as pixel_shuffle_add's `clamp` and
    `out_dtype` are (uint8/uint16: a new (N, H, W, C) image of codes, so no `out` then), so a network's last conv
    writes its final image. checked=False skips the argument checks (a bound plan checked its launches once, when
    it was bound).
    """
    if checked:
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
    pad = weight.shape[-1] // 2
    xf = x.float()
    if padding_mode == "circular" and pad:
        xf = F.pad(xf, (pad, pad, pad, pad), mode="circular")
        pad = 0
    y = F.conv2d(xf, weight.detach().float(), None if bias is None else bias.detach().float(), padding=pad)
    gate = torch.sigmoid(y) - 0.5 if act == "gate" else None
    y = activate(y, act, slope) if gate is None else y
    if res_scale != 1.0:
        y.mul_(float(res_scale))
    if residual is not None:
        y.add_(residual)
    if gate is not None:
        y.mul_(gate)
    if outer_residual is not None:
        y.mul_(float(outer_scale)).add_(outer_residual)
    return _finish(y, clamp, x.dtype if out_dtype is None else out_dtype, out)


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
    """ConvTranspose2d(kernel 4, stride 2, padding 1) with bias and activation: (N, C_in, H, W) -> (N, C_out, 2H, 2W).

    weight is (C_in, C_out, 4, 4) as torch stores it. padding_mode 'circular' treats x as periodic, so a
    periodic input gives a periodic output (seamless textures): it equals the transposed conv of x padded
    circularly by one pixel, with padding 3 instead of 1.
    """
    _args.check_conv_transpose2d_act(x, weight, bias, act, slope, padding_mode, out)
    xf = x.float()
    padding = 1
    if padding_mode == "circular":
        xf = F.pad(xf, (1, 1, 1, 1), mode="circular")
        padding = 3
    y = F.conv_transpose2d(
        xf, weight.detach().float(), None if bias is None else bias.detach().float(), stride=2, padding=padding
    )
    return _emit(activate(y, act, slope), x.dtype, out)


def upsample(
    x: torch.Tensor, scale: int, mode: str = "nearest", align_corners: bool = False, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Upsample (N, C, H, W) by an integer factor exactly as F.interpolate(scale_factor=scale, mode=...) does,
    into `out` if given (e.g. a channel slice of a wider buffer).

    nearest takes source pixel floor(dst / scale); bilinear and bicubic (A = -0.75, edge pixels repeated)
    follow torch's align_corners=False (half-pixel centres) or align_corners=True (corner pixels aligned).
    """
    scale = _args.check_upsample(x, scale, mode, align_corners, out)
    size = (x.shape[2] * scale, x.shape[3] * scale)
    if mode == "nearest":
        y = F.interpolate(x.float(), size=size, mode="nearest")
    else:
        y = F.interpolate(x.float(), size=size, mode=mode, align_corners=align_corners)
    return _emit(y, x.dtype, out)


def pixel_shuffle_add(
    y: torch.Tensor,
    scale: int,
    base: torch.Tensor | None = None,
    base_mode: str = "nearest",
    clamp: tuple[float, float] | None = None,
    out_dtype: torch.dtype | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The SR network's last step in one pass: pixel_shuffle(y, scale) + upsample(base, scale, base_mode), clamped.

    y: (N, C*scale*scale, H, W); base: (N, C, H, W) or None. The sum is clamped to `clamp` = (low, high) if
    given. out_dtype None or a float dtype: returns (N, C, H*scale, W*scale) channels_last in that dtype
    (default y.dtype). out_dtype torch.uint8 / torch.uint16: the value is also clamped to [0, 1], scaled to
    255 / 65535 and rounded half up, and the result is an (N, H*scale, W*scale, C) contiguous (HWC) image.
    A float result is written into `out` if given (e.g. a channel slice of a wider buffer: the next layer's input).
    """
    scale = _args.check_pixel_shuffle_add(y, scale, base, base_mode, clamp, out_dtype, out)
    z = F.pixel_shuffle(y.float(), scale) if scale > 1 else y.float()
    if base is not None:
        size = (base.shape[2] * scale, base.shape[3] * scale)
        align = {} if base_mode == "nearest" else {"align_corners": False}
        z = z + F.interpolate(base.float(), size=size, mode=base_mode, **align)
    return _finish(z, clamp, y.dtype if out_dtype is None else out_dtype, out)


def _finish(
    z: torch.Tensor, clamp: tuple[float, float] | None, out_dtype: torch.dtype, out: torch.Tensor | None
) -> torch.Tensor:
    """An fp32 (N, C, H, W) result clamped, then rounded once to a float `out_dtype` (into `out` if given) or
    packed to uint8/uint16 codes in a new (N, H, W, C) image."""
    if out_dtype in INTEGER_RANGE:
        # clamp then [0, 1] is one clamp to the bounds clipped to [0, 1]; then scale, round half up, and
        # convert while transposing to HWC, in as few passes as the image allows (the tiler packs every tile so).
        low, high = (0.0, 1.0) if clamp is None else (min(max(float(c), 0.0), 1.0) for c in clamp)
        codes = z.clamp(low, high).mul_(INTEGER_RANGE[out_dtype]).add_(0.5).floor_()
        _, c, h, w = z.shape
        image, view = new_result(z, c, h, w, out_dtype)
        view.copy_(codes)
        return image
    if clamp is not None:
        z = z.clamp(float(clamp[0]), float(clamp[1]))
    return _emit(z, out_dtype, out)


def conv2d_pixel_shuffle_add(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    scale: int,
    base: torch.Tensor | None = None,
    clamp: tuple[float, float] | None = None,
    out_dtype: torch.dtype | None = None,
    *,
    checked: bool = True,
) -> torch.Tensor:
    """The compact SR network's last layer written once: pixel_shuffle_add(conv(x) + bias, scale, base, 'nearest').

    Equals pixel_shuffle_add(y, scale, base, "nearest", clamp, out_dtype) for y = conv(x, weight) + bias kept
    in fp32 (not rounded in between); out_dtype None means x.dtype. The base is nearest-upsampled, which
    lets the fused kernel read it at the conv's own input pixel. checked=False: as in conv2d_act.
    """
    if checked:
        scale = _args.check_conv2d_pixel_shuffle_add(x, weight, bias, scale, base, clamp, out_dtype)
    pad = weight.shape[-1] // 2
    y = F.conv2d(x.float(), weight.detach().float(), None if bias is None else bias.detach().float(), padding=pad)
    return pixel_shuffle_add(
        y, scale, None if base is None else base.float(), "nearest", clamp, x.dtype if out_dtype is None else out_dtype
    )
