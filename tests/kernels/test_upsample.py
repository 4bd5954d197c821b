"""upsample: Triton (interpreter) vs reference vs F.interpolate for every mode, odd sizes and scales."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.kernels as K
from srkit.kernels import triton_upsample
from srkit.kernels._launch import ElementwiseConfig

from ._compare import assert_close_dtype

MODES = [("nearest", False), ("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True)]
# Several programs along both axes with masked tails, besides the interpreter's one big block.
SMALL_CONFIG = ElementwiseConfig(block_p=64, block_c=4, num_warps=1)


def _input(batch, c, h, w, dtype=torch.float32, seed=0, channels_last=True):
    x = torch.randn(batch, c, h, w, generator=torch.Generator().manual_seed(seed)).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def _torch(x, scale, mode, align_corners):
    kwargs = {} if mode == "nearest" else {"align_corners": align_corners}
    return F.interpolate(x.float(), scale_factor=scale, mode=mode, **kwargs)


@pytest.mark.parametrize("mode,align_corners", MODES)
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (7, 11), (13, 5)])
def test_matches_interpolate(use_backend, mode, align_corners, scale, h, w):
    x = _input(2, 5, h, w, seed=h * 100 + w + scale)
    expected = _torch(x, scale, mode, align_corners)
    use_backend("triton")
    got = K.upsample(x, scale, mode, align_corners)
    use_backend("reference")
    ref = K.upsample(x, scale, mode, align_corners)
    assert_close_dtype(got, expected, torch.float32, f"triton {mode} ac={align_corners} x{scale} {h}x{w}")
    assert_close_dtype(ref, expected, torch.float32, "reference")
    assert got.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("scale", [5, 6, 7, 8])
def test_nearest_is_exact_for_larger_scales(scale):
    x = _input(1, 3, 6, 7, seed=scale)
    assert torch.equal(triton_upsample.upsample(x, scale, "nearest"), _torch(x, scale, "nearest", False))


@pytest.mark.parametrize("mode,align_corners", MODES)
@pytest.mark.parametrize("channels", [3, 12, 48, 64, 13])
def test_channel_counts_with_small_tiles(mode, align_corners, channels):
    x = _input(2, channels, 5, 6, seed=channels)
    got = triton_upsample.upsample(x, 3, mode, align_corners, config=SMALL_CONFIG)
    assert not torch.isnan(got).any()
    assert_close_dtype(got, _torch(x, 3, mode, align_corners), torch.float32, f"{mode} C={channels}")


@pytest.mark.parametrize("mode,align_corners", MODES)
def test_fp16(mode, align_corners):
    x = _input(2, 12, 9, 7, dtype=torch.float16, seed=3)
    got = triton_upsample.upsample(x, 2, mode, align_corners)
    assert got.dtype == torch.float16
    assert_close_dtype(got, _torch(x, 2, mode, align_corners), torch.float16, mode)


def test_nchw_memory_and_channel_slice_inputs(use_backend):
    use_backend("triton")
    x = _input(2, 6, 5, 7, channels_last=False)
    assert_close_dtype(K.upsample(x, 2, "bicubic"), _torch(x, 2, "bicubic", False), torch.float32, "nchw")
    wide = _input(2, 20, 5, 7, seed=4)
    part = wide[:, 8:14]
    assert_close_dtype(K.upsample(part, 3, "bilinear"), _torch(part, 3, "bilinear", False), torch.float32, "slice")


BAD_CALLS = [
    ({"scale": 1.5}, TypeError, "scale"),
    ({"scale": 0}, ValueError, "scale"),
    ({"scale": True}, TypeError, "scale"),
    ({"mode": "area"}, ValueError, "mode"),
    ({"mode": "nearest", "align_corners": True}, ValueError, "align_corners"),
    ({"x": torch.zeros(1, 3, 4, 4, dtype=torch.uint8)}, TypeError, "x"),
    ({"x": torch.zeros(3, 4, 4)}, ValueError, "x"),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("override,error,needle", BAD_CALLS, ids=[str(c[0]) for c in BAD_CALLS])
def test_invalid_arguments_name_the_argument(use_backend, backend, override, error, needle):
    use_backend(backend)
    kwargs = {"x": _input(1, 3, 4, 4), "scale": 2, "mode": "bilinear", "align_corners": False} | override
    with pytest.raises(error, match=needle):
        K.upsample(**kwargs)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode,align_corners", MODES)
def test_on_cuda(dtype, mode, align_corners):
    x = _input(2, 64, 37, 53, dtype=dtype).cuda()
    for scale in (2, 3, 4):
        got = triton_upsample.upsample(x, scale, mode, align_corners)
        assert_close_dtype(got, _torch(x, scale, mode, align_corners), dtype, f"{mode} x{scale} {dtype}")
