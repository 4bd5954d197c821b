"""RealCUGAN .pth files in the original project's key layout (the layout spandrel reads) load as srkit's own
architecture: spandrel's network with seeded random weights (se / pro, x2 / x3 / x4) is saved, detected and loaded,
its hyper-parameters recovered, and srkit's output (the module, the fused plan on the reference kernels and on
Triton's interpreter, Upscaler's image) must equal spandrel's module on odd-sized images."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from srkit.cli import main
from srkit.engine.plan import build_plan
from srkit.engine.runner import model_geometry, tile_overlap
from srkit.engine.tiling import upscale_tiled
from srkit.models.realcugan import BORDERS, RealCUGAN
from srkit.models.registry import detect, load_state_dict
from srkit.models.zoo import LoadedModel, import_model, load_model
from srkit.upscaler import Upscaler

from ._spandrel import randomised, save_both, spandrel_or_skip

# fp32: a bound relative to the output's peak, as random weights give values far outside [0, 1]
# (measured 1.3e-6 for the plan, 0 for the module).
RELATIVE_TOLERANCE = 2e-5
CASES = [(scale, pro) for scale in (2, 3, 4) for pro in (False, True)]


def _spandrel_class(scale: int, fast: bool = False):
    spandrel_or_skip()
    module = importlib.import_module("spandrel.architectures.RealCUGAN.__arch.upcunet_v3")
    return module.UpCunet2x_fast if fast else getattr(module, f"UpCunet{scale}x")


def _theirs(scale: int, pro: bool) -> torch.nn.Module:
    return randomised(_spandrel_class(scale)(pro=pro), seed=10 * scale + pro).eval()


def _image(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _assert_matches(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert got.shape == expected.shape, what
    error = (got.double() - expected.double()).abs().max().item()
    bound = RELATIVE_TOLERANCE * max(1.0, expected.abs().max().item())
    assert error <= bound, f"{what}: max error {error:.3g} > {bound:.3g}"


def _codes(x: torch.Tensor) -> np.ndarray:
    """An image tensor in [0, 1] as uint8 HWC codes, rounded half up as srkit writes them."""
    return np.floor(x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def _aligned(theirs: torch.nn.Module, x: torch.Tensor, align: int) -> torch.Tensor:
    """spandrel's module on `x` reflected at the bottom and right to sides divisible by `align`, cropped back: what
    srkit's engine runs (it aligns every image and tile, so windows see the stride-2 stages in phase)."""
    height, width = x.shape[2:]
    with torch.no_grad():
        y = theirs(F.pad(x, (0, (-width) % align, 0, (-height) % align), mode="reflect"))
    scale = y.shape[2] // (height + (-height) % align)
    return y[:, :, : height * scale, : width * scale]


@pytest.mark.parametrize("scale,pro", CASES)
def test_pth_round_trips_to_spandrels_output(scale, pro, tmp_path):
    theirs = _theirs(scale, pro)
    pth, safetensors = save_both(tmp_path, "cugan", theirs.state_dict())
    align = 4 if scale == 3 else 2
    x = _image(23, 27, seed=scale)  # odd sides
    with torch.no_grad():
        expected = theirs(x)
    for path in (pth, safetensors):
        model = load_model(path)
        info = model.info
        assert isinstance(model.module, RealCUGAN) and info.fused
        assert (info.arch, info.net_scale, info.in_channels, info.out_channels) == ("realcugan", scale, 3, 3)
        assert info.variant.startswith("pro" if pro else "se") and f"border {BORDERS[scale]}" in info.variant
        assert (info.size_rules.multiple_of, info.size_rules.min_size) == (align, BORDERS[scale] + align)
        with torch.no_grad():  # the module alone pads as the original does, in one reflection
            _assert_matches(model.module(x), expected, f"module from {path.suffix}")
        _assert_matches(
            build_plan(model, "cpu", torch.float32).run(x), _aligned(theirs, x, align), f"plan from {path.suffix}"
        )
    image = _codes(_image(25, 21, seed=7))
    theirs_codes = _codes(_aligned(theirs, torch.from_numpy(image.transpose(2, 0, 1) / 255).float()[None], align))
    ours = Upscaler(pth, tile=64).upscale(image)
    assert ours.shape == theirs_codes.shape
    assert np.abs(ours.astype(int) - theirs_codes.astype(int)).max() <= 1  # fp32 rounding at code boundaries


def test_plan_puts_every_stride_1_conv_on_the_fused_kernels():
    for scale, fused in ((2, 15), (3, 15), (4, 16)):  # the ncnn graphs of the same networks fuse as many
        module, info = load_state_dict(_theirs(scale, False).state_dict())
        assert len(build_plan(LoadedModel.of(module, info), "cpu", torch.float32).program.replace) == fused


def test_fused_plan_on_the_triton_kernels_equals_the_module(use_backend):
    use_backend("triton")  # Triton's interpreter on CPU tensors
    module, info = load_state_dict(_theirs(4, True).state_dict())  # x4: activated, plain and final convs
    x = _image(22, 24, seed=5)  # aligned sides just above the minimum (21): the module and the plan pad alike
    with torch.no_grad():
        expected = module(x)
    _assert_matches(build_plan(LoadedModel.of(module, info), "cpu", torch.float32).run(x), expected, "Triton plan")


def test_srkit_safetensors_reload_natively(tmp_path, monkeypatch):
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    pth, _ = save_both(tmp_path, "cugan", _theirs(3, True).state_dict())
    image = _codes(_image(19, 23, seed=9))
    reference = Upscaler(pth, tile=64).upscale(image)
    import_model(pth, "my-cugan")
    reloaded = load_model("my-cugan")
    assert reloaded.info.arch == "realcugan" and reloaded.info.variant.startswith("pro x3")
    assert np.array_equal(Upscaler(reloaded, tile=64).upscale(image), reference)


def test_fast_variant_is_left_to_spandrel():
    fast = randomised(_spandrel_class(2, fast=True)(), seed=1)
    assert detect(fast.state_dict()).id == "spandrel"


def _constant_gates(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with every squeeze-excitation gate independent of its input (their last weights zeroed)."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("seblock.conv2.weight"):
                parameter.zero_()
    return module


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_radius_bounds_what_one_input_pixel_changes(scale):
    """With constant squeeze-excitation gates, a pixel changes only outputs within the receptive radius."""
    module, info = load_state_dict(_theirs(scale, False).state_dict())
    module = _constant_gates(module).double()
    x = _image(48, 48, seed=3).double()
    poked = x.clone()
    poked[0, :, 24, 24] += 1
    with torch.no_grad():
        changed = ((module(poked) - module(x)).abs().sum((0, 1)) > 0).nonzero().double()
    reach = (changed / scale - 24).abs().max().item()
    context = tile_overlap(LoadedModel.of(module, info))
    assert info.receptive_radius - 2 <= reach <= info.receptive_radius < context  # tight within 2 px


@pytest.mark.parametrize(
    "gates,min_psnr",
    [
        ("constant", None),  # within the receptive radius: tiles equal the whole to fp32 rounding
        # squeeze-excitation averages over each tile: 88 dB of the peak measured with these random weights, 44 dB
        # with the trained x4 network (its ncnn file, test_ncnn_files)
        ("pooled", 40.0),
    ],
)
def test_tiled_equals_whole_on_an_odd_size(gates, min_psnr):
    module, info = load_state_dict(_theirs(2, False).state_dict())
    if gates == "constant":
        module = _constant_gates(module)
    model = LoadedModel.of(module, info)
    plan = build_plan(model, "cpu", torch.float32)
    photo = skimage.data.coffee()[101:202, 203:310]  # 101x107, tile statistics that differ: 25 windows
    x = torch.from_numpy(photo.transpose(2, 0, 1) / 255).float()[None]
    whole = plan.run(x)[0].permute(1, 2, 0)
    tiled = upscale_tiled(x[0], plan.run, model_geometry(model, 24))
    assert tiled.shape == whole.shape
    peak = whole.abs().max().item()
    error = (tiled - whole).abs().max().item()
    if min_psnr is None:
        assert error <= RELATIVE_TOLERANCE * peak
    else:
        psnr = 10 * math.log10(peak**2 / (tiled - whole).pow(2).mean().item())
        assert error > RELATIVE_TOLERANCE * peak and psnr >= min_psnr, psnr  # really tiled, and close


def test_export_writes_onnx_that_onnxruntime_runs_at_other_sizes(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pth, _ = save_both(tmp_path, "cugan", _theirs(4, True).state_dict())
    assert main(["models", "export", str(pth), "-o", str(tmp_path / "cugan.onnx")]) == 0
    x = _image(29, 37, seed=4)  # odd sides, not the traced example's size: the module's own alignment runs
    with torch.no_grad():
        expected = _theirs(4, True)(x).numpy()
    ours = onnxruntime.InferenceSession(str(tmp_path / "cugan.onnx")).run(None, {"input": x.numpy()})[0]
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=RELATIVE_TOLERANCE * max(1.0, np.abs(expected).max()))
