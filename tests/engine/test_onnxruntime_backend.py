"""The ONNX Runtime executor, on srkit's ONNX export of the network: its output against srkit's fp32 PyTorch path
on a real photo at an odd size (every fused architecture, an output resize left to the Upscaler), the export
cached, and its threads."""

from __future__ import annotations

import pytest
import torch

import srkit
from srkit.engine import onnxruntime_backend
from srkit.engine.onnxruntime_backend import OnnxRuntimePlan
from srkit.models.zoo import LoadedModel, load_model

from . import _cpu
from ._models import small_model

pytest.importorskip("onnxruntime", reason="the ONNX Runtime executor needs onnxruntime (pip install 'srkit[cpu]')")


@pytest.fixture(autouse=True)
def onnxruntime(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path_factory.getbasetemp() / "ort-cache"))
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "onnxruntime")
    monkeypatch.delenv("SRKIT_KERNELS", raising=False)


def _small(name: str) -> LoadedModel:
    module, info = small_model(name, seed=12)
    return LoadedModel.of(module, info, f"test-{name}")


@pytest.mark.parametrize("name", ["realesr-animevideov3-x2", "compact-gray-x2", "rrdb-x4", "rrdb-x2", "span-x4"])
def test_onnxruntime_is_within_45_db_of_fp32(monkeypatch, name):
    model = load_model(name) if name.startswith("realesr") else _small(name)
    image = _cpu.photo()[:37, :51]
    up = srkit.Upscaler(model, device="cpu")
    assert isinstance(up.runner.executor, OnnxRuntimePlan)
    out = up.upscale(image)
    expected = _cpu.reference(model, image, monkeypatch)
    assert out.shape == expected.shape
    assert _cpu.psnr(out, expected) >= 45.0


def test_the_export_is_written_once(monkeypatch):
    model = _small("compact-x3")
    first = srkit.Upscaler(model, device="cpu").runner.executor.path
    monkeypatch.setattr(onnxruntime_backend, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    assert srkit.Upscaler(model, device="cpu").runner.executor.path == first


def test_threads_follow_torchs_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        plan = srkit.Upscaler(_small("compact-x3"), device="cpu").runner.executor
        assert plan.session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
