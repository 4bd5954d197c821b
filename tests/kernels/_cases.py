"""Inputs shared by the kernel tests: seeded convolution problems with their plain-torch oracle, NaN-poisoned
output buffers, and small launch configurations that make the interpreter run many programs and masked tails."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srkit.kernels._launch import ConvConfig, ElementwiseConfig

ACTS = ("none", "relu", "leaky_relu", "prelu", "tanh", "silu", "gate")
# Small tiles so several programs, several K chunks and masked tails all run under the interpreter.
SMALL_CONV_CONFIG = ConvConfig(block_m=32, block_n=16, block_k=16, num_warps=1, num_stages=1)
# The same for the resampling and pixel-shuffle kernels: many programs, masked channel and pixel tails.
SMALL_ELEMENTWISE_CONFIG = ElementwiseConfig(block_p=64, block_c=16, num_warps=1)


def nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def make_case(c_in, c_out, k, act, h=13, w=17, batch=2, dtype=torch.float32, seed=0, device="cpu"):
    """Seeded random conv problem: input, weight, bias and the slope the activation needs."""
    g = torch.Generator().manual_seed(seed)
    x = nhwc(torch.randn(batch, c_in, h, w, generator=g)).to(device=device, dtype=dtype)
    weight = (torch.randn(c_out, c_in, k, k, generator=g) / (c_in * k * k) ** 0.5).to(device)
    bias = (torch.randn(c_out, generator=g) * 0.1).to(device)
    slope = (torch.rand(c_out, generator=g) * 0.5).to(device) if act == "prelu" else 0.1
    return x, weight, bias, slope


def torch_conv_act(x, weight, bias, act, slope, residual=None, res_scale=1.0, padding_mode="zeros"):
    """Plain-torch oracle in fp32, built only from torch.nn.functional ops."""
    pad = weight.shape[-1] // 2
    conv = torch.nn.Conv2d(
        weight.shape[1], weight.shape[0], weight.shape[-1], padding=pad, padding_mode=padding_mode, device=x.device
    )
    with torch.no_grad():
        conv.weight.copy_(weight.float())
        conv.bias.copy_(bias.float()) if bias is not None else conv.bias.zero_()
        y = conv(x.float())
    if act == "gate":  # SPAN's attention: the residual sum is gated by the conv output
        y = y * res_scale if residual is None else y * res_scale + residual.float()
        return y * (torch.sigmoid(conv(x.float())) - 0.5)
    y = {
        "none": lambda v: v,
        "relu": F.relu,
        "tanh": torch.tanh,
        "silu": F.silu,
        "leaky_relu": lambda v: F.leaky_relu(v, slope),
        "prelu": lambda v: F.prelu(v, slope.float() if isinstance(slope, torch.Tensor) else slope),
    }[act](y)
    y = y * res_scale
    return y if residual is None else y + residual.float()


def poisoned(shape, dtype, device="cpu") -> torch.Tensor:
    """A channels_last output buffer full of NaN, so any element the kernel fails to write shows up."""
    return torch.full(shape, float("nan"), dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
