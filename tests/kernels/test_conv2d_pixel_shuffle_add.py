"""conv2d_pixel_shuffle_add: the last conv writes the final image (shuffle + nearest base + clamp + packing)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.kernels as K
from srkit.kernels import triton_conv
from srkit.kernels._launch import GPU_CONV_CONFIGS

from ._cases import SMALL_CONV_CONFIG
from ._compare import assert_close_dtype


def _case(c_in, channels, scale, h=7, w=9, batch=2, dtype=torch.float32, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c_in, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(channels * scale * scale, c_in, 3, 3, generator=g) / (9 * c_in) ** 0.5 * 0.3
    bias = torch.randn(channels * scale * scale, generator=g) * 0.05
    base = torch.rand(batch, channels, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    return x.to(device, dtype), weight.to(device), bias.to(device), base.to(device, dtype)


def _torch(x, weight, bias, scale, base, clamp):
    """Oracle from plain torch ops: conv, pixel shuffle, nearest interpolation of the base, clamp."""
    z = F.pixel_shuffle(F.conv2d(x.float(), weight.float(), bias.float(), padding=1), scale)
    if base is not None:
        z = z + F.interpolate(base.float(), scale_factor=scale, mode="nearest")
    return z if clamp is None else z.clamp(*clamp)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("c_in,channels", [(64, 3), (12, 5), (48, 1)])
@pytest.mark.parametrize("with_base", [True, False])
def test_float_output_matches_torch(use_backend, scale, c_in, channels, with_base):
    x, weight, bias, base = _case(c_in, channels, scale, seed=scale + c_in)
    base = base if with_base else None
    expected = _torch(x, weight, bias, scale, base, (0.0, 1.0))
    for backend in ("triton", "reference"):
        use_backend(backend)
        got = K.conv2d_pixel_shuffle_add(x, weight, bias, scale, base, (0.0, 1.0))
        assert got.is_contiguous(memory_format=torch.channels_last) and not torch.isnan(got).any()
        assert_close_dtype(got, expected, torch.float32, f"{backend} x{scale} {c_in}->{channels}")


# Share of codes allowed to differ by one: fp32 sums in another order (tl.dot vs oneDNN) differ by ~1e-6,
# which flips a rounding about once in a thousand at 16 bits (a code is 1.5e-5 wide), far less at 8 bits.
ROUNDING_FLIPS = {torch.uint8: 1e-3, torch.uint16: 1e-2}


@pytest.mark.parametrize("out_dtype,top", [(torch.uint8, 255), (torch.uint16, 65535)])
@pytest.mark.parametrize("h,w", [(1, 1), (5, 3), (11, 13)])
def test_integer_output_is_the_final_hwc_image(use_backend, out_dtype, top, h, w):
    x, weight, bias, base = _case(16, 3, 4, h=h, w=w, seed=h * w)
    expected = torch.floor(_torch(x, weight, bias, 4, base, None).clamp(0, 1) * top + 0.5).permute(0, 2, 3, 1)
    for backend in ("triton", "reference"):
        use_backend(backend)
        got = K.conv2d_pixel_shuffle_add(x, weight, bias, 4, base, (0.0, 1.0), out_dtype)
        assert got.dtype == out_dtype and got.shape == (2, 4 * h, 4 * w, 3) and got.is_contiguous()
        diff = (got.to(torch.int64) - expected.to(torch.int64)).abs()
        flips = (diff > 0).float().mean()
        assert diff.max() <= 1 and flips < ROUNDING_FLIPS[out_dtype], f"{backend}: {int((diff > 0).sum())} differ"


def test_small_tiles_fp16_and_a_channel_slice_input():
    x, weight, bias, base = _case(40, 3, 3, h=6, w=10, dtype=torch.float16, seed=3)
    wide = torch.zeros(2, 50, 6, 10, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    wide[:, 5:45] = x
    got = triton_conv.conv2d_pixel_shuffle_add(
        wide[:, 5:45], weight, bias, 3, base, out_dtype=torch.float32, config=SMALL_CONV_CONFIG
    )
    assert got.dtype == torch.float32
    assert_close_dtype(got, _torch(x, weight, bias, 3, base, None), torch.float16, "fp16 slice, small tiles")


BAD_CALLS = [
    ({"scale": 3}, ValueError, "multiple of scale"),
    ({"scale": 2.5}, TypeError, "scale"),
    ({"base": torch.zeros(2, 3, 7, 8)}, ValueError, "base"),
    ({"clamp": (1.0, 0.0)}, ValueError, "clamp"),
    ({"out_dtype": torch.int16}, TypeError, "out_dtype"),
    ({"weight": torch.zeros(12, 16, 5, 5)}, ValueError, "1x1 or 3x3"),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("override,error,needle", BAD_CALLS, ids=[str(c[0])[:30] for c in BAD_CALLS])
def test_invalid_arguments_name_the_argument(use_backend, backend, override, error, needle):
    use_backend(backend)
    x, weight, bias, base = _case(16, 3, 2)
    kwargs = {"x": x, "weight": weight, "bias": bias, "scale": 2, "base": base} | override
    with pytest.raises(error, match=needle):
        K.conv2d_pixel_shuffle_add(**kwargs)


@pytest.mark.gpu
@pytest.mark.parametrize("config", GPU_CONV_CONFIGS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_on_cuda(config, dtype):
    x, weight, bias, base = _case(64, 3, 4, h=37, w=53, dtype=dtype, device="cuda")
    got = triton_conv.conv2d_pixel_shuffle_add(x, weight, bias, 4, base, (0.0, 1.0), torch.uint8, config=config)
    expected = torch.floor(_torch(x, weight, bias, 4, base, None).clamp(0, 1) * 255 + 0.5).permute(0, 2, 3, 1)
    assert (got.to(torch.int64) - expected.to(torch.int64)).abs().max() <= 1


def test_clamp_keeps_nan_like_torch(use_backend):
    x, weight, bias, base = _case(8, 3, 2, h=3, w=4)
    x[0, :, 1, 2] = float("nan")
    for backend in ("triton", "reference"):
        use_backend(backend)
        got = K.conv2d_pixel_shuffle_add(x, weight, bias, 2, base, (0.0, 1.0))
        expected = _torch(x, weight, bias, 2, base, (0.0, 1.0))
        assert torch.equal(torch.isnan(got), torch.isnan(expected)) and torch.isnan(got).any(), backend
