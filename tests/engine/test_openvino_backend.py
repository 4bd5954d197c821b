"""The OpenVINO executor: its output against srkit's fp32 PyTorch path (the reference), tiling, the disk cache
of converted models, its precision per CPU (fp16 where the CPU has AVX512-FP16, injected) and its threads."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

import srkit
from srkit import kernels as K
from srkit.engine import cpu_support, openvino_backend
from srkit.engine.openvino_backend import OpenVinoPlan
from srkit.models.zoo import LoadedModel, load_model

from . import _cpu
from ._models import small_model

pytest.importorskip("openvino", reason="the OpenVINO backend needs the openvino package (a dependency of srkit)")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module, so each model is converted once."""
    return tmp_path_factory.mktemp("srkit-cache")


@pytest.fixture
def openvino(monkeypatch, cache):
    """Select the OpenVINO backend (the product's default) with the module's cache folder."""
    monkeypatch.setenv("SRKIT_CACHE", str(cache))
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "openvino")
    monkeypatch.delenv("SRKIT_KERNELS", raising=False)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return _cpu.photo()


@pytest.fixture(scope="module")
def anime():
    return load_model("realesr-animevideov3")


def test_openvino_is_within_45_db_of_fp32(openvino, monkeypatch, photo, anime):
    up = srkit.Upscaler(anime, device="cpu")
    assert isinstance(up.runner.executor, OpenVinoPlan)
    # bf16 where the CPU has AVX512-BF16/AMX, else f32
    assert up.runner.executor.precision == openvino_backend.precision(None)
    out = up.upscale(photo)
    expected = _cpu.reference(anime, photo, monkeypatch)
    assert out.shape == expected.shape == (300, 388, 3)
    assert _cpu.psnr(out, expected) >= 45.0


def test_tiles_through_openvino_match_the_whole_fp32_image(openvino, monkeypatch, photo, anime):
    tiled = srkit.Upscaler(anime, device="cpu", tile=32).upscale(photo)
    expected = _cpu.reference(anime, photo, monkeypatch)
    assert _cpu.psnr(tiled, expected) >= 45.0


def test_a_run_leaves_the_network_output_in_the_request_no_numpy_copy(openvino, photo, anime):
    up = srkit.Upscaler(anime, device="cpu")
    up.upscale(photo)  # compiles the request for this shape
    tracemalloc.start()
    try:
        up.upscale(photo)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 * 388 * 3 * 4 / 8, f"{peak} bytes traced; the float32 output is {300 * 388 * 3 * 4}"


def test_fp32_request_runs_openvino_in_f32(openvino, monkeypatch, photo):
    module, info = small_model("rrdb-x4", seed=5)
    model = LoadedModel.of(module, info, "test-rrdb")
    up = srkit.Upscaler(model, device="cpu", dtype="fp32")
    assert isinstance(up.runner.executor, OpenVinoPlan) and up.runner.executor.precision == "f32"
    out = up.upscale(photo[:33, :41])
    expected = _cpu.reference(model, photo[:33, :41], monkeypatch, dtype="fp32")
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_converted_model_is_reused_from_disk(openvino, monkeypatch, photo, anime):
    first = srkit.Upscaler(anime, device="cpu").upscale(photo)
    import openvino as ov

    def refuse(*args, **kwargs):
        raise AssertionError("converted again although the IR is cached")

    monkeypatch.setattr(ov, "convert_model", refuse)
    again = srkit.Upscaler(anime, device="cpu")
    assert again.runner.executor.xml.exists() and again.runner.executor.xml.parent == openvino_backend.cache_folder()
    assert np.array_equal(again.upscale(photo), first)


def test_a_conversion_leaves_no_threads_behind(openvino):
    import threading

    before = threading.active_count()
    module, info = small_model("compact-x4", seed=13)  # weights no other test converts
    up = srkit.Upscaler(LoadedModel.of(module, info, "t"), device="cpu")
    assert isinstance(up.runner.executor, OpenVinoPlan)
    assert threading.active_count() == before


@pytest.mark.parametrize(
    "flags,dtype,expected",
    [
        ({"avx512f", "avx512_fp16"}, None, "f16"),  # Sapphire-Rapids-class fp16 without bf16 (injected)
        ({"avx512f", "avx512_fp16", "amx_bf16"}, None, "bf16"),  # AMX: bf16 first
        ({"avx512f", "avx512_fp16", "amx_bf16"}, torch.float16, "f16"),
        ({"avx2", "fma"}, None, "f32"),
        ({"avx512f", "avx512_bf16"}, torch.float32, "f32"),
    ],
)
def test_precision_follows_the_cpu_flags(monkeypatch, flags, dtype, expected):
    monkeypatch.setattr(openvino_backend, "cpu_flags", lambda: frozenset(flags))
    assert openvino_backend.precision(dtype) == expected


def test_fp16_path_runs_within_45_db_of_fp32(openvino, monkeypatch, photo, anime):
    monkeypatch.setattr(openvino_backend, "cpu_flags", lambda: frozenset({"avx512f", "avx512_fp16"}))
    up = srkit.Upscaler(anime, device="cpu")
    assert isinstance(up.runner.executor, OpenVinoPlan) and up.runner.executor.precision == "f16"
    assert _cpu.psnr(up.upscale(photo), _cpu.reference(anime, photo, monkeypatch)) >= 45.0


def test_threads_follow_torchs_count(openvino, anime):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        up = srkit.Upscaler(anime, device="cpu")
        assert up.runner.executor.threads == cpu_support.threads() == 1
        up.runner.executor.run(torch.rand(1, 3, 8, 8))
        compiled = up.runner.executor.compiled[((1, 3, 8, 8), False)].get_compiled_model()
        assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["compact-x3", "rrdb-x2", "span-x4"])
def test_openvino_packs_uint8_codes_within_one_code_of_srkits_packing(openvino, name):
    """Asked for uint8 codes, the compiled model packs them (clamp, scale, round half up, HWC) itself. Oracle: the
    same executor's float output packed by numpy; at most one code apart (where OpenVINO keeps the last layer in
    bf16 once the packing follows it: a relative error of 2^-9, half a code), on a seeded batch of two whose
    inputs reach outside [0, 1]."""
    module, info = small_model(name, seed=5)
    executor = srkit.Upscaler(LoadedModel.of(module, info, name), device="cpu").runner.executor
    assert isinstance(executor, OpenVinoPlan)
    x = torch.rand(2, 3, 22, 30, generator=torch.Generator().manual_seed(4)) * 1.4 - 0.2
    codes = executor.run(x, (0.0, 1.0), torch.uint8).numpy()
    floats = executor.run(x).numpy().transpose(0, 2, 3, 1)
    expected = np.floor(np.clip(floats, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    s = info.net_scale
    assert codes.dtype == np.uint8 and codes.shape == expected.shape == (2, 22 * s, 30 * s, 3)
    assert np.abs(codes.astype(int) - expected).max() <= 1
    assert set(executor.compiled) == {((2, 3, 22, 30), True), ((2, 3, 22, 30), False)}


def test_other_codes_and_clamps_are_packed_by_srkit(openvino, anime):
    """uint16 codes, and a clamp narrower than [0, 1], come from the float output packed by srkit's kernels: the
    same bytes as packing it here."""
    executor = srkit.Upscaler(anime, device="cpu").runner.executor
    x = torch.rand(1, 3, 17, 21, generator=torch.Generator().manual_seed(2))
    floats = executor.run(x)
    for clamp, out_dtype in (((0.0, 1.0), torch.uint16), ((0.25, 0.75), torch.uint8)):
        expected = K.pixel_shuffle_add(floats, 1, clamp=clamp, out_dtype=out_dtype)
        assert torch.equal(executor.run(x, clamp, out_dtype), expected)
    assert all(not packed for _, packed in executor.compiled)
