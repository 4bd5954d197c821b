"""conv2d_act: Triton (interpreter on CPU) vs the PyTorch reference vs plain torch, on odd shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.kernels as K
from srkit.kernels import _weight_cache, triton_conv
from srkit.kernels._launch import GPU_CONV_CONFIGS

from ._cases import ACTS, SMALL_CONV_CONFIG, make_case, nhwc, poisoned, torch_conv_act
from ._compare import assert_close, assert_close_dtype


def run_both(use_backend, *args, **kwargs):
    """Run the public op on the Triton path and on the reference path; return both results."""
    use_backend("triton")
    t = K.conv2d_act(*args, **kwargs)
    use_backend("reference")
    r = K.conv2d_act(*args, **kwargs)
    return t, r


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("c_in,c_out", [(3, 64), (12, 48), (48, 3), (64, 64), (13, 7)])
def test_matches_reference_and_torch_across_channels(use_backend, c_in, c_out, k, dtype):
    x, weight, bias, slope = make_case(c_in, c_out, k, "prelu", dtype=dtype, seed=c_in * 100 + c_out + k)
    out = poisoned((2, c_out, 13, 17), dtype)
    use_backend("triton")
    got = K.conv2d_act(x, weight, bias, "prelu", slope, out=out)
    assert got is out
    use_backend("reference")
    ref = K.conv2d_act(x, weight, bias, "prelu", slope)
    oracle = torch_conv_act(x, weight, bias, "prelu", slope)
    assert_close_dtype(got, oracle, dtype, "triton vs torch")
    assert_close_dtype(ref, oracle, dtype, "reference vs torch")
    assert ref.dtype == dtype and ref.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
@pytest.mark.parametrize("act", ACTS)
def test_every_activation_and_padding(use_backend, act, padding_mode):
    x, weight, bias, slope = make_case(12, 20, 3, act, h=9, w=6, seed=7)
    got, ref = run_both(use_backend, x, weight, bias, act, slope, padding_mode=padding_mode)
    oracle = torch_conv_act(x, weight, bias, act, slope, padding_mode=padding_mode)
    assert_close_dtype(got, oracle, torch.float32, f"triton {act} {padding_mode}")
    assert_close_dtype(ref, oracle, torch.float32, f"reference {act} {padding_mode}")


@pytest.mark.parametrize("k", [1, 3])
def test_gate_multiplies_the_residual_sum_into_a_channel_slice(use_backend, k):
    """SPAN's block end: out = (conv + x) * (sigmoid(conv) - 0.5), written into a slice of a wider buffer."""
    x, weight, bias, _ = make_case(24, 24, k, "gate", h=11, w=7, seed=5)
    wide = poisoned((2, 72, 11, 7), torch.float32)
    use_backend("triton")
    got = K.conv2d_act(x, weight, bias, "gate", residual=x, out=wide[:, 24:48])
    use_backend("reference")
    ref = K.conv2d_act(x, weight, bias, "gate", residual=x)
    oracle = torch_conv_act(x, weight, bias, "gate", None, residual=x)
    assert_close_dtype(got, oracle, torch.float32, "triton gate")
    assert_close_dtype(ref, oracle, torch.float32, "reference gate")
    assert torch.isnan(wide[:, :24]).all() and torch.isnan(wide[:, 48:]).all()


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (7, 1), (2, 3), (31, 5)])
@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_tiny_and_thin_images_with_small_tiles(h, w, padding_mode):
    x, weight, bias, slope = make_case(48, 40, 3, "leaky_relu", h=h, w=w, batch=3, seed=h * 31 + w)
    out = poisoned((3, 40, h, w), torch.float32)
    triton_conv.conv2d_act(
        x, weight, bias, "leaky_relu", slope, padding_mode=padding_mode, out=out, config=SMALL_CONV_CONFIG
    )
    oracle = torch_conv_act(x, weight, bias, "leaky_relu", slope, padding_mode=padding_mode)
    assert_close_dtype(out, oracle, torch.float32, f"{h}x{w} {padding_mode}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_circular_padding_equals_centre_of_tiled_image(dtype):
    """Independent oracle for wrap padding: a zero-padded conv over a 3x3 tiling, centre tile kept."""
    x, weight, bias, _ = make_case(5, 9, 3, "none", h=6, w=11, seed=3, dtype=dtype)
    tiled = x.float().repeat(1, 1, 3, 3)
    expected = F.conv2d(tiled, weight, bias, padding=1)[:, :, 6:12, 11:22]
    got = triton_conv.conv2d_act(x, weight, bias, padding_mode="circular", config=SMALL_CONV_CONFIG)
    assert_close_dtype(got, expected, dtype, "circular vs tiled")


@pytest.mark.parametrize("res_scale", [1.0, 0.2])
def test_residual_scale_and_in_place_residual(use_backend, res_scale):
    x, weight, bias, slope = make_case(16, 16, 3, "leaky_relu", seed=11)
    residual = nhwc(torch.randn(2, 16, 13, 17, generator=torch.Generator().manual_seed(5)))
    oracle = torch_conv_act(x, weight, bias, "leaky_relu", slope, residual, res_scale)
    got, ref = run_both(use_backend, x, weight, bias, "leaky_relu", slope, residual=residual, res_scale=res_scale)
    assert_close_dtype(got, oracle, torch.float32, "triton residual")
    assert_close_dtype(ref, oracle, torch.float32, "reference residual")
    # out aliasing residual: each element is read then written by the same program, so in place is exact.
    for backend in ("triton", "reference"):
        use_backend(backend)
        acc = residual.clone()
        K.conv2d_act(x, weight, bias, "leaky_relu", slope, residual=acc, res_scale=res_scale, out=acc)
        assert_close_dtype(acc, oracle, torch.float32, f"{backend} in-place residual")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("act,k", [("none", 3), ("leaky_relu", 3), ("gate", 1)])
def test_outer_residual_around_the_residual_sum(use_backend, act, k, dtype):
    """RRDB's last dense block and block skip in one launch: (act(conv) * 0.2 + r) * 0.2 + outer, every operand a
    channel slice of a wider buffer (as in the plan), the output's neighbours untouched; odd sizes, small tiles."""
    g = torch.Generator().manual_seed(31 + k)
    x, weight, bias, slope = make_case(20, 12, k, act, h=11, w=7, dtype=dtype, seed=23 + k)
    wide = poisoned((2, 40, 11, 7), dtype)
    residual, outer = wide[:, :12], wide[:, 12:24]
    residual.copy_(torch.randn(2, 12, 11, 7, generator=g))
    outer.copy_(torch.randn(2, 12, 11, 7, generator=g))
    oracle = torch_conv_act(x, weight, bias, act, slope, residual, 0.2) * 0.5 + outer.float()
    args = (x, weight, bias, act, slope)
    epilogue = dict(residual=residual, res_scale=0.2, padding_mode="zeros", outer_residual=outer, outer_scale=0.5)
    out = wide[:, 26:38]
    triton_conv.conv2d_act(*args, out=out, **epilogue, config=SMALL_CONV_CONFIG)
    assert_close_dtype(out, oracle, dtype, f"triton {act} k{k} {dtype}")
    assert torch.isnan(wide[:, 24:26]).all() and torch.isnan(wide[:, 38:]).all(), "neighbours of out were written"
    use_backend("triton")
    assert_close_dtype(K.conv2d_act(*args, **epilogue), oracle, dtype, "triton, default launch")
    use_backend("reference")
    ref = K.conv2d_act(*args, **epilogue)
    assert ref.dtype == dtype and ref.is_contiguous(memory_format=torch.channels_last)
    assert_close_dtype(ref, oracle, dtype, f"reference {act} k{k} {dtype}")
    for backend in ("triton", "reference"):  # out aliasing the outer residual: read then written per element
        use_backend(backend)
        acc = outer.clone()
        K.conv2d_act(*args, **{**epilogue, "outer_residual": acc}, out=acc)
        assert_close_dtype(acc, oracle, dtype, f"{backend} in place on the outer residual")


def test_res_scale_applies_without_residual(use_backend):
    x, weight, bias, _ = make_case(8, 8, 3, "relu", seed=2)
    got, ref = run_both(use_backend, x, weight, bias, "relu", res_scale=0.5)
    oracle = torch_conv_act(x, weight, bias, "relu", None, res_scale=0.5)
    assert_close_dtype(got, oracle, torch.float32, "triton")
    assert_close_dtype(ref, oracle, torch.float32, "reference")


def test_fp16_activations_with_fp32_residual(use_backend):
    x, weight, bias, slope = make_case(24, 12, 3, "prelu", dtype=torch.float16, seed=4)
    residual = torch.randn(2, 12, 13, 17, generator=torch.Generator().manual_seed(9))
    got, ref = run_both(use_backend, x, weight, bias, "prelu", slope, residual=residual, res_scale=0.2)
    oracle = torch_conv_act(x, weight, bias, "prelu", slope, residual, 0.2)
    assert got.dtype == ref.dtype == torch.float16
    assert_close_dtype(got, oracle, torch.float16, "triton")
    assert_close_dtype(ref, oracle, torch.float16, "reference")


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_dense_block_writes_a_channel_slice_in_place(use_backend, backend):
    """Input = first channels of a wide buffer, output = the next ones: no torch.cat, nothing else touched."""
    use_backend(backend)
    g = torch.Generator().manual_seed(21)
    buf = poisoned((2, 100, 11, 9), torch.float32)
    buf[:, :20] = torch.randn(2, 20, 11, 9, generator=g)
    weight = torch.randn(32, 20, 3, 3, generator=g) * 0.1
    bias = torch.randn(32, generator=g)
    before_x = buf[:, :20].clone()
    K.conv2d_act(buf[:, :20], weight, bias, "leaky_relu", 0.2, out=buf[:, 20:52])
    oracle = torch_conv_act(before_x, weight, bias, "leaky_relu", 0.2)
    assert_close_dtype(buf[:, 20:52], oracle, torch.float32, "slice output")
    assert torch.equal(buf[:, :20], before_x), "the input channels were modified"
    assert torch.isnan(buf[:, 52:]).all(), "channels beyond the output slice were written"


def test_contiguous_nchw_input_is_addressed_by_strides(use_backend):
    x, weight, bias, slope = make_case(7, 5, 3, "prelu", seed=8)
    x = x.contiguous()  # plain NCHW memory
    got, _ = run_both(use_backend, x, weight, bias, "prelu", slope)
    assert_close_dtype(got, torch_conv_act(x, weight, bias, "prelu", slope), torch.float32, "nchw input")


def test_weights_are_repacked_once_and_again_after_an_in_place_update():
    x, weight, bias, _ = make_case(8, 8, 3, "none", seed=13)
    before = _weight_cache.cached_entries()
    first = triton_conv.conv2d_act(x, weight, bias)
    triton_conv.conv2d_act(x, weight, bias)
    assert _weight_cache.cached_entries() == before + 1
    with torch.no_grad():
        weight.mul_(-1.0)
    flipped = triton_conv.conv2d_act(x, weight, bias)
    assert_close_dtype(flipped, torch_conv_act(x, weight, bias, "none", None), torch.float32, "after update")
    assert not torch.allclose(first, flipped)
    del weight
    assert _weight_cache.cached_entries() == before, "a freed weight's packed copy was kept"


def test_auto_backend_uses_reference_for_cpu_tensors(use_backend):
    use_backend("auto")
    assert K.backend_for(torch.zeros(1)) == "reference"
    use_backend("bogus")
    with pytest.raises(ValueError, match="SRKIT_KERNELS"):
        K.backend_for(torch.zeros(1))


BAD_CALLS = [
    ("x", TypeError, lambda x, w, b: (x.to(torch.int32), w, b), {}),
    ("x", ValueError, lambda x, w, b: (x[0], w, b), {}),
    ("input channels", ValueError, lambda x, w, b: (x, w[:, :5], b), {}),
    ("1x1 or 3x3", ValueError, lambda x, w, b: (x, torch.randn(8, 6, 5, 5), b), {}),
    ("bias", ValueError, lambda x, w, b: (x, w, b[:3]), {}),
    ("act", ValueError, lambda x, w, b: (x, w, b), {"act": "gelu"}),
    ("padding_mode", ValueError, lambda x, w, b: (x, w, b), {"padding_mode": "reflect"}),
    ("slope", TypeError, lambda x, w, b: (x, w, b), {"act": "prelu", "slope": 0.2}),
    ("slope", ValueError, lambda x, w, b: (x, w, b), {"act": "prelu", "slope": torch.ones(3)}),
    ("slope", TypeError, lambda x, w, b: (x, w, b), {"act": "leaky_relu", "slope": torch.ones(8)}),
    ("residual", ValueError, lambda x, w, b: (x, w, b), {"residual": torch.zeros(2, 8, 5, 5)}),
    ("res_scale", TypeError, lambda x, w, b: (x, w, b), {"res_scale": "0.2"}),
    ("outer_residual", ValueError, lambda x, w, b: (x, w, b), {"outer_residual": torch.zeros(2, 8, 10, 11)}),
    (
        "outer_residual",
        TypeError,
        lambda x, w, b: (x, w, b),
        {"outer_residual": torch.zeros(2, 8, 10, 12, dtype=torch.int32)},
    ),
    (
        "outer_scale",
        TypeError,
        lambda x, w, b: (x, w, b),
        {"outer_residual": torch.zeros(2, 8, 10, 12), "outer_scale": None},
    ),
    ("without an outer_residual", ValueError, lambda x, w, b: (x, w, b), {"outer_scale": 0.2}),
    ("out", ValueError, lambda x, w, b: (x, w, b), {"out": torch.zeros(2, 9, 10, 12)}),
    ("out", TypeError, lambda x, w, b: (x, w, b), {"out": torch.zeros(2, 8, 10, 12, dtype=torch.float16)}),
    ("weight is on meta", ValueError, lambda x, w, b: (x, w.to("meta"), b), {}),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("needle,error,make,kwargs", BAD_CALLS, ids=[c[0] + "-" + c[1].__name__ for c in BAD_CALLS])
def test_invalid_arguments_name_the_argument(use_backend, backend, needle, error, make, kwargs):
    use_backend(backend)
    x, weight, bias, _ = make_case(6, 8, 3, "none", h=10, w=12)
    with pytest.raises(error, match=needle):
        K.conv2d_act(*make(x, weight, bias), **kwargs)


def test_output_sharing_memory_with_input_is_refused(use_backend):
    use_backend("triton")
    buf = nhwc(torch.randn(1, 16, 5, 5))
    with pytest.raises(ValueError, match="out shares memory with x"):
        K.conv2d_act(buf[:, :8], torch.randn(8, 8, 3, 3), out=buf[:, 4:12])


# Share of codes allowed to differ by one: the Triton and oneDNN fp32 sums run in other orders (~1e-6 apart),
# which puts a value on the other side of a .5 code boundary about once in a thousand codes at 16 bits (a code is
# 1.5e-5 wide), far less often at 8 bits.
ROUNDING_FLIPS = {torch.uint8: 1e-3, torch.uint16: 1e-2}
CODE_MAX = {torch.uint8: 255, torch.uint16: 65535}


def _generator_output_case(h, w, seed):
    """The texture generator's last conv: tanh, circular padding, a phase pattern residual with scale 0.5."""
    x, weight, bias, _ = make_case(13, 3, 3, "tanh", h=h, w=w, seed=seed)
    pattern = 0.5 + 0.1 * torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed + 1))
    oracle = torch_conv_act(x, weight, bias, "tanh", None, pattern, 0.5, "circular")
    return (x, weight, bias, "tanh", 0.0), dict(residual=nhwc(pattern), res_scale=0.5, padding_mode="circular"), oracle


def _check_codes(got, z, out_dtype, what):
    """An (N, H, W, C) image of codes, each the oracle's fp32 value z rounded, or (rarely) one code off."""
    expected = torch.floor(z.clamp(0, 1) * CODE_MAX[out_dtype] + 0.5).permute(0, 2, 3, 1).to(torch.int64)
    assert got.dtype == out_dtype and got.is_contiguous() and got.shape == expected.shape, what
    diff = (got.to(torch.int64) - expected).abs()
    flips = int((diff > 0).sum())
    assert diff.max() <= 1 and flips <= ROUNDING_FLIPS[out_dtype] * diff.numel(), f"{what}: {flips} codes differ"


@pytest.mark.parametrize("clamp", [None, (0.0, 1.0), (0.2, 0.7)], ids=str)
@pytest.mark.parametrize("h,w", [(1, 1), (5, 3), (11, 13)], ids=str)
def test_clamp_in_the_epilogue(use_backend, poison_allocations, clamp, h, w):
    args, epilogue, oracle = _generator_output_case(h, w, seed=h * w)
    got, ref = run_both(use_backend, *args, **epilogue, clamp=clamp)
    expected = oracle if clamp is None else oracle.clamp(*clamp)
    assert got.is_contiguous(memory_format=torch.channels_last) and ref.dtype == torch.float32
    assert_close_dtype(got, expected, torch.float32, f"triton clamp {clamp}")
    assert_close_dtype(ref, expected, torch.float32, f"reference clamp {clamp}")


@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.uint16], ids=str)
@pytest.mark.parametrize("clamp", [None, (0.0, 1.0), (0.2, 0.7)], ids=str)
@pytest.mark.parametrize("h,w", [(1, 1), (5, 3), (11, 13)], ids=str)
def test_integer_output_is_an_hwc_image_of_codes(use_backend, poison_allocations, out_dtype, clamp, h, w):
    """The texture generator's last conv packs its codes: clamp, then [0, 1] to 0..max rounded half up."""
    args, epilogue, oracle = _generator_output_case(h, w, seed=h + w)
    got, ref = run_both(use_backend, *args, **epilogue, clamp=clamp, out_dtype=out_dtype)
    z = oracle if clamp is None else oracle.clamp(*clamp)
    _check_codes(got, z, out_dtype, f"triton {clamp}")
    _check_codes(ref, z, out_dtype, f"reference {clamp}")


@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.float32], ids=str)
def test_clamp_and_codes_with_small_tiles_and_a_split_batch(monkeypatch, poison_allocations, out_dtype):
    from srkit.kernels import _launch

    args, epilogue, oracle = _generator_output_case(5, 7, seed=23)
    monkeypatch.setattr(_launch, "MAX_LAUNCH_INDEX", 5 * 7 + SMALL_CONV_CONFIG.block_m)  # one image per launch
    got = triton_conv.conv2d_act(*args, **epilogue, clamp=(0.0, 1.0), out_dtype=out_dtype, config=SMALL_CONV_CONFIG)
    if out_dtype == torch.uint8:
        _check_codes(got, oracle, out_dtype, "small tiles")
    else:
        assert_close_dtype(got, oracle.clamp(0, 1), torch.float32, "small tiles")


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_fp16_input_with_an_fp32_output_into_a_slice(use_backend, backend):
    x, weight, bias, _ = make_case(6, 5, 3, "relu", h=7, w=9, dtype=torch.float16, seed=4)
    wide = poisoned((2, 9, 7, 9), torch.float32)
    use_backend(backend)
    got = K.conv2d_act(x, weight, bias, "relu", out=wide[:, 2:7], clamp=(0.0, 0.5), out_dtype=torch.float32)
    assert got.data_ptr() == wide[:, 2:7].data_ptr()
    assert_close_dtype(wide[:, 2:7], torch_conv_act(x, weight, bias, "relu", 0.1).clamp(0, 0.5), torch.float16, backend)
    assert torch.isnan(wide[:, :2]).all() and torch.isnan(wide[:, 7:]).all()


BAD_EPILOGUES = [
    ({"clamp": (1.0, 0.0)}, ValueError, "clamp low"),
    ({"clamp": 0.5}, TypeError, "clamp"),
    ({"out_dtype": torch.int32}, TypeError, "out_dtype"),
    ({"out_dtype": torch.uint8, "out": torch.zeros(2, 8, 10, 12)}, ValueError, "cannot be written into out"),
    ({"out_dtype": torch.float16, "out": torch.zeros(2, 8, 10, 12)}, TypeError, "out must have dtype"),
]


@pytest.mark.parametrize("backend", ["triton", "reference", "checks"])
@pytest.mark.parametrize("kwargs,error,needle", BAD_EPILOGUES, ids=[str(c[0])[:40] for c in BAD_EPILOGUES])
def test_bad_clamp_or_out_dtype_is_refused(use_backend, backend, kwargs, error, needle):
    x, weight, bias, _ = make_case(6, 8, 3, "none", h=10, w=12)
    use_backend("reference" if backend == "checks" else backend)
    op = K.CHECKS.conv2d_act if backend == "checks" else K.conv2d_act
    with pytest.raises(error, match=needle):
        op(x, weight, bias, **kwargs)


@pytest.mark.gpu
class TestOnCuda:
    """The same checks compiled for the GPU: bf16, every candidate launch config, device mix-ups."""

    @pytest.mark.parametrize("config", GPU_CONV_CONFIGS, ids=str)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    @pytest.mark.parametrize("act", ACTS)
    def test_configs_and_dtypes(self, config, dtype, act):
        x, weight, bias, slope = make_case(64, 48, 3, act, h=37, w=53, dtype=dtype, device="cuda")
        residual = torch.randn(2, 48, 37, 53, device="cuda", dtype=dtype)
        for padding_mode in ("zeros", "circular"):
            out = poisoned((2, 48, 37, 53), dtype, "cuda")
            triton_conv.conv2d_act(
                x,
                weight,
                bias,
                act,
                slope,
                residual=residual,
                res_scale=0.2,
                padding_mode=padding_mode,
                out=out,
                config=config,
            )
            oracle = torch_conv_act(x, weight, bias, act, slope, residual, 0.2, padding_mode)
            assert_close_dtype(out, oracle, dtype, f"{config} {dtype} {act} {padding_mode}")

    @pytest.mark.parametrize("config", GPU_CONV_CONFIGS, ids=str)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    def test_outer_residual(self, config, dtype):
        x, weight, bias, slope = make_case(64, 48, 3, "none", h=37, w=53, dtype=dtype, device="cuda")
        residual, outer = (torch.randn(2, 48, 37, 53, device="cuda", dtype=dtype) for _ in range(2))
        out = poisoned((2, 48, 37, 53), dtype, "cuda")
        triton_conv.conv2d_act(
            x,
            weight,
            bias,
            "none",
            slope,
            residual=residual,
            res_scale=0.2,
            out=out,
            outer_residual=outer,
            outer_scale=0.2,
            config=config,
        )
        oracle = torch_conv_act(x, weight, bias, "none", slope, residual, 0.2) * 0.2 + outer.float()
        assert_close_dtype(out, oracle, dtype, f"{config} {dtype} outer residual")

    @pytest.mark.parametrize("config", GPU_CONV_CONFIGS, ids=str)
    @pytest.mark.parametrize("out_dtype", [torch.uint8, torch.uint16], ids=str)
    def test_clamp_and_codes(self, config, out_dtype):
        x, weight, bias, _ = make_case(32, 3, 3, "tanh", h=37, w=53, device="cuda")
        pattern = torch.full((2, 3, 37, 53), 0.5, device="cuda")
        got = triton_conv.conv2d_act(
            x,
            weight,
            bias,
            "tanh",
            0.0,
            residual=pattern,
            res_scale=0.5,
            padding_mode="circular",
            clamp=(0.0, 1.0),
            out_dtype=out_dtype,
            config=config,
        )
        _check_codes(
            got, torch_conv_act(x, weight, bias, "tanh", None, pattern, 0.5, "circular"), out_dtype, f"cuda {config}"
        )

    def test_fp32_runs_tf32_where_torch_allows_it(self, monkeypatch):
        """fp32 MMAs follow torch.backends.cudnn.allow_tf32 (torch's own convolutions do): TF32 inputs keep 10
        mantissa bits, so the result is within about 1e-3 of the IEEE one, and exactly IEEE with the flag off."""
        x, weight, bias, slope = make_case(64, 48, 3, "prelu", h=37, w=53, device="cuda")
        oracle = torch_conv_act(x, weight, bias, "prelu", slope)  # flag off (conftest): an IEEE oracle
        ieee = triton_conv.conv2d_act(x, weight, bias, "prelu", slope)
        assert_close_dtype(ieee, oracle, torch.float32, "IEEE fp32")
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
        assert triton_conv.dot_precision(x) == "tf32"
        tf32 = triton_conv.conv2d_act(x, weight, bias, "prelu", slope)
        assert_close(tf32, oracle, atol=4e-3, rtol=4e-3, what="TF32")
        assert not torch.equal(tf32, ieee), "TF32 was allowed but the result is the IEEE one"

    def test_cpu_gpu_mix_is_refused(self):
        x, weight, bias, _ = make_case(8, 8, 3, "none", device="cuda")
        with pytest.raises(ValueError, match="weight"):
            K.conv2d_act(x, weight.cpu(), bias)
        with pytest.raises(ValueError, match="bias"):
            K.conv2d_act(x, weight, bias.cpu())


def test_batch_split_across_launches_keeps_every_item(monkeypatch, poison_allocations):
    """With room for one image per launch, a batch of three takes three launches (residual and output follow)."""
    from srkit.kernels import _launch

    x, weight, bias, slope = make_case(12, 20, 3, "prelu", h=5, w=7, batch=3, seed=17)
    residual = torch.randn(3, 20, 5, 7, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(_launch, "MAX_LAUNCH_INDEX", 5 * 7 + SMALL_CONV_CONFIG.block_m)
    got = triton_conv.conv2d_act(
        x, weight, bias, "prelu", slope, residual=residual, res_scale=0.5, config=SMALL_CONV_CONFIG
    )
    assert_close_dtype(got, torch_conv_act(x, weight, bias, "prelu", slope, residual, 0.5), torch.float32, "split")
    up = triton_conv.conv_transpose2d_act(x, torch.randn(12, 4, 4, 4), config=SMALL_CONV_CONFIG)
    assert not torch.isnan(up).any()


def test_checks_ops_validate_and_compute_nothing():
    """kernels.CHECKS (what a bound plan runs once at bind): the real ops' checks, results of the right shape
    and layout, the given output untouched."""
    x, weight, bias, _ = make_case(6, 12, 3, "none", h=10, w=7)
    out = poisoned((2, 12, 10, 7), torch.float32)
    assert K.CHECKS.conv2d_act(x, weight, bias, "relu", 0.2, out=out) is out
    assert torch.isnan(out).all()
    fresh = K.CHECKS.conv2d_act(x, weight, bias)
    assert fresh.shape == (2, 12, 10, 7) and fresh.is_contiguous(memory_format=torch.channels_last)
    assert K.CHECKS.conv2d_pixel_shuffle_add(x, weight, bias, 2, None, (0.0, 1.0), torch.uint8).shape == (2, 20, 14, 3)
    assert K.CHECKS.upsample(x, 3, "bilinear").shape == (2, 6, 30, 21)
    assert K.CHECKS.pixel_shuffle_add(fresh, 2).shape == (2, 3, 20, 14)
    assert K.CHECKS.conv2d_act(x, weight, out_dtype=torch.uint16).shape == (2, 10, 7, 12)
    wide = poisoned((2, 5, 20, 14), torch.float32)
    assert K.CHECKS.pixel_shuffle_add(fresh, 2, out=wide[:, 1:4]).data_ptr() == wide[:, 1:4].data_ptr()
    assert torch.isnan(wide).all()
    for call, needle in (
        (lambda: K.CHECKS.conv2d_act(x, weight, bias[:3]), "bias"),
        (lambda: K.CHECKS.conv2d_act(x, weight, outer_scale=0.5), "outer_residual"),
        (lambda: K.CHECKS.conv2d_pixel_shuffle_add(x, weight, bias, 5), "scale"),
        (lambda: K.CHECKS.upsample(x, 0), "scale"),
        (lambda: K.CHECKS.pixel_shuffle_add(fresh, 5), "scale"),
    ):
        with pytest.raises(ValueError, match=needle):
            call()


def test_int64_offsets_give_the_same_result(monkeypatch):
    """A tensor spanning more than 2**31 elements switches the kernel's offsets to int64 (INDEX_64, derived from the
    arguments); forced here by lowering the limit, the int64 path computes what the int32 one does."""
    x, weight, bias, slope = make_case(12, 20, 3, "prelu", h=5, w=7, seed=41)
    residual = nhwc(torch.randn(2, 20, 5, 7, generator=torch.Generator().manual_seed(4)))
    oracle = torch_conv_act(x, weight, bias, "prelu", slope, residual, 0.5)
    monkeypatch.setattr(triton_conv, "MAX_LAUNCH_INDEX", 16)
    got = triton_conv.conv2d_act(
        x, weight, bias, "prelu", slope, residual=residual, res_scale=0.5, config=SMALL_CONV_CONFIG
    )
    assert_close_dtype(got, oracle, torch.float32, "int64 offsets")
