"""One rule for Triton launch settings, and whether Triton runs in its CPU interpreter.

The interpreter costs per program launched, not per element, so interpreted launches use the
largest blocks that stay correct; compiled launches use GPU-sized tiles. Exceptions to the rule are
named constants here, with the reason beside them. On CUDA, convolutions time GPU_CONV_CONFIGS once per
shape and keep the winner (`tuned_conv_config`, cache in `_autotune`); SRKIT_AUTOTUNE=0 keeps the static choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

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


def taps_in_k(c_in: int) -> bool:
    """Whether a conv's K axis runs over taps and channels together: inputs narrower than one MMA's depth (RGB)."""
    return c_in < MIN_DOT_DIM


def k_steps(c_in: int, taps: int, block_k: int) -> int:
    """Iterations of the conv's one K loop: blocks of taps x channels, or taps x channel chunks."""
    if taps_in_k(c_in):
        return -(-taps * c_in // block_k)
    return taps * -(-c_in // block_k)


def channel_block(channels: int, cap: int) -> int:
    """A power-of-two block over `channels` (at least MIN_DOT_DIM, at most `cap`) that wastes none where one can:
    the largest that divides `channels` (48 -> 16, 96 and 160 -> 32, 192 -> 64), else the next power of two."""
    divisor = channels & -channels  # largest power of two dividing channels
    if divisor >= MIN_DOT_DIM:
        return min(divisor, cap)
    return min(max(next_power_of_2(channels), MIN_DOT_DIM), cap)


# The K block of an fp32 conv whose MMA runs in IEEE fp32 (no tensor cores: torch forbids TF32): a small tile
# that the compiler handles in seconds (a 128x64x64 one took minutes and spilled 1.2-1.4 KB).
IEEE_FP32_CONFIG = ConvConfig(64, 32, 16, num_warps=4, num_stages=2)


def conv_config(c_in: int, c_out: int, kernel: int = 3, dot_precision: str = "tf32", shuffle: int = 1) -> ConvConfig:
    """Static launch settings for a convolution: the interpreter's, a CONV_CONFIG_TABLE entry, or the rule.

    The rule (read from the sm_90 compile, benchmarks/NOTES.md): 128 output pixels by a channel block that fits
    C_out (64 for 48 channels: a 16-wide block would re-read each input tile three times), K blocks of at most 32
    that divide C_in (or cover taps x channels for RGB), 4 warps, 4 stages: for 64 -> 64 fp16 that is 132
    registers and 48 KiB of shared memory, 3 CTAs per H100 SM. A pixel-shuffle epilogue (`shuffle` > 1) takes
    one image channel's shuffle*shuffle sub-pixels per tile: its scattered stores spill with wider tiles."""
    taps = kernel * kernel
    if INTERPRETING:
        block_n = min(max(next_power_of_2(c_out), MIN_DOT_DIM), INTERPRETER_MAX_CHANNEL_BLOCK)
        k = taps * c_in if taps_in_k(c_in) else c_in
        block_k = min(max(next_power_of_2(k), MIN_DOT_DIM), INTERPRETER_MAX_CHANNEL_BLOCK)
        return ConvConfig(INTERPRETER_BLOCK_PIXELS, block_n, block_k, num_warps=1, num_stages=1)
    if dot_precision == "ieee":
        return IEEE_FP32_CONFIG
    if (kernel, c_in, c_out) in CONV_CONFIG_TABLE and shuffle == 1:
        return CONV_CONFIG_TABLE[kernel, c_in, c_out]
    block_n = min(max(next_power_of_2(c_out if shuffle == 1 else shuffle * shuffle), MIN_DOT_DIM), 128)
    if taps_in_k(c_in):
        block_k = min(max(next_power_of_2(taps * c_in), MIN_DOT_DIM), 64)
    else:
        block_k = channel_block(c_in, 32)
    return ConvConfig(128, block_n, block_k, num_warps=8 if block_n >= 128 else 4, num_stages=4)


# Candidate conv configurations: the GPU tests check each one, and tuned_conv_config times them.
GPU_CONV_CONFIGS = (
    ConvConfig(64, 32, 32, num_warps=4, num_stages=2),
    ConvConfig(128, 64, 32, num_warps=4, num_stages=3),
    ConvConfig(128, 64, 64, num_warps=4, num_stages=3),
    ConvConfig(256, 64, 64, num_warps=8, num_stages=3),
)


def tuned_conv_config(
    op: str,
    device: str,
    dtype: str,
    kernel: int,
    c_in: int,
    c_out: int,
    pixels: int,
    trial: Callable[[ConvConfig], object],
    timer: Callable[[Callable[[], object]], float],
    skip: tuple[type[Exception], ...] = (),
    dot_precision: str = "tf32",
    shuffle: int = 1,
) -> ConvConfig:
    """The fastest of the static choice and GPU_CONV_CONFIGS for this shape on `device`, timed once and cached.

    Interpreted or with SRKIT_AUTOTUNE=0: the static choice, untimed. `pixels` (output pixels of the call) is
    rounded up to a power of two for the key, so nearby image sizes share one entry. `trial(config)` runs the
    op once with `config`; `timer(fn)` returns milliseconds per call of fn.
    """
    if INTERPRETING or not _autotune.enabled():
        return conv_config(c_in, c_out, kernel, dot_precision, shuffle)
    key = _autotune.make_key(op, device, dtype, kernel=kernel, c_in=c_in, c_out=c_out, pixels=next_power_of_2(pixels))
    return _autotune.choose(
        key,
        lambda: tuple(dict.fromkeys((conv_config(c_in, c_out, kernel, dot_precision, shuffle), *GPU_CONV_CONFIGS))),
        trial,
        timer,
        skip,
    )


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
        raise ValueError(
            f"an image of {pixels_per_image} pixels is too large for one kernel launch "
            f"(int32 pixel index, at most {MAX_LAUNCH_INDEX - block_p}); process it in tiles"
        )
    return min(images, fit)
