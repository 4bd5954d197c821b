"""conv_transpose2d_act (k4 s2 p1 as four phase convolutions): Triton vs reference vs F.conv_transpose2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.kernels as K
from srkit.kernels import triton_conv
from srkit.kernels._launch import GPU_CONV_CONFIGS

from ._cases import ACTS, SMALL_CONV_CONFIG, poisoned
from ._compare import assert_close_dtype


def make_case(c_in, c_out, act, h=7, w=10, batch=2, dtype=torch.float32, seed=0, device="cpu"):
    """Seeded transposed-conv problem; weight in torch's (C_in, C_out, 4, 4) layout."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c_in, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_in, c_out, 4, 4, generator=g) / (c_in * 4) ** 0.5
    bias = torch.randn(c_out, generator=g) * 0.1
    slope = torch.rand(c_out, generator=g) * 0.5 if act == "prelu" else 0.1
    slope = slope.to(device) if isinstance(slope, torch.Tensor) else slope
    return x.to(device=device, dtype=dtype), weight.to(device), bias.to(device), slope


def torch_transposed(x, weight, bias, act, slope):
    """Plain-torch oracle: F.conv_transpose2d (zeros padding) then the activation, in fp32."""
    y = F.conv_transpose2d(x.float(), weight.float(), bias.float(), stride=2, padding=1)
    return {
        "none": lambda v: v,
        "relu": F.relu,
        "tanh": torch.tanh,
        "silu": F.silu,
        "gate": lambda v: v * (torch.sigmoid(v) - 0.5),
        "leaky_relu": lambda v: F.leaky_relu(v, slope),
        "prelu": lambda v: F.prelu(v, slope.float() if isinstance(slope, torch.Tensor) else slope),
    }[act](y)


def torch_transposed_circular(x, weight, bias):
    """Independent oracle for wrap mode: zero-padded transposed conv of a 3x3 tiling, centre tile kept."""
    h, w = x.shape[2:]
    y = F.conv_transpose2d(x.float().repeat(1, 1, 3, 3), weight.float(), bias.float(), stride=2, padding=1)
    return y[:, :, 2 * h : 4 * h, 2 * w : 4 * w]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("c_in,c_out", [(64, 48), (48, 3), (12, 64), (13, 7)])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_matches_torch(use_backend, c_in, c_out, act, dtype):
    x, weight, bias, slope = make_case(c_in, c_out, act, dtype=dtype, seed=c_in + c_out)
    out = poisoned((2, c_out, 14, 20), dtype)
    use_backend("triton")
    assert K.conv_transpose2d_act(x, weight, bias, act, slope, out=out) is out
    use_backend("reference")
    ref = K.conv_transpose2d_act(x, weight, bias, act, slope)
    oracle = torch_transposed(x, weight, bias, act, slope)
    assert_close_dtype(out, oracle, dtype, "triton")
    assert_close_dtype(ref, oracle, dtype, "reference")


@pytest.mark.parametrize("act", ACTS)
def test_every_activation_with_small_tiles(act):
    x, weight, bias, slope = make_case(40, 24, act, h=5, w=9, batch=3, seed=3)
    got = triton_conv.conv_transpose2d_act(x, weight, bias, act, slope, config=SMALL_CONV_CONFIG)
    assert_close_dtype(got, torch_transposed(x, weight, bias, act, slope), torch.float32, act)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 6), (5, 1), (6, 11)])
@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_circular_mode_equals_centre_of_tiled_input(use_backend, backend, h, w):
    use_backend(backend)
    x, weight, bias, _ = make_case(16, 8, "none", h=h, w=w, seed=h * 7 + w)
    got = K.conv_transpose2d_act(x, weight, bias, padding_mode="circular")
    assert_close_dtype(got, torch_transposed_circular(x, weight, bias), torch.float32, f"{backend} {h}x{w}")


def test_circular_output_of_periodic_input_tiles_seamlessly(use_backend):
    """A periodic input gives a periodic output: the transposed conv of 2x2 tiles is 2x2 tiles of the output."""
    use_backend("triton")
    x, weight, bias, _ = make_case(8, 4, "none", h=4, w=6, batch=1, seed=9)
    one = K.conv_transpose2d_act(x, weight, bias, padding_mode="circular")
    tiled = K.conv_transpose2d_act(
        x.repeat(1, 1, 2, 2).contiguous(memory_format=torch.channels_last), weight, bias, padding_mode="circular"
    )
    assert_close_dtype(tiled, one.repeat(1, 1, 2, 2), torch.float32, "periodic")


def test_writes_a_channel_slice_of_a_wider_buffer(use_backend):
    use_backend("triton")
    x, weight, bias, _ = make_case(8, 6, "none", seed=5)
    buf = poisoned((2, 20, 14, 20), torch.float32)
    K.conv_transpose2d_act(x, weight, bias, out=buf[:, 4:10])
    assert_close_dtype(buf[:, 4:10], torch_transposed(x, weight, bias, "none", None), torch.float32, "slice")
    assert torch.isnan(buf[:, :4]).all() and torch.isnan(buf[:, 10:]).all()


BAD_CALLS = [
    ("4x4", ValueError, {"weight": torch.randn(8, 6, 3, 3)}),
    ("input channels", ValueError, {"weight": torch.randn(5, 6, 4, 4)}),
    ("x", TypeError, {"x": torch.zeros(2, 8, 7, 10, dtype=torch.int64)}),
    ("out", ValueError, {"out": torch.zeros(2, 6, 7, 10)}),
    ("act", ValueError, {"act": "swish"}),
    ("padding_mode", ValueError, {"padding_mode": "replicate"}),
]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("needle,error,override", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_invalid_arguments_name_the_argument(use_backend, backend, needle, error, override):
    use_backend(backend)
    x, weight, bias, _ = make_case(8, 6, "none")
    kwargs = {"x": x, "weight": weight, "bias": bias} | override
    with pytest.raises(error, match=needle):
        K.conv_transpose2d_act(**kwargs)


@pytest.mark.gpu
@pytest.mark.parametrize("config", GPU_CONV_CONFIGS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_on_cuda_every_config_and_dtype(config, dtype):
    x, weight, bias, slope = make_case(64, 32, "prelu", h=33, w=47, dtype=dtype, device="cuda")
    out = poisoned((2, 32, 66, 94), dtype, "cuda")
    triton_conv.conv_transpose2d_act(x, weight, bias, "prelu", slope, out=out, config=config)
    assert_close_dtype(out, torch_transposed(x, weight, bias, "prelu", slope), dtype, f"{config} {dtype}")
    wrapped = triton_conv.conv_transpose2d_act(x, weight, bias, padding_mode="circular", config=config)
    assert_close_dtype(wrapped, torch_transposed_circular(x, weight, bias), dtype, f"circular {config} {dtype}")
