"""upsample: Triton (interpreter) vs reference vs F.interpolate for every mode, odd sizes, scales, layouts, dtypes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.kernels as K
from srkit.kernels import _launch, triton_upsample
from srkit.kernels._launch import ElementwiseConfig

from ._cases import SMALL_ELEMENTWISE_CONFIG, poisoned
from ._compare import assert_close_dtype, assert_close_rounded

MODES = [("nearest", False), ("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True)]
MODE_IDS = [f"{mode}-ac{int(align)}" for mode, align in MODES]
# Several programs along both axes with masked tails, besides the interpreter's one big block.
LAYOUTS = ["channels_last", "nchw", "slice"]


def _input(batch, c, h, w, dtype=torch.float32, seed=0, layout="channels_last", device="cpu"):
    """Seeded (N, C, H, W) input: channels_last, contiguous NCHW, or a channel window of a wider channels_last one."""
    g = torch.Generator().manual_seed(seed)
    if layout == "slice":
        wide = torch.randn(batch, c + 7, h, w, generator=g).to(device, dtype)
        return wide.contiguous(memory_format=torch.channels_last)[:, 3 : 3 + c]
    x = torch.randn(batch, c, h, w, generator=g).to(device, dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x.contiguous()


def _torch(x, scale, mode, align_corners):
    """The fp32 oracle: F.interpolate with scale_factor, as a user would call it."""
    kwargs = {} if mode == "nearest" else {"align_corners": align_corners}
    return F.interpolate(x.float(), scale_factor=scale, mode=mode, **kwargs)


def _run_both(use_backend, *args):
    """The public op on the Triton path, then on the reference path."""
    use_backend("triton")
    got = K.upsample(*args)
    use_backend("reference")
    return got, K.upsample(*args)


def _check_float32(got, expected, mode, what):
    """Nearest copies pixels, so it must be exact; the others are compared at fp32 tolerance."""
    assert got.is_contiguous(memory_format=torch.channels_last), f"{what}: not channels_last"
    if mode == "nearest":
        assert torch.equal(got, expected), what
    else:
        assert_close_dtype(got, expected, torch.float32, what)


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (7, 11), (13, 5)])
def test_matches_interpolate_on_odd_sizes(use_backend, poison_allocations, mode, align_corners, scale, h, w):
    x = _input(2, 5, h, w, seed=h * 100 + w + scale)
    expected = _torch(x, scale, mode, align_corners)
    got, ref = _run_both(use_backend, x, scale, mode, align_corners)
    _check_float32(got, expected, mode, f"triton {mode} ac={align_corners} x{scale} {h}x{w}")
    _check_float32(ref, expected, mode, f"reference {mode} ac={align_corners} x{scale} {h}x{w}")


@pytest.mark.parametrize("scale", [5, 6, 7, 8])
def test_nearest_is_exact_for_larger_scales(use_backend, poison_allocations, scale):
    x = _input(2, 3, 6, 7, seed=scale)
    got, ref = _run_both(use_backend, x, scale, "nearest", False)
    assert torch.equal(got, _torch(x, scale, "nearest", False)) and torch.equal(ref, got)


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("channels", [3, 12, 48, 64, 37])
def test_channel_counts_with_small_tiles(poison_allocations, mode, align_corners, channels):
    x = _input(2, channels, 5, 6, seed=channels)
    got = triton_upsample.upsample(x, 3, mode, align_corners, config=SMALL_ELEMENTWISE_CONFIG)
    _check_float32(got, _torch(x, 3, mode, align_corners), mode, f"{mode} ac={align_corners} C={channels}")


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_memory_layouts(use_backend, poison_allocations, mode, align_corners, layout):
    x = _input(2, 6, 5, 7, seed=4, layout=layout)
    got, ref = _run_both(use_backend, x, 2, mode, align_corners)
    _check_float32(got, _torch(x, 2, mode, align_corners), mode, f"triton {layout}")
    _check_float32(ref, _torch(x, 2, mode, align_corners), mode, f"reference {layout}")


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("scale", [2, 3])
def test_fp16_is_the_fp32_result_rounded_once(use_backend, poison_allocations, mode, align_corners, scale):
    x = _input(2, 12, 9, 7, dtype=torch.float16, seed=3 + scale)
    expected = _torch(x, scale, mode, align_corners)
    got, ref = _run_both(use_backend, x, scale, mode, align_corners)
    assert got.dtype == ref.dtype == torch.float16
    assert_close_rounded(got, expected, f"triton fp16 {mode} ac={align_corners} x{scale}")
    assert_close_rounded(ref, expected, f"reference fp16 {mode} ac={align_corners} x{scale}")


@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
def test_batch_split_across_launches(monkeypatch, poison_allocations, mode, align_corners):
    x = _input(3, 5, 4, 6, seed=11)
    # Room for one 8x12 output image (plus a block's tail) per launch: three launches for a batch of three.
    monkeypatch.setattr(_launch, "MAX_LAUNCH_INDEX", 8 * 12 + SMALL_ELEMENTWISE_CONFIG.block_p)
    got = triton_upsample.upsample(x, 2, mode, align_corners, config=SMALL_ELEMENTWISE_CONFIG)
    _check_float32(got, _torch(x, 2, mode, align_corners), mode, f"{mode} ac={align_corners} split batch")


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
def test_out_writes_a_channel_slice_of_a_wider_buffer(use_backend, mode, align_corners, backend):
    """SeedNet's joined buffer: the result lands in channels 4..9 of 13, every element of the slice written and
    the other channels untouched (NaN-poisoned)."""
    x = _input(2, 5, 7, 3, seed=21)
    wide = poisoned((2, 13, 21, 9), torch.float32)
    use_backend(backend)
    got = K.upsample(x, 3, mode, align_corners, wide[:, 4:9])
    assert got.data_ptr() == wide[:, 4:9].data_ptr()
    _check_float32(
        wide[:, 4:9].contiguous(memory_format=torch.channels_last),
        _torch(x, 3, mode, align_corners),
        mode,
        f"{backend} {mode} into a slice",
    )
    assert torch.isnan(wide[:, :4]).all() and torch.isnan(wide[:, 9:]).all()


BAD_OUTS = [
    (lambda x: torch.empty(1, 3, 8, 7), ValueError, "shape"),
    (lambda x: torch.empty(1, 3, 8, 8, dtype=torch.float16), TypeError, "dtype"),
    (lambda x: x, ValueError, "shape"),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("make,error,needle", BAD_OUTS, ids=["shape", "dtype", "input"])
def test_a_wrong_out_is_refused(use_backend, backend, make, error, needle):
    use_backend(backend)
    x = _input(1, 3, 4, 4)
    with pytest.raises(error, match=needle):
        K.upsample(x, 2, "bilinear", False, make(x))
    overlapping = torch.empty(1, 3, 8, 8)
    with pytest.raises(ValueError, match="shares memory"):
        K.upsample(overlapping[:, :, :4, :4], 2, "nearest", False, overlapping)


def test_image_too_large_for_one_launch_is_refused(monkeypatch):
    monkeypatch.setattr(_launch, "MAX_LAUNCH_INDEX", 100)
    with pytest.raises(ValueError, match="too large for one kernel launch"):
        triton_upsample.upsample(_input(1, 3, 4, 6), 2, "nearest", config=SMALL_ELEMENTWISE_CONFIG)


BAD_CALLS = [
    ({"scale": 1.5}, TypeError, "scale"),
    ({"scale": 0}, ValueError, "scale"),
    ({"scale": True}, TypeError, "scale"),
    ({"mode": "area"}, ValueError, "mode"),
    ({"mode": "nearest", "align_corners": True}, ValueError, "align_corners"),
    ({"align_corners": "yes"}, TypeError, "align_corners"),
    ({"x": torch.zeros(1, 3, 4, 4, dtype=torch.uint8)}, TypeError, "x"),
    ({"x": torch.zeros(3, 4, 4)}, ValueError, "x"),
    ({"x": [[0.0]]}, TypeError, "x"),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("override,error,needle", BAD_CALLS, ids=[str(c[0])[:40] for c in BAD_CALLS])
def test_invalid_arguments_name_the_argument(use_backend, backend, override, error, needle):
    use_backend(backend)
    kwargs = {"x": _input(1, 3, 4, 4), "scale": 2, "mode": "bilinear", "align_corners": False} | override
    with pytest.raises(error, match=needle):
        K.upsample(**kwargs)


@pytest.mark.gpu
class TestOnCuda:
    """The compiled kernel on a GPU: the same comparisons, bf16 included, GPU-sized and small tiles."""

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    @pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
    @pytest.mark.parametrize("layout", LAYOUTS)
    def test_matches_interpolate(self, poison_allocations, dtype, mode, align_corners, layout):
        x = _input(2, 64, 37, 53, dtype=dtype, layout=layout, device="cuda")
        for scale in (1, 2, 3, 4):
            got = triton_upsample.upsample(x, scale, mode, align_corners)
            expected = _torch(x, scale, mode, align_corners)
            what = f"cuda {dtype} {mode} ac={align_corners} x{scale} {layout}"
            if dtype == torch.float32:
                _check_float32(got, expected, mode, what)
            else:
                assert_close_rounded(got, expected, what)

    @pytest.mark.parametrize(
        "config", [SMALL_ELEMENTWISE_CONFIG, ElementwiseConfig(32, 64, 2), ElementwiseConfig(256, 4, 8)]
    )
    @pytest.mark.parametrize("mode,align_corners", MODES, ids=MODE_IDS)
    def test_tiles_and_odd_sizes(self, poison_allocations, config, mode, align_corners):
        for h, w, channels in ((1, 1, 3), (1, 9, 37), (13, 5, 48)):
            x = _input(2, channels, h, w, device="cuda", seed=h + w)
            for scale in (2, 3, 5):
                got = triton_upsample.upsample(x, scale, mode, align_corners, config=config)
                _check_float32(got, _torch(x, scale, mode, align_corners), mode, f"cuda {config} {h}x{w}x{scale}")
