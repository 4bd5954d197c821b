"""The OpenVINO CPU backend: its output against srkit's fp32 PyTorch path (the reference), tiling, the disk
cache of converted models, and the switches that keep the PyTorch kernels (SRKIT_KERNELS, SRKIT_CPU_BACKEND)."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from skimage import data

import srkit
from srkit.cli import main
from srkit.engine import cpu_backend
from srkit.engine.cpu_backend import OpenVinoPlan
from srkit.models.zoo import LoadedModel, load_model

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
    """A real photo (scikit-image's astronaut) reduced to an odd 75x97, as uint8 RGB."""
    return cv2.resize(data.astronaut(), (97, 75), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def anime():
    return load_model("realesr-animevideov3")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _reference(model, image, monkeypatch, **options) -> np.ndarray:
    """srkit's fp32 PyTorch path on the same image."""
    with monkeypatch.context() as patch:
        patch.setenv("SRKIT_CPU_BACKEND", "torch")
        up = srkit.Upscaler(model, device="cpu", **options)
        assert not isinstance(up.plan, OpenVinoPlan)
        return up.upscale(image)


def test_default_cpu_path_is_openvino_within_45_db_of_fp32(openvino, monkeypatch, photo, anime):
    up = srkit.Upscaler(anime, device="cpu")
    assert isinstance(up.plan, OpenVinoPlan)
    assert up.plan.precision == cpu_backend.precision(None)  # bf16 where the CPU has AVX512-BF16/AMX, else f32
    out = up.upscale(photo)
    expected = _reference(anime, photo, monkeypatch)
    assert out.shape == expected.shape == (300, 388, 3)
    assert _psnr(out, expected) >= 45.0


def test_tiles_through_openvino_match_the_whole_fp32_image(openvino, monkeypatch, photo, anime):
    tiled = srkit.Upscaler(anime, device="cpu", tile=32).upscale(photo)
    expected = _reference(anime, photo, monkeypatch)
    assert _psnr(tiled, expected) >= 45.0


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
    model = LoadedModel("test-rrdb", module, info, "test")
    up = srkit.Upscaler(model, device="cpu", dtype="fp32")
    assert isinstance(up.plan, OpenVinoPlan) and up.plan.precision == "f32"
    out = up.upscale(photo[:33, :41])
    expected = _reference(model, photo[:33, :41], monkeypatch, dtype="fp32")
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_converted_model_is_reused_from_disk(openvino, monkeypatch, photo, anime):
    first = srkit.Upscaler(anime, device="cpu").upscale(photo)
    import openvino as ov

    def refuse(*args, **kwargs):
        raise AssertionError("converted again although the IR is cached")

    monkeypatch.setattr(ov, "convert_model", refuse)
    again = srkit.Upscaler(anime, device="cpu")
    assert again.plan.xml.exists() and again.plan.xml.parent == cpu_backend.cache_folder()
    assert np.array_equal(again.upscale(photo), first)


@pytest.mark.parametrize("env,value", [("SRKIT_KERNELS", "reference"), ("SRKIT_CPU_BACKEND", "torch")])
def test_switches_keep_the_pytorch_kernels(openvino, monkeypatch, capsys, env, value):
    monkeypatch.setenv(env, value)
    module, info = small_model("compact-x3", seed=2)
    up = srkit.Upscaler(LoadedModel("test-compact", module, info, "test"), device="cpu")
    assert not isinstance(up.plan, OpenVinoPlan)
    assert main(["info"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("cpu backend"))
    assert "PyTorch reference kernels" in line and f"{env}={value}" in line


def test_info_names_openvino_and_its_precision(openvino, capsys):
    assert main(["info"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("cpu backend"))
    assert "OpenVINO" in line and cpu_backend.precision(None) in line


def test_missing_openvino_falls_back_with_the_reason(openvino, monkeypatch):
    real = cpu_backend.importlib.util.find_spec
    monkeypatch.setattr(cpu_backend.importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    assert "openvino package is not installed" in cpu_backend.describe()
    module, info = small_model("compact-x3", seed=2)
    assert not isinstance(srkit.Upscaler(LoadedModel("t", module, info, "test"), device="cpu").plan, OpenVinoPlan)


def test_unknown_cpu_backend_is_refused(openvino, monkeypatch):
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "ncnn")
    with pytest.raises(ValueError, match="SRKIT_CPU_BACKEND='ncnn' is not one of openvino, torch"):
        cpu_backend.unavailable_reason("cpu")


def test_a_conversion_leaves_no_threads_behind(openvino):
    import threading

    before = threading.active_count()
    module, info = small_model("compact-x4", seed=13)  # weights no other test converts
    up = srkit.Upscaler(LoadedModel("t", module, info, "test"), device="cpu")
    assert isinstance(up.plan, OpenVinoPlan)
    assert threading.active_count() == before
