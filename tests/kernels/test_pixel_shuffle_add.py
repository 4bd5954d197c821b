"""pixel_shuffle_add: the fused last step vs F.pixel_shuffle + F.interpolate + clamp (+ uint8/uint16 packing)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.kernels as K
from srkit.kernels import triton_pixel_shuffle
from srkit.kernels._launch import ElementwiseConfig

from ._compare import assert_close_dtype

SMALL_CONFIG = ElementwiseConfig(block_p=32, block_c=2, num_warps=1)


def _case(scale, c=3, h=7, w=9, batch=2, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.randn(batch, c * scale * scale, h, w, generator=g) * 0.3).to(dtype)
    base = torch.rand(batch, c, h, w, generator=g).to(dtype)
    return y.contiguous(memory_format=torch.channels_last), base.contiguous(memory_format=torch.channels_last)


def _torch(y, scale, base, base_mode, clamp):
    z = F.pixel_shuffle(y.float(), scale)
    if base is not None:
        kwargs = {} if base_mode == "nearest" else {"align_corners": False}
        z = z + F.interpolate(base.float(), scale_factor=scale, mode=base_mode, **kwargs)
    return z if clamp is None else z.clamp(*clamp)


@pytest.mark.parametrize("base_mode", ["nearest", "bilinear", "bicubic", None])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("clamp", [None, (0.0, 1.0), (-0.1, 0.4)])
def test_float_output_matches_torch(use_backend, base_mode, scale, clamp):
    y, base = _case(scale, seed=scale)
    base = None if base_mode is None else base
    expected = _torch(y, scale, base, base_mode or "nearest", clamp)
    use_backend("triton")
    got = K.pixel_shuffle_add(y, scale, base, base_mode or "nearest", clamp)
    use_backend("reference")
    ref = K.pixel_shuffle_add(y, scale, base, base_mode or "nearest", clamp)
    assert_close_dtype(got, expected, torch.float32, f"triton x{scale} {base_mode} {clamp}")
    assert_close_dtype(ref, expected, torch.float32, "reference")


@pytest.mark.parametrize("out_dtype,top", [(torch.uint8, 255), (torch.uint16, 65535)])
@pytest.mark.parametrize("base_mode", ["nearest", "bicubic"])
def test_integer_output_is_hwc_codes(use_backend, out_dtype, top, base_mode):
    y, base = _case(4, h=5, w=6, seed=9)
    expected = torch.floor(_torch(y, 4, base, base_mode, None).clamp(0, 1) * top + 0.5).permute(0, 2, 3, 1)
    for backend in ("triton", "reference"):
        use_backend(backend)
        got = K.pixel_shuffle_add(y, 4, base, base_mode, (0.0, 1.0), out_dtype)
        assert got.dtype == out_dtype and got.shape == (2, 20, 24, 3) and got.is_contiguous()
        # Codes agree exactly except where fp32 rounding puts a value on the other side of a .5 boundary.
        diff = (got.to(torch.int64) - expected.to(torch.int64)).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3, f"{backend}: {int((diff > 0).sum())} differ"


@pytest.mark.parametrize("channels", [3, 12, 48, 64, 5])
def test_channel_counts_with_small_tiles(channels):
    y, base = _case(2, c=channels, h=5, w=3, seed=channels)
    got = triton_pixel_shuffle.pixel_shuffle_add(y, 2, base, "bilinear", config=SMALL_CONFIG)
    assert not torch.isnan(got).any()
    assert_close_dtype(got, _torch(y, 2, base, "bilinear", None), torch.float32, f"C={channels}")


def test_fp16_in_fp32_out_and_nchw_inputs():
    y, base = _case(3, dtype=torch.float16, seed=2)
    got = triton_pixel_shuffle.pixel_shuffle_add(y.contiguous(), 3, base.contiguous(), "nearest",
                                                 out_dtype=torch.float32)
    assert got.dtype == torch.float32
    assert_close_dtype(got, _torch(y, 3, base, "nearest", None), torch.float16, "fp16 inputs")


BAD_CALLS = [
    ({"y": torch.zeros(1, 10, 4, 4)}, ValueError, "scale\\*\\*2"),
    ({"base": torch.zeros(1, 3, 5, 4)}, ValueError, "base"),
    ({"base_mode": "area"}, ValueError, "base_mode"),
    ({"clamp": (1.0, 0.0)}, ValueError, "clamp"),
    ({"clamp": 1.0}, TypeError, "clamp"),
    ({"out_dtype": torch.int32}, TypeError, "out_dtype"),
    ({"scale": 2.5}, TypeError, "scale"),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("override,error,needle", BAD_CALLS, ids=[str(c[0])[:30] for c in BAD_CALLS])
def test_invalid_arguments_name_the_argument(use_backend, backend, override, error, needle):
    use_backend(backend)
    kwargs = {"y": torch.zeros(1, 12, 4, 4), "scale": 2, "base": torch.zeros(1, 3, 4, 4)} | override
    with pytest.raises(error, match=needle):
        K.pixel_shuffle_add(**kwargs)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("base_mode", ["nearest", "bilinear", "bicubic"])
def test_on_cuda(dtype, base_mode):
    y, base = _case(4, c=3, h=37, w=53, dtype=dtype)
    got = triton_pixel_shuffle.pixel_shuffle_add(y.cuda(), 4, base.cuda(), base_mode, (0.0, 1.0))
    assert_close_dtype(got, _torch(y, 4, base, base_mode, (0.0, 1.0)), dtype, f"{dtype} {base_mode}")
    codes = triton_pixel_shuffle.pixel_shuffle_add(y.cuda(), 4, base.cuda(), base_mode, (0.0, 1.0), torch.uint8)
    expected = torch.floor(_torch(y, 4, base, base_mode, None).clamp(0, 1) * 255 + 0.5).permute(0, 2, 3, 1)
    assert (codes.cpu().to(torch.int64) - expected.to(torch.int64)).abs().max() <= 1
