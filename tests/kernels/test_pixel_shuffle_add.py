"""pixel_shuffle_add: the fused last step vs F.pixel_shuffle + F.interpolate + clamp (+ uint8/uint16 HWC packing)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.kernels as K
from srkit.kernels import _launch, triton_pixel_shuffle
from srkit.kernels._launch import ElementwiseConfig

from ._cases import SMALL_ELEMENTWISE_CONFIG, poisoned
from ._compare import assert_close, assert_close_dtype, assert_close_rounded

# Several programs along both axes with masked tails, besides the interpreter's one big block.
BASE_MODES = ["nearest", "bilinear", "bicubic"]
CODE_MAX = {torch.uint8: 255, torch.uint16: 65535}
# Share of codes allowed to differ by one where the base is interpolated: torch sums the taps in another fp32
# order (~1e-7 apart), which puts a value on the other side of a .5 code boundary about once per 1e4 codes at
# 16 bits (a code is 1.5e-5 wide) and far more rarely at 8 bits. Nearest or no base: the same fp32 add, exact.
ROUNDING_FLIPS = {torch.uint8: 1e-3, torch.uint16: 1e-2}


def _case(scale, c=3, h=7, w=9, batch=2, dtype=torch.float32, seed=0, layout="channels_last", device="cpu"):
    """Seeded (y, base): channels_last, contiguous NCHW, or channel windows of wider channels_last tensors."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.randn(batch, c * scale * scale + 5, h, w, generator=g) * 0.3).to(device, dtype)
    base = torch.rand(batch, c + 4, h, w, generator=g).to(device, dtype)
    if layout == "slice":
        return (
            y.contiguous(memory_format=torch.channels_last)[:, 2 : 2 + c * scale * scale],
            base.contiguous(memory_format=torch.channels_last)[:, 1 : 1 + c],
        )
    y, base = y[:, : c * scale * scale], base[:, :c]
    if layout == "channels_last":
        return y.contiguous(memory_format=torch.channels_last), base.contiguous(memory_format=torch.channels_last)
    return y.contiguous(), base.contiguous()


def _torch(y, scale, base, base_mode, clamp):
    """The fp32 oracle from plain torch ops."""
    z = F.pixel_shuffle(y.float(), scale)
    if base is not None:
        kwargs = {} if base_mode == "nearest" else {"align_corners": False}
        z = z + F.interpolate(base.float(), scale_factor=scale, mode=base_mode, **kwargs)
    return z if clamp is None else z.clamp(*clamp)


def _codes(z, out_dtype):
    """The integer image the op should write for fp32 NCHW values z: (N, H, W, C) codes as int64."""
    return torch.floor(z.clamp(0, 1) * CODE_MAX[out_dtype] + 0.5).permute(0, 2, 3, 1).to(torch.int64)


def _run_both(use_backend, *args):
    """The public op on the Triton path, then on the reference path."""
    use_backend("triton")
    got = K.pixel_shuffle_add(*args)
    use_backend("reference")
    return got, K.pixel_shuffle_add(*args)


def _check_codes(got, expected, out_dtype, exact, what):
    """Integer image: HWC layout and dtype; codes equal, or (interpolated base) at most one apart and rarely."""
    assert got.dtype == out_dtype and got.is_contiguous() and got.shape == expected.shape, what
    diff = (got.to(torch.int64) - expected).abs()
    if exact:
        assert not diff.any(), f"{what}: {int((diff > 0).sum())} codes differ, max {int(diff.max())}"
    else:
        flips = int((diff > 0).sum())
        assert diff.max() <= 1 and flips < ROUNDING_FLIPS[out_dtype] * diff.numel(), f"{what}: {flips} codes differ"


@pytest.mark.parametrize("base_mode", BASE_MODES + [None])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("clamp", [None, (0.0, 1.0), (-0.1, 0.4)])
def test_float_output_matches_torch(use_backend, poison_allocations, base_mode, scale, clamp):
    y, base = _case(scale, seed=scale)
    base = None if base_mode is None else base
    expected = _torch(y, scale, base, base_mode, clamp)
    got, ref = _run_both(use_backend, y, scale, base, base_mode or "nearest", clamp)
    assert got.is_contiguous(memory_format=torch.channels_last) and got.dtype == torch.float32
    assert_close_dtype(got, expected, torch.float32, f"triton x{scale} {base_mode} {clamp}")
    assert_close_dtype(ref, expected, torch.float32, f"reference x{scale} {base_mode} {clamp}")
    if base_mode in (None, "nearest"):  # one fp32 add per element on both paths
        assert torch.equal(got, ref)


@pytest.mark.parametrize("base_mode", BASE_MODES)
@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (13, 5)])
def test_odd_sizes(use_backend, poison_allocations, base_mode, scale, h, w):
    y, base = _case(scale, h=h, w=w, seed=h * w + scale)
    expected = _torch(y, scale, base, base_mode, None)
    got, ref = _run_both(use_backend, y, scale, base, base_mode)
    assert_close_dtype(got, expected, torch.float32, f"triton {h}x{w} x{scale} {base_mode}")
    assert_close_dtype(ref, expected, torch.float32, f"reference {h}x{w} x{scale} {base_mode}")


@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.uint16])
@pytest.mark.parametrize("base_mode", BASE_MODES + [None])
def test_integer_output_is_hwc_codes(use_backend, poison_allocations, out_dtype, base_mode):
    y, base = _case(4, h=5, w=6, seed=9)
    base = None if base_mode is None else base
    expected = _codes(_torch(y, 4, base, base_mode, None), out_dtype)
    got, ref = _run_both(use_backend, y, 4, base, base_mode or "nearest", (0.0, 1.0), out_dtype)
    exact = base_mode in (None, "nearest")
    _check_codes(got, expected, out_dtype, exact, f"triton {base_mode}")
    _check_codes(ref, expected, out_dtype, exact, f"reference {base_mode}")


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("channels", [3, 12, 48, 64, 37])
def test_channel_counts_with_small_tiles(poison_allocations, out_dtype, channels):
    y, base = _case(2, c=channels, h=5, w=3, seed=channels)
    got = triton_pixel_shuffle.pixel_shuffle_add(
        y, 2, base, "bicubic", out_dtype=out_dtype, config=SMALL_ELEMENTWISE_CONFIG
    )
    expected = _torch(y, 2, base, "bicubic", None)
    if out_dtype == torch.float32:
        assert_close_dtype(got, expected, torch.float32, f"C={channels}")
    else:
        _check_codes(got, _codes(expected, out_dtype), out_dtype, False, f"C={channels}")


@pytest.mark.parametrize("base_mode", BASE_MODES)
@pytest.mark.parametrize("layout", ["nchw", "slice"])
def test_memory_layouts(use_backend, poison_allocations, base_mode, layout):
    y, base = _case(3, c=4, h=5, w=6, seed=5, layout=layout)
    expected = _torch(y, 3, base, base_mode, (0.0, 1.0))
    got, ref = _run_both(use_backend, y, 3, base, base_mode, (0.0, 1.0))
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert_close_dtype(got, expected, torch.float32, f"triton {layout} {base_mode}")
    assert_close_dtype(ref, expected, torch.float32, f"reference {layout} {base_mode}")


@pytest.mark.parametrize("base_mode", BASE_MODES)
def test_fp16(use_backend, poison_allocations, base_mode):
    y, base = _case(3, dtype=torch.float16, seed=2)
    expected = _torch(y, 3, base, base_mode, None)
    got, ref = _run_both(use_backend, y, 3, base, base_mode)
    assert got.dtype == ref.dtype == torch.float16
    assert_close_rounded(got, expected, f"triton fp16 {base_mode}")
    assert_close_rounded(ref, expected, f"reference fp16 {base_mode}")
    # fp16 inputs are exact in fp32, so an fp32 output keeps the fp32 sum unrounded.
    got, ref = _run_both(use_backend, y, 3, base.float(), base_mode, None, torch.float32)
    assert got.dtype == ref.dtype == torch.float32
    assert_close_dtype(got, expected, torch.float32, f"triton fp16 -> fp32 {base_mode}")
    assert_close_dtype(ref, expected, torch.float32, f"reference fp16 -> fp32 {base_mode}")


@pytest.mark.parametrize("clamp", [None, (0.0, 1.0)])
@pytest.mark.parametrize("out_dtype", [None, torch.uint8, torch.uint16])
def test_nan_and_inf_follow_the_reference(use_backend, clamp, out_dtype):
    y, base = _case(2, h=3, w=4, seed=7)
    y[0, 0, 0, 0], y[0, 1, 0, 1], y[1, 2, 2, 3] = float("nan"), float("inf"), float("-inf")
    got, ref = _run_both(use_backend, y, 2, base, "nearest", clamp, out_dtype)
    if out_dtype is None:  # NaN stays NaN through the clamp, as torch.clamp keeps it; infinities are clamped
        assert_close(got, ref, atol=0.0, rtol=0.0, what=f"clamp {clamp}")
        assert torch.isnan(got).sum() == 1
    else:  # NaN becomes code 0 (the reference's float-to-integer cast does the same here)
        expected = _codes(_torch(y, 2, base, "nearest", None).nan_to_num(nan=0.0), out_dtype)
        _check_codes(got, expected, out_dtype, True, f"triton {out_dtype}")
        _check_codes(ref, expected, out_dtype, True, f"reference {out_dtype}")


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.uint16])
def test_batch_split_across_launches(monkeypatch, poison_allocations, out_dtype):
    y, base = _case(2, c=5, h=4, w=6, batch=3, seed=12)
    # Room for one 8x12 output image (plus a block's tail) per launch: three launches for a batch of three.
    monkeypatch.setattr(_launch, "MAX_LAUNCH_INDEX", 8 * 12 + SMALL_ELEMENTWISE_CONFIG.block_p)
    got = triton_pixel_shuffle.pixel_shuffle_add(
        y, 2, base, "bilinear", (0.0, 1.0), out_dtype, config=SMALL_ELEMENTWISE_CONFIG
    )
    expected = _torch(y, 2, base, "bilinear", (0.0, 1.0))
    if out_dtype == torch.float32:
        assert_close_dtype(got, expected, torch.float32, "split batch")
    else:
        _check_codes(got, _codes(expected, out_dtype), out_dtype, False, "split batch")


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("base_mode", BASE_MODES + [None])
@pytest.mark.parametrize("scale,h,w", [(2, 5, 3), (3, 1, 1), (2, 7, 9)], ids=str)
def test_out_writes_a_channel_slice_of_a_wider_buffer(use_backend, backend, base_mode, scale, h, w):
    """The texture generator's stage input: the shuffled map lands in channels 2..6 of 11 (beside the next
    stage's noise), every element of the slice written and the other channels untouched (NaN-poisoned)."""
    y, base = _case(scale, c=4, h=h, w=w, seed=31 + scale)
    base = None if base_mode is None else base
    wide = poisoned((2, 11, h * scale, w * scale), torch.float32)
    use_backend(backend)
    got = K.pixel_shuffle_add(y, scale, base, base_mode or "nearest", (0.0, 1.0), None, wide[:, 2:6])
    assert got.data_ptr() == wide[:, 2:6].data_ptr()
    assert_close_dtype(
        wide[:, 2:6],
        _torch(y, scale, base, base_mode, (0.0, 1.0)),
        torch.float32,
        f"{backend} {base_mode} into a slice",
    )
    assert torch.isnan(wide[:, :2]).all() and torch.isnan(wide[:, 6:]).all()


def test_out_with_small_tiles_and_an_fp32_out_of_fp16_values(poison_allocations):
    y, base = _case(2, c=37, h=5, w=3, dtype=torch.float16, seed=8)
    wide = poisoned((2, 40, 10, 6), torch.float32)
    triton_pixel_shuffle.pixel_shuffle_add(
        y, 2, base, "bicubic", None, torch.float32, wide[:, 1:38], config=SMALL_ELEMENTWISE_CONFIG
    )
    assert_close_dtype(wide[:, 1:38], _torch(y, 2, base, "bicubic", None), torch.float32, "small tiles")
    assert torch.isnan(wide[:, :1]).all() and torch.isnan(wide[:, 38:]).all()


BAD_OUTS = [
    (lambda y, base: torch.empty(1, 3, 8, 7), None, ValueError, "out must have shape"),
    (lambda y, base: torch.empty(1, 3, 8, 8, dtype=torch.float16), None, TypeError, "out must have dtype"),
    (lambda y, base: torch.empty(1, 3, 8, 8), torch.uint8, ValueError, "cannot be written into out"),
    (lambda y, base: torch.empty(1, 3, 8, 8), torch.float16, TypeError, "out must have dtype"),
    (lambda y, base: y.reshape(-1)[:192].reshape(1, 3, 8, 8), None, ValueError, "shares memory with y"),
    (lambda y, base: base.as_strided((1, 3, 8, 8), (192, 64, 8, 1)), None, ValueError, "shares memory with base"),
]


@pytest.mark.parametrize("backend", ["triton", "reference", "checks"])
@pytest.mark.parametrize("make,out_dtype,error,needle", BAD_OUTS, ids=[c[3] for c in BAD_OUTS])
def test_a_wrong_out_is_refused(use_backend, backend, make, out_dtype, error, needle):
    use_backend("reference" if backend == "checks" else backend)
    op = K.CHECKS.pixel_shuffle_add if backend == "checks" else K.pixel_shuffle_add
    y, base = torch.zeros(1, 12, 4, 4), torch.zeros(1, 3, 64, 4)[:, :, :4]
    with pytest.raises(error, match=needle):
        op(y, 2, base, "bilinear", None, out_dtype, make(y, base))


BAD_CALLS = [
    ({"y": torch.zeros(1, 10, 4, 4)}, ValueError, "scale\\*\\*2"),
    ({"y": torch.zeros(1, 12, 4, 4, dtype=torch.int32)}, TypeError, "y"),
    ({"y": torch.zeros(12, 4, 4)}, ValueError, "y"),
    ({"base": torch.zeros(1, 3, 5, 4)}, ValueError, "base"),
    ({"base": torch.zeros(1, 3, 4, 4, dtype=torch.uint8)}, TypeError, "base"),
    ({"base_mode": "area"}, ValueError, "base_mode"),
    ({"clamp": (1.0, 0.0)}, ValueError, "clamp"),
    ({"clamp": 1.0}, TypeError, "clamp"),
    ({"out_dtype": torch.int32}, TypeError, "out_dtype"),
    ({"scale": 2.5}, TypeError, "scale"),
    ({"scale": 0}, ValueError, "scale"),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("override,error,needle", BAD_CALLS, ids=[str(c[0])[:40] for c in BAD_CALLS])
def test_invalid_arguments_name_the_argument(use_backend, backend, override, error, needle):
    use_backend(backend)
    kwargs = {"y": torch.zeros(1, 12, 4, 4), "scale": 2, "base": torch.zeros(1, 3, 4, 4)} | override
    with pytest.raises(error, match=needle):
        K.pixel_shuffle_add(**kwargs)


@pytest.mark.gpu
class TestOnCuda:
    """The compiled kernel on a GPU: the same comparisons, bf16 included, GPU-sized and small tiles."""

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    @pytest.mark.parametrize("base_mode", BASE_MODES)
    @pytest.mark.parametrize("layout", ["channels_last", "nchw", "slice"])
    def test_float_output(self, poison_allocations, dtype, base_mode, layout):
        for scale in (1, 2, 3, 4):
            y, base = _case(scale, h=37, w=53, dtype=dtype, layout=layout, device="cuda")
            got = triton_pixel_shuffle.pixel_shuffle_add(y, scale, base, base_mode, (0.0, 1.0))
            expected = _torch(y, scale, base, base_mode, (0.0, 1.0))
            what = f"cuda {dtype} {base_mode} x{scale} {layout}"
            if dtype == torch.float32:
                assert_close_dtype(got, expected, dtype, what)
            else:
                assert_close_rounded(got, expected, what)

    @pytest.mark.parametrize("config", [None, SMALL_ELEMENTWISE_CONFIG, ElementwiseConfig(32, 64, 2)])
    @pytest.mark.parametrize("out_dtype", [torch.uint8, torch.uint16])
    @pytest.mark.parametrize("base_mode", BASE_MODES + [None])
    def test_integer_output(self, poison_allocations, config, out_dtype, base_mode):
        y, base = _case(4, c=3, h=37, w=53, device="cuda")
        base = None if base_mode is None else base
        got = triton_pixel_shuffle.pixel_shuffle_add(
            y, 4, base, base_mode or "nearest", (0.0, 1.0), out_dtype, config=config
        )
        expected = _codes(_torch(y, 4, base, base_mode, None), out_dtype)
        _check_codes(got, expected, out_dtype, base_mode in (None, "nearest"), f"cuda {base_mode} {config}")
