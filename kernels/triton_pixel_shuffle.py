"""The SR network's last step in one pass: pixel shuffle + upsampled base + clamp (+ uint8/uint16 packing) (Triton).

Each output pixel (h*s + i, w*s + j) of channel c reads y's channel c*s*s + i*s + j at (h, w), adds the
base image upsampled with the shared `sample` taps, clamps, and is written once, either as a float NCHW
channels_last tensor or as integer codes in an (N, H, W, C) image (the same memory order).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import _args
from ._launch import ElementwiseConfig, elementwise_config, images_per_launch
from .reference import INTEGER_RANGE, new_result
from .triton_upsample import MODE_CODES, output_tile, sample, source_ratios


@triton.jit(do_not_specialize=["H", "W", "OH", "OW", "P"])
def _pixel_shuffle_add_kernel(
    y_ptr,
    base_ptr,
    out_ptr,
    H,
    W,
    OH,
    OW,
    P,
    C,
    scale,
    syn,
    syc,
    syh,
    syw,
    sbn,
    sbc,
    sbh,
    sbw,
    son,
    soc,
    soh,
    sow,
    ratio_h,
    ratio_w,
    clamp_low,
    clamp_high,
    code_max,
    HAS_BASE: tl.constexpr,
    BASE_MODE: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
    TO_INTEGER: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    n, oh, ow, offs_c, mask = output_tile(P, C, OH, OW, BLOCK_P, BLOCK_C)
    sub = (oh % scale) * scale + ow % scale  # which of the scale*scale sub-pixels this output pixel is
    y_pixel = n * syn + (oh // scale).to(tl.int64) * syh + (ow // scale).to(tl.int64) * syw
    y_channel = offs_c[None, :] * (scale * scale) + sub[:, None]
    value = tl.load(y_ptr + y_pixel[:, None] + y_channel.to(tl.int64) * syc, mask=mask, other=0.0).to(tl.float32)
    if HAS_BASE:
        # (False is the ALIGN_CORNERS constant: tl.constexpr parameters take plain values)
        value += sample(
            base_ptr,
            n * sbn,
            oh,
            ow,
            offs_c,
            mask,
            H,
            W,
            sbc,
            sbh,
            sbw,
            scale,
            ratio_h,
            ratio_w,
            BASE_MODE,
            False,  # pyright: ignore[reportArgumentType]
        )
    if HAS_CLAMP:  # NaN stays NaN, as torch.clamp keeps it
        value = tl.clamp(value, clamp_low, clamp_high, propagate_nan=tl.PropagateNan.ALL)
    if TO_INTEGER:  # NaN becomes code 0
        value = tl.floor(tl.minimum(tl.maximum(value, 0.0), 1.0) * code_max + 0.5)
    out_off = n * son + oh.to(tl.int64) * soh + ow.to(tl.int64) * sow
    tl.store(out_ptr + out_off[:, None] + offs_c[None, :] * soc, value.to(out_ptr.dtype.element_ty), mask=mask)


def pixel_shuffle_add(
    y: torch.Tensor,
    scale: int,
    base: torch.Tensor | None = None,
    base_mode: str = "nearest",
    clamp: tuple[float, float] | None = None,
    out_dtype: torch.dtype | None = None,
    out: torch.Tensor | None = None,
    *,
    config: ElementwiseConfig | None = None,
) -> torch.Tensor:
    """Triton pixel_shuffle_add; semantics in kernels.reference.pixel_shuffle_add (the kernel writes through
    `out`'s strides, so a channel slice of a wider buffer costs no copy). `config`: launch override."""
    scale = _args.check_pixel_shuffle_add(y, scale, base, base_mode, clamp, out_dtype, out)
    n, _, h, w = y.shape
    c = y.shape[1] // (scale * scale)
    oh, ow = h * scale, w * scale
    out_dtype = y.dtype if out_dtype is None else out_dtype
    if out is None:
        image, out = new_result(y, c, oh, ow, out_dtype)
    else:
        image = out
    if n * oh * ow == 0 or c == 0:
        return image
    config = config or elementwise_config(c)
    ratio_h, ratio_w = source_ratios((h, w), scale, False)
    base_strides = base.stride() if base is not None else (0, 0, 0, 0)
    low, high = (float(clamp[0]), float(clamp[1])) if clamp is not None else (0.0, 0.0)
    step = images_per_launch(n, oh * ow, config.block_p)
    for start in range(0, n, step):
        y_part, out_part = y[start : start + step], out[start : start + step]
        base_part = base[start : start + step] if base is not None else None
        pixels = y_part.shape[0] * oh * ow
        grid = (triton.cdiv(pixels, config.block_p), triton.cdiv(c, config.block_c))
        # (Triton types kernel[grid] as the kernel's own signature: it cannot count splatted strides, and the
        # launch options such as num_warps are not in it)
        _pixel_shuffle_add_kernel[grid](
            y_part,
            base_part,
            out_part,
            h,
            w,
            oh,
            ow,
            pixels,
            c,
            scale,
            *y_part.stride(),
            *base_strides,
            *out_part.stride(),
            ratio_h,  # pyright: ignore[reportCallIssue]
            ratio_w,  # pyright: ignore[reportCallIssue]
            low,  # pyright: ignore[reportCallIssue]
            high,  # pyright: ignore[reportCallIssue]
            INTEGER_RANGE.get(out_dtype, 0.0),  # pyright: ignore[reportCallIssue]
            HAS_BASE=base is not None,
            BASE_MODE=MODE_CODES[base_mode],
            HAS_CLAMP=clamp is not None,
            TO_INTEGER=out_dtype in INTEGER_RANGE,
            BLOCK_P=config.block_p,
            BLOCK_C=config.block_c,
            num_warps=config.num_warps,  # pyright: ignore[reportCallIssue]
        )
    return image
