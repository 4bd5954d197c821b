"""One rule for Triton launch settings, and whether Triton runs in its CPU interpreter.

The interpreter costs per program launched, not per element, so interpreted launches use the
largest blocks that stay correct; compiled launches use GPU-sized tiles. Exceptions to the rule are
named constants here, with the reason beside them. On CUDA, convolutions time GPU_CONV_CONFIGS once per
shape and keep the winner (`tuned_conv_config`, cache in `_autotune`); SRKIT_AUTOTUNE=0 keeps the static choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from . import _autotune

try:
    import triton
except ImportError:  # triton is Linux x86-64 only; the reference kernels still work without it
    triton = None

TRITON_AVAILABLE = triton is not None

# Read once, like Triton itself: TRITON_INTERPRET only takes effect if set before the kernels are defined.
INTERPRETING = TRITON_AVAILABLE and os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")

# Kernels index pixels in int32 (cheap division on GPUs); one launch must keep its largest pixel
# index, including a block's masked tail, below this, or the index wraps and masked-off lanes store out of bounds.
MAX_LAUNCH_INDEX = 2**31 - 1
# tl.dot needs every operand dimension to be at least 16.
MIN_DOT_DIM = 16
# Interpreted programs cost ~constant Python overhead each: one program should cover a small test image.
INTERPRETER_BLOCK_PIXELS = 1024
INTERPRETER_MAX_CHANNEL_BLOCK = 128


def next_power_of_2(n: int) -> int:
    """Smallest power of two >= n (and >= 1)."""
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass(frozen=True)
class ConvConfig:
    """Tile of the implicit GEMM: BLOCK_M output pixels x BLOCK_N output channels, BLOCK_K input channels per step."""

    block_m: int
    block_n: int
    block_k: int
    num_warps: int = 4
    num_stages: int = 3


# Measured winners for common SR shapes, keyed (kernel size, C_in, C_out): the static choice for these shapes when
# SRKIT_AUTOTUNE=0. Empty until a GPU run measures them (benchmarks/gpu_run.sh writes autotune-<gpu>.json); an
# entry belongs here only with the measurement that put it here named beside it.
CONV_CONFIG_TABLE: dict[tuple[int, int, int], ConvConfig] = {}


def conv_config(c_in: int, c_out: int, kernel: int = 3) -> ConvConfig:
    """Static launch settings for a convolution: the interpreter's, a CONV_CONFIG_TABLE entry, or the rule."""
    if INTERPRETING:
        block_n = min(max(next_power_of_2(c_out), MIN_DOT_DIM), INTERPRETER_MAX_CHANNEL_BLOCK)
        block_k = min(max(next_power_of_2(c_in), MIN_DOT_DIM), INTERPRETER_MAX_CHANNEL_BLOCK)
        return ConvConfig(INTERPRETER_BLOCK_PIXELS, block_n, block_k, num_warps=1, num_stages=1)
    if (kernel, c_in, c_out) in CONV_CONFIG_TABLE:
        return CONV_CONFIG_TABLE[kernel, c_in, c_out]
    block_n = min(max(next_power_of_2(c_out), MIN_DOT_DIM), 128)
    block_k = min(max(next_power_of_2(c_in), MIN_DOT_DIM), 64)
    return ConvConfig(128, block_n, block_k, num_warps=8 if block_n >= 128 else 4, num_stages=3)


# Candidate conv configurations: the GPU tests check each one, and tuned_conv_config times them.
GPU_CONV_CONFIGS = (
    ConvConfig(64, 32, 32, num_warps=4, num_stages=2),
    ConvConfig(128, 64, 32, num_warps=4, num_stages=3),
    ConvConfig(128, 64, 64, num_warps=4, num_stages=3),
    ConvConfig(256, 64, 64, num_warps=8, num_stages=3),
)


def tuned_conv_config(op: str, device: str, dtype: str, kernel: int, c_in: int, c_out: int, pixels: int,
                      trial: Callable[[ConvConfig], object], timer: Callable[[Callable[[], object]], float],
                      skip: tuple[type[Exception], ...] = ()) -> ConvConfig:
    """The fastest of the static choice and GPU_CONV_CONFIGS for this shape on `device`, timed once and cached.

    Interpreted or with SRKIT_AUTOTUNE=0: the static choice, untimed. `pixels` (output pixels of the call) is
    rounded up to a power of two for the key, so nearby image sizes share one entry. `trial(config)` runs the
    op once with `config`; `timer(fn)` returns milliseconds per call of fn.
    """
    if INTERPRETING or not _autotune.enabled():
        return conv_config(c_in, c_out, kernel)
    key = _autotune.make_key(op, device, dtype, kernel=kernel, c_in=c_in, c_out=c_out,
                             pixels=next_power_of_2(pixels))
    return _autotune.choose(key, lambda: tuple(dict.fromkeys((conv_config(c_in, c_out, kernel), *GPU_CONV_CONFIGS))),
                            trial, timer, skip)


@dataclass(frozen=True)
class ElementwiseConfig:
    """Tile of a gather kernel: BLOCK_P output pixels x BLOCK_C channels per program."""

    block_p: int
    block_c: int
    num_warps: int = 4


def elementwise_config(channels: int) -> ElementwiseConfig:
    """Launch settings for the resampling / pixel-shuffle kernels."""
    block_c = next_power_of_2(channels)
    if INTERPRETING:
        return ElementwiseConfig(INTERPRETER_BLOCK_PIXELS, min(block_c, INTERPRETER_MAX_CHANNEL_BLOCK), num_warps=1)
    block_c = min(block_c, 64)
    return ElementwiseConfig(max(16, 1024 // block_c), block_c, num_warps=4)


def images_per_launch(images: int, pixels_per_image: int, block_p: int) -> int:
    """How many batch items one launch may cover while its int32 pixel indices cannot overflow."""
    fit = (MAX_LAUNCH_INDEX - block_p) // max(1, pixels_per_image)
    if fit < 1:
        raise ValueError(f"an image of {pixels_per_image} pixels is too large for one kernel launch "
                         f"(int32 pixel index, at most {MAX_LAUNCH_INDEX - block_p}); process it in tiles")
    return min(images, fit)
