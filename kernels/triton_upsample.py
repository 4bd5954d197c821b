"""Integer-factor upsampling (nearest / bilinear / bicubic) with torch's exact index and weight rules (Triton).

Each program computes BLOCK_P output pixels x BLOCK_C channels by gathering their source taps. The
tap helpers (`sample`) are shared with the pixel-shuffle epilogue, which upsamples its base image the
same way. Source coordinates follow F.interpolate: align_corners=False uses half-pixel centres
(src = (dst + 0.5) * in/out - 0.5, clamped at 0 for bilinear only), align_corners=True maps corner to
corner (src = dst * (in - 1) / (out - 1)); bicubic is the cubic convolution with A = -0.75 and edge
taps repeated; nearest takes floor(dst / scale).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import _args
from ._launch import ElementwiseConfig, elementwise_config, images_per_launch

MODE_CODES = {name: code for code, name in enumerate(_args.RESAMPLE_MODES)}


@triton.jit
def _source_coordinate(dst, ratio, ALIGN_CORNERS: tl.constexpr):
    """Continuous source position of destination pixels (fp32), before any clamping."""
    if ALIGN_CORNERS:
        return dst.to(tl.float32) * ratio
    return (dst.to(tl.float32) + 0.5) * ratio - 0.5


@triton.jit
def _cubic_weight(t, k: tl.constexpr):
    """Weight of tap k (0..3, at offsets -1..2) for fractional position t, cubic convolution A = -0.75."""
    A: tl.constexpr = -0.75  # pyright: ignore[reportAssignmentType]  (Triton's way to name a compile-time constant)
    if k == 0:
        d = t + 1.0
        return ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A
    elif k == 1:
        return ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0
    elif k == 2:
        d = 1.0 - t
        return ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0
    else:
        d = 2.0 - t
        return ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A


@triton.jit
def _gather(x_ptr, pixel_off, offs_c, sxc, mask):
    return tl.load(x_ptr + pixel_off[:, None] + offs_c[None, :] * sxc, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def sample(
    x_ptr,
    batch_off,
    oh,
    ow,
    offs_c,
    mask,
    H,
    W,
    sxc,
    sxh,
    sxw,
    scale,
    ratio_h,
    ratio_w,
    MODE: tl.constexpr,
    ALIGN_CORNERS: tl.constexpr,
):
    """Upsampled value of input x at output pixels (oh, ow) of their batch item: [BLOCK_P, BLOCK_C] fp32."""
    if MODE == 0:  # nearest
        ih = (oh // scale).to(tl.int64)
        iw = (ow // scale).to(tl.int64)
        return _gather(x_ptr, batch_off + ih * sxh + iw * sxw, offs_c, sxc, mask)
    elif MODE == 1:  # bilinear
        src_h = tl.maximum(_source_coordinate(oh, ratio_h, ALIGN_CORNERS), 0.0)
        src_w = tl.maximum(_source_coordinate(ow, ratio_w, ALIGN_CORNERS), 0.0)
        h0 = src_h.to(tl.int32)  # non-negative, so truncation is floor
        w0 = src_w.to(tl.int32)
        lh = src_h - h0.to(tl.float32)
        lw = src_w - w0.to(tl.float32)
        h1 = tl.minimum(h0 + 1, H - 1).to(tl.int64)
        w1 = tl.minimum(w0 + 1, W - 1).to(tl.int64)
        h0 = h0.to(tl.int64)
        w0 = w0.to(tl.int64)
        top = (1.0 - lw)[:, None] * _gather(x_ptr, batch_off + h0 * sxh + w0 * sxw, offs_c, sxc, mask) + lw[
            :, None
        ] * _gather(x_ptr, batch_off + h0 * sxh + w1 * sxw, offs_c, sxc, mask)
        bottom = (1.0 - lw)[:, None] * _gather(x_ptr, batch_off + h1 * sxh + w0 * sxw, offs_c, sxc, mask) + lw[
            :, None
        ] * _gather(x_ptr, batch_off + h1 * sxh + w1 * sxw, offs_c, sxc, mask)
        return (1.0 - lh)[:, None] * top + lh[:, None] * bottom
    else:  # bicubic
        src_h = _source_coordinate(oh, ratio_h, ALIGN_CORNERS)
        src_w = _source_coordinate(ow, ratio_w, ALIGN_CORNERS)
        fh = tl.floor(src_h)
        fw = tl.floor(src_w)
        th = src_h - fh
        tw = src_w - fw
        base_h = fh.to(tl.int32) - 1
        base_w = fw.to(tl.int32) - 1
        acc = tl.zeros(mask.shape, dtype=tl.float32)
        # (tl.static_range is unrolled by the compiler; its Python class is typed as not iterable)
        for i in tl.static_range(4):  # pyright: ignore[reportGeneralTypeIssues]
            ih = tl.minimum(tl.maximum(base_h + i, 0), H - 1).to(tl.int64)
            row = tl.zeros(mask.shape, dtype=tl.float32)
            for j in tl.static_range(4):  # pyright: ignore[reportGeneralTypeIssues]
                iw = tl.minimum(tl.maximum(base_w + j, 0), W - 1).to(tl.int64)
                row += _cubic_weight(tw, j)[:, None] * _gather(
                    x_ptr, batch_off + ih * sxh + iw * sxw, offs_c, sxc, mask
                )
            acc += _cubic_weight(th, i)[:, None] * row
        return acc


@triton.jit
def output_tile(P, C, OH, OW, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's output pixels (batch, row, column), channel offsets and in-bounds mask."""
    offs_p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (offs_p < P)[:, None] & (offs_c < C)[None, :]
    ow = offs_p % OW
    oh = (offs_p // OW) % OH
    return ((offs_p // OW) // OH).to(tl.int64), oh, ow, offs_c, mask


@triton.jit(do_not_specialize=["H", "W", "OH", "OW", "P"])
def _upsample_kernel(
    x_ptr,
    out_ptr,
    H,
    W,
    OH,
    OW,
    P,
    C,
    sxn,
    sxc,
    sxh,
    sxw,
    son,
    soc,
    soh,
    sow,
    scale,
    ratio_h,
    ratio_w,
    MODE: tl.constexpr,
    ALIGN_CORNERS: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    n, oh, ow, offs_c, mask = output_tile(P, C, OH, OW, BLOCK_P, BLOCK_C)
    value = sample(
        x_ptr, n * sxn, oh, ow, offs_c, mask, H, W, sxc, sxh, sxw, scale, ratio_h, ratio_w, MODE, ALIGN_CORNERS
    )
    out_off = n * son + oh.to(tl.int64) * soh + ow.to(tl.int64) * sow
    tl.store(out_ptr + out_off[:, None] + offs_c[None, :] * soc, value.to(out_ptr.dtype.element_ty), mask=mask)


def source_ratios(size_in: tuple[int, int], scale: int, align_corners: bool) -> tuple[float, float]:
    """Per-axis ratio torch uses to map destination to source pixels."""

    def ratio(n: int) -> float:
        if align_corners:
            return (n - 1) / (n * scale - 1) if n * scale > 1 else 0.0
        return 1.0 / scale

    return ratio(size_in[0]), ratio(size_in[1])


def upsample(
    x: torch.Tensor,
    scale: int,
    mode: str = "nearest",
    align_corners: bool = False,
    out: torch.Tensor | None = None,
    *,
    config: ElementwiseConfig | None = None,
) -> torch.Tensor:
    """Triton upsample; semantics in kernels.reference.upsample (the kernel writes through `out`'s strides, so a
    channel slice of a wider buffer costs no copy). `config` overrides the launch rule (tests)."""
    scale = _args.check_upsample(x, scale, mode, align_corners, out)
    n, c, h, w = x.shape
    if out is None:
        out = torch.empty(
            (n, c, h * scale, w * scale), dtype=x.dtype, device=x.device, memory_format=torch.channels_last
        )
    image_pixels = h * scale * w * scale
    if n * image_pixels == 0 or c == 0:
        return out
    config = config or elementwise_config(c)
    ratio_h, ratio_w = source_ratios((h, w), scale, align_corners)
    step = images_per_launch(n, image_pixels, config.block_p)
    for start in range(0, n, step):
        x_part, out_part = x[start : start + step], out[start : start + step]
        pixels = x_part.shape[0] * image_pixels
        grid = (triton.cdiv(pixels, config.block_p), triton.cdiv(c, config.block_c))
        # (Triton types kernel[grid] as the kernel's own signature: it cannot count splatted strides, and the
        # launch options such as num_warps are not in it)
        _upsample_kernel[grid](
            x_part,
            out_part,
            h,
            w,
            h * scale,
            w * scale,
            pixels,
            c,
            *x_part.stride(),
            *out_part.stride(),
            scale,  # pyright: ignore[reportCallIssue]
            ratio_h,  # pyright: ignore[reportCallIssue]
            ratio_w,  # pyright: ignore[reportCallIssue]
            MODE=MODE_CODES[mode],
            ALIGN_CORNERS=align_corners,
            BLOCK_P=config.block_p,
            BLOCK_C=config.block_c,
            num_warps=config.num_warps,  # pyright: ignore[reportCallIssue]
        )
    return out
