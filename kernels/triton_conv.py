"""Fused convolution + bias + activation + scaled residual (and a residual around that), as an implicit GEMM on
NHWC data (Triton).

One kernel serves two ops: `conv2d_act` (1x1 / 3x3, stride 1, same padding) and, through its phase
axis, `conv_transpose2d_act` (kernel 4 stride 2 padding 1 = four 2x2 convolutions, one per output phase,
each writing every other pixel of the output). GEMM view: M = output pixels, N = output channels,
K = taps x input channels; fp32 accumulation; tensors are addressed through their strides, so inputs
and outputs may be channel slices of wider channels_last buffers.
"""

from __future__ import annotations

from typing import cast

import torch
import triton
import triton.language as tl
from triton.runtime.errors import OutOfResources
from triton.testing import do_bench

from . import _args, _weight_cache
from ._launch import MAX_LAUNCH_INDEX, ConvConfig, images_per_launch, k_steps, taps_in_k, tuned_conv_config
from .reference import INTEGER_RANGE, new_result


# The activation is a compile-time name (one of _args.ACTIVATIONS), so each launch compiles only its own branch.
@triton.heuristics(
    {
        "HAS_BIAS": lambda args: args["bias_ptr"] is not None,
        "HAS_RES": lambda args: args["res_ptr"] is not None,
        "HAS_OUTER": lambda args: args["outer_ptr"] is not None,
        "HAS_CLAMP": lambda args: args["clamp_low"] is not None,
        "TO_INTEGER": lambda args: args["CODE_MAX"] > 0,
        # Fewer input channels than one MMA's depth: K runs over taps x channels together (27 of 32 used for RGB
        # 3x3) instead of one mostly empty channel chunk per tap.
        "TAPS_IN_K": lambda args: taps_in_k(args["C_in"]),
        "K_STEPS": lambda args: k_steps(args["C_in"], args["KH"] * args["KW"], args["BLOCK_K"]),
        # Element offsets in int32 (half the registers of int64 address maths) unless a tensor spans 2**31 elements.
        "INDEX_64": lambda args: any(
            _span(args[name]) > MAX_LAUNCH_INDEX for name in ("x_ptr", "res_ptr", "outer_ptr", "out_ptr")
        ),
    }
)
@triton.jit(do_not_specialize=["H", "W", "M"])
def _conv_act_kernel(
    x_ptr,
    w_ptr,
    bias_ptr,
    slope_ptr,
    res_ptr,
    outer_ptr,
    out_ptr,
    H,
    W,
    M,
    C_in,
    C_out,
    sxn,
    sxc,
    sxh,
    sxw,
    son,
    soc,
    soh,
    sow,
    srn,
    src,
    srh,
    srw,
    sqn,
    sqc,
    sqh,
    sqw,
    slope_value,
    res_scale,
    outer_scale,
    clamp_low,
    clamp_high,
    KH: tl.constexpr,
    KW: tl.constexpr,
    PAD: tl.constexpr,
    OUT_STEP: tl.constexpr,
    ACT: tl.constexpr,
    CIRCULAR: tl.constexpr,
    SHUFFLE: tl.constexpr,
    CODE_MAX: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_RES: tl.constexpr,
    HAS_OUTER: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
    TO_INTEGER: tl.constexpr,
    TAPS_IN_K: tl.constexpr,
    K_STEPS: tl.constexpr,
    INDEX_64: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    phase = tl.program_id(2)  # 0 for a plain conv; (row, col) parity of the output for a transposed conv
    phase_h = phase // 2
    phase_w = phase % 2

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    m_mask = offs_m < M
    w_idx = offs_m % W
    h_idx = (offs_m // W) % H
    n_idx = (offs_m // W) // H
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < C_out
    if INDEX_64:
        n_idx, h_idx, w_idx = n_idx.to(tl.int64), h_idx.to(tl.int64), w_idx.to(tl.int64)
    x_batch = n_idx * sxn
    w_phase = w_ptr + phase * (KH * KW * C_in * C_out)

    # One flat K loop over taps x channel chunks: the compiler pipelines it as one stream of MMAs and async copies
    # (a loop per tap would drain the pipeline at the end of each).
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(K_STEPS):
        if TAPS_IN_K:  # k = tap * C_in + channel, all taps in one (or a few) K blocks
            offs_k = step * BLOCK_K + tl.arange(0, BLOCK_K)
            k_mask = offs_k < KH * KW * C_in
            tap = offs_k // C_in
            channel = offs_k % C_in
            hh = h_idx[:, None] + (phase_h - PAD + tap // KW)[None, :]
            ww = w_idx[:, None] + (phase_w - PAD + tap % KW)[None, :]
            rows = offs_k
        else:  # one tap, one chunk of BLOCK_K input channels
            tap = step // (K_STEPS // (KH * KW))
            # (a tl.constexpr parameter holds a plain int here; the checker sees the annotation's class)
            channel = (step % (K_STEPS // (KH * KW))) * BLOCK_K + tl.arange(0, BLOCK_K)  # pyright: ignore[reportOperatorIssue]
            k_mask = channel < C_in
            hh = (h_idx + (phase_h - PAD + tap // KW))[:, None]
            ww = (w_idx + (phase_w - PAD + tap % KW))[:, None]
            rows = tap * C_in + channel
        if CIRCULAR:
            # Taps reach at most one pixel beyond an edge, so one wrap suffices (also for H or W == 1).
            hh = tl.where(hh < 0, hh + H, tl.where(hh >= H, hh - H, hh))
            ww = tl.where(ww < 0, ww + W, tl.where(ww >= W, ww - W, ww))
            a_mask = m_mask[:, None] & k_mask[None, :]
        else:
            a_mask = m_mask[:, None] & k_mask[None, :] & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
        a = tl.load(x_ptr + x_batch[:, None] + hh * sxh + ww * sxw + channel[None, :] * sxc, mask=a_mask, other=0.0)
        b = tl.load(
            w_phase + rows[:, None] * C_out + offs_n[None, :], mask=k_mask[:, None] & n_mask[None, :], other=0.0
        )
        acc = tl.dot(a, b, acc, input_precision=DOT_PRECISION)

    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0)[None, :]
    if ACT == "relu":
        acc = tl.maximum(acc, 0.0)
    elif ACT == "leaky_relu":
        acc = tl.where(acc >= 0, acc, acc * slope_value)
    elif ACT == "prelu":
        channel_slope = tl.load(slope_ptr + offs_n, mask=n_mask, other=0.0)
        acc = tl.where(acc >= 0, acc, acc * channel_slope[None, :])
    elif ACT == "tanh":  # written with exp so it saturates cleanly to +-1
        acc = 1.0 - 2.0 / (tl.exp(2.0 * acc) + 1.0)
    if ACT == "silu" or ACT == "gate":  # sigmoid from exp(-|acc|), which cannot overflow
        decay = tl.exp(-tl.abs(acc))
        sigmoid = tl.where(acc >= 0, 1.0 / (1.0 + decay), decay / (1.0 + decay))
    if ACT == "silu":
        acc = acc * sigmoid
    if ACT == "gate":  # (acc * res_scale + residual) * (sigmoid(acc) - 0.5), applied after the residual
        gate = sigmoid - 0.5
    acc = acc * res_scale

    out_mask = m_mask[:, None] & n_mask[None, :]
    batch = n_idx
    if SHUFFLE > 1:
        # Pixel-shuffle epilogue: channel c*S*S + i*S + j of pixel (h, w) lands at (h*S + i, w*S + j) of image
        # channel c; the nearest-upsampled base there is simply base[c] at the same input pixel (h, w).
        channel = offs_n // (SHUFFLE * SHUFFLE)
        sub = offs_n % (SHUFFLE * SHUFFLE)
        if HAS_RES:
            base_off = batch * srn + h_idx * srh + w_idx * srw
            acc += tl.load(res_ptr + base_off[:, None] + channel[None, :] * src, mask=out_mask, other=0.0).to(
                tl.float32
            )
        out_row = (h_idx * SHUFFLE)[:, None] + (sub // SHUFFLE)[None, :]
        out_col = (w_idx * SHUFFLE)[:, None] + (sub % SHUFFLE)[None, :]
        out_off = (batch * son)[:, None] + out_row * soh + out_col * sow + channel[None, :] * soc
    else:
        out_h = h_idx * OUT_STEP + phase_h
        out_w = w_idx * OUT_STEP + phase_w
        if HAS_RES:
            res_off = batch * srn + out_h * srh + out_w * srw
            acc += tl.load(res_ptr + res_off[:, None] + offs_n[None, :] * src, mask=out_mask, other=0.0).to(tl.float32)
        if HAS_OUTER:  # conv2d_act only (never with SHUFFLE): loaded here, added after the gate
            outer_off = (batch * sqn + out_h * sqh + out_w * sqw)[:, None] + offs_n[None, :] * sqc
        out_off = (batch * son + out_h * soh + out_w * sow)[:, None] + offs_n[None, :] * soc
    if ACT == "gate":
        acc = acc * gate
    if HAS_OUTER:  # a residual around the residual sum (RRDB: last dense block plus the block's own skip)
        acc = acc * outer_scale + tl.load(outer_ptr + outer_off, mask=out_mask, other=0.0).to(tl.float32)
    if HAS_CLAMP:
        acc = tl.clamp(acc, clamp_low, clamp_high, propagate_nan=tl.PropagateNan.ALL)  # NaN stays NaN, as in torch
    if TO_INTEGER:
        acc = tl.floor(tl.minimum(tl.maximum(acc, 0.0), 1.0) * CODE_MAX + 0.5)
    tl.store(out_ptr + out_off, acc.to(out_ptr.dtype.element_ty), mask=out_mask)


def _pack_conv(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, kh, kw) -> (1 phase, kh*kw taps, C_in, C_out): K-major rows, contiguous over C_out."""
    c_out, c_in, kh, kw = weight.shape
    return weight.permute(2, 3, 1, 0).reshape(1, kh * kw, c_in, c_out)


def _pack_transposed(weight: torch.Tensor) -> torch.Tensor:
    """(C_in, C_out, 4, 4) -> (4 phases, 2x2 taps, C_in, C_out) for kernel-4 stride-2 padding-1.

    Output row 2i+a reads input rows i-1+a+t (t = 0, 1) through kernel row 3-a-2t; columns alike.
    """
    phases = []
    for a in (0, 1):
        for b in (0, 1):
            rows = [3 - a - 2 * t for t in (0, 1)]
            cols = [3 - b - 2 * t for t in (0, 1)]
            taps = weight[:, :, rows][:, :, :, cols]  # (C_in, C_out, 2, 2)
            phases.append(taps.permute(2, 3, 0, 1).reshape(4, weight.shape[0], weight.shape[1]))
    return torch.stack(phases)


def _prelu_slope(act: str, slope: float | torch.Tensor, c_out: int, like: torch.Tensor) -> torch.Tensor | None:
    if act != "prelu":
        return None
    prelu_slope = cast(torch.Tensor, slope)  # _args.check_activation makes prelu's slope a tensor
    return prelu_slope.detach().float().reshape(-1).expand(c_out).contiguous().to(like.device)


def _span(tensor: torch.Tensor | None) -> int:
    """The largest element offset a kernel computes from `tensor`'s data pointer (0 for None)."""
    if tensor is None:
        return 0
    return sum((size - 1) * abs(stride) for size, stride in zip(tensor.shape, tensor.stride()))


def _strides(prefix: str, tensor: torch.Tensor | None) -> dict[str, int]:
    """A tensor's (n, c, h, w) strides as the kernel's s<prefix>n, s<prefix>c, ... arguments (0 for None)."""
    values = tensor.stride() if tensor is not None else (0, 0, 0, 0)
    return {f"s{prefix}{axis}": value for axis, value in zip("nchw", values)}


def dot_precision(x: torch.Tensor) -> str:
    """The MMA input precision: TF32 for fp32 on CUDA where torch allows it for convolutions (cuDNN's flag, on by
    default, so the fused conv rounds as torch's own conv does), else IEEE fp32; fp16/bf16 multiply exactly."""
    if x.dtype == torch.float32 and not (x.is_cuda and torch.backends.cudnn.allow_tf32):
        return "ieee"
    return "tf32"


def _time_on_gpu(fn) -> float:
    """Median milliseconds per call of fn, timed with CUDA events (autotuning)."""
    return cast(float, do_bench(fn, warmup=10, rep=40, return_mode="median"))  # one number for "median"


def _launch(
    op: str,
    x: torch.Tensor,
    packed: torch.Tensor,
    bias,
    act,
    slope,
    residual,
    res_scale,
    circular: bool,
    out: torch.Tensor,
    kernel: int,
    pad: int,
    phases: int,
    config: ConvConfig | None,
    shuffle: int = 1,
    clamp: tuple[float, float] | None = None,
    outer_residual: torch.Tensor | None = None,
    outer_scale: float = 1.0,
) -> torch.Tensor:
    n, c_in, h, w = x.shape
    c_out = packed.shape[-1]
    if n * h * w == 0 or c_out == 0:
        return out
    slope_vec = _prelu_slope(act, slope, c_out, x)
    bias_f32 = None if bias is None else bias.detach().float().contiguous()
    precision = dot_precision(x)

    def run(config: ConvConfig, target: torch.Tensor) -> None:
        # Output pixels are numbered in int32 inside the kernel: split the batch so one launch cannot wrap.
        step = images_per_launch(n, h * w, config.block_m)
        for start in range(0, n, step):
            part = slice(start, start + step)
            x_part, out_part = x[part], target[part]
            res_part = residual[part] if residual is not None else None
            outer_part = outer_residual[part] if outer_residual is not None else None
            m = x_part.shape[0] * h * w
            grid = (triton.cdiv(m, config.block_m), triton.cdiv(c_out, config.block_n), phases)
            _conv_act_kernel[grid](
                x_ptr=x_part,
                w_ptr=packed,
                bias_ptr=bias_f32,
                slope_ptr=slope_vec,
                res_ptr=res_part,
                outer_ptr=outer_part,
                out_ptr=out_part,
                H=h,
                W=w,
                M=m,
                C_in=c_in,
                C_out=c_out,
                **_strides("x", x_part),
                **_strides("o", out_part),
                **_strides("r", res_part),
                **_strides("q", outer_part),
                slope_value=float(slope) if act == "leaky_relu" else 0.0,
                res_scale=float(res_scale),
                outer_scale=float(outer_scale),
                clamp_low=None if clamp is None else float(clamp[0]),
                clamp_high=None if clamp is None else float(clamp[1]),
                KH=kernel,
                KW=kernel,
                PAD=pad,
                OUT_STEP=2 if phases == 4 else 1,
                ACT=act,
                CIRCULAR=circular,
                SHUFFLE=shuffle,
                CODE_MAX=INTEGER_RANGE.get(out.dtype, 0.0),
                DOT_PRECISION=precision,
                BLOCK_M=config.block_m,
                BLOCK_N=config.block_n,
                BLOCK_K=config.block_k,
                num_warps=config.num_warps,
                num_stages=config.num_stages,
            )

    if config is None:
        # Candidates are timed into a scratch output: `out` may be the residual (in-place add) or a slice of x's buffer.
        scratch: torch.Tensor | None = None

        def trial(candidate: ConvConfig) -> None:
            nonlocal scratch
            if scratch is None:
                scratch = torch.empty_like(out)
            run(candidate, scratch)

        device = torch.cuda.get_device_name(x.device) if x.is_cuda else str(x.device)
        config = tuned_conv_config(
            op,
            device,
            f"{x.dtype}-{precision}",
            kernel,
            c_in,
            c_out,
            n * h * w * phases,
            trial,
            _time_on_gpu,
            skip=(OutOfResources,),
            dot_precision=precision,
            shuffle=shuffle,
        )
    run(config, out)
    return out


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
    config: ConvConfig | None = None,
    checked: bool = True,
) -> torch.Tensor:
    """Triton conv2d_act; semantics in kernels.reference.conv2d_act (clamp and codes in the epilogue). `config`
    overrides the launch rule (tests)."""
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
    packed = _weight_cache.packed(weight, "conv", x.dtype, _pack_conv)
    if out is None:
        image, out = new_result(x, weight.shape[0], x.shape[2], x.shape[3], out_dtype or x.dtype)
    else:
        image = out
    k = weight.shape[-1]
    _launch(
        "conv2d_act",
        x,
        packed,
        bias,
        act,
        slope,
        residual,
        res_scale,
        padding_mode == "circular",
        out,
        kernel=k,
        pad=k // 2,
        phases=1,
        config=config,
        clamp=clamp,
        outer_residual=outer_residual,
        outer_scale=outer_scale,
    )
    return image


def conv_transpose2d_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    act: str = "none",
    slope: float | torch.Tensor = 0.2,
    *,
    padding_mode: str = "zeros",
    out: torch.Tensor | None = None,
    config: ConvConfig | None = None,
) -> torch.Tensor:
    """Triton conv_transpose2d_act (k4 s2 p1) as four phase convolutions; semantics in the reference."""
    _args.check_conv_transpose2d_act(x, weight, bias, act, slope, padding_mode, out)
    packed = _weight_cache.packed(weight, "transposed_k4s2p1", x.dtype, _pack_transposed)
    if out is None:
        out = new_result(x, weight.shape[1], 2 * x.shape[2], 2 * x.shape[3])[0]
    return _launch(
        "conv_transpose2d_act",
        x,
        packed,
        bias,
        act,
        slope,
        None,
        1.0,
        padding_mode == "circular",
        out,
        kernel=2,
        pad=1,
        phases=4,
        config=config,
    )


def conv2d_pixel_shuffle_add(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    scale: int,
    base: torch.Tensor | None = None,
    clamp: tuple[float, float] | None = None,
    out_dtype: torch.dtype | None = None,
    *,
    config: ConvConfig | None = None,
    checked: bool = True,
) -> torch.Tensor:
    """Triton conv2d_pixel_shuffle_add: the last conv writes the final image; semantics in the reference."""
    if checked:
        scale = _args.check_conv2d_pixel_shuffle_add(x, weight, bias, scale, base, clamp, out_dtype)
    packed = _weight_cache.packed(weight, "conv", x.dtype, _pack_conv)
    _, _, h, w = x.shape
    image, out = new_result(x, weight.shape[0] // (scale * scale), h * scale, w * scale, out_dtype or x.dtype)
    k = weight.shape[-1]
    _launch(
        "conv2d_pixel_shuffle_add",
        x,
        packed,
        bias,
        "none",
        0.0,
        base,
        1.0,
        False,
        out,
        kernel=k,
        pad=k // 2,
        phases=1,
        config=config,
        shuffle=scale,
        clamp=clamp,
    )
    return image
