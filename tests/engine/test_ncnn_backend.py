"""The ncnn executor: fed the model's own .param/.bin where that is the network srkit loaded, else srkit's export;
its output against srkit's fp32 PyTorch path on a real photo at an odd size, tiles included, and its threads."""

from __future__ import annotations

import pytest
import torch

import srkit
from srkit.engine import ncnn_backend
from srkit.engine.ncnn_backend import NcnnPlan
from srkit.models.zoo import LoadedModel, load_model

from . import _cpu
from ._models import small_model

pytest.importorskip("ncnn", reason="the ncnn executor needs the ncnn package (pip install 'srkit[cpu]')")


@pytest.fixture(autouse=True)
def ncnn(monkeypatch, tmp_path_factory):
    """Force the ncnn backend, with a cache folder of the module's."""
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path_factory.getbasetemp() / "ncnn-cache"))
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "ncnn")
    monkeypatch.delenv("SRKIT_KERNELS", raising=False)


def _small(name: str) -> LoadedModel:
    module, info = small_model(name, seed=11)
    return LoadedModel.of(module, info, f"test-{name}")


@pytest.mark.parametrize(
    "name", ["realesr-animevideov3", "realesr-animevideov3-x2", "compact-x3", "rrdb-x4", "span-x4"]
)
def test_ncnn_is_within_45_db_of_fp32(monkeypatch, name):
    model = load_model(name) if name.startswith("realesr") else _small(name)
    image = _cpu.photo()[:41, :53]
    up = srkit.Upscaler(model, device="cpu")
    assert isinstance(up.runner.executor, NcnnPlan) and up.runner.choice and up.runner.choice.backend == "ncnn"
    out = up.upscale(image)
    expected = _cpu.reference(model, image, monkeypatch)
    assert out.shape == expected.shape
    assert _cpu.psnr(out, expected) >= 45.0


def test_the_original_files_are_fed_where_they_hold_the_loaded_network():
    x4, x2 = load_model("realesr-animevideov3"), load_model("realesr-animevideov3-x2")
    assert ncnn_backend.model_files(x4) == srkit.Upscaler(x4, device="cpu").runner.executor.param
    assert str(ncnn_backend.model_files(x4)) == x4.source
    # x2's file ends in a bicubic resize that srkit applies after the network: the export of the network is fed
    assert str(ncnn_backend.model_files(x2)) != x2.source and ncnn_backend.model_files(x2).suffix == ".param"


def test_tiles_through_ncnn_match_the_whole_fp32_image(monkeypatch):
    model, image = _small("compact-x4"), _cpu.photo()
    tiled = srkit.Upscaler(model, device="cpu", tile=32).upscale(image)
    assert _cpu.psnr(tiled, _cpu.reference(model, image, monkeypatch)) >= 45.0


def test_batches_run_image_by_image():
    up = srkit.Upscaler(_small("compact-x3"), device="cpu")
    x = torch.rand(3, 3, 9, 11, generator=torch.Generator().manual_seed(2))
    together = up.runner.executor.run(x)
    assert torch.equal(together[1:2], up.runner.executor.run(x[1:2]))


def test_threads_follow_torchs_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert srkit.Upscaler(_small("compact-x3"), device="cpu").runner.executor.net.opt.num_threads == 1
    finally:
        torch.set_num_threads(before)


def test_a_model_ncnn_cannot_take_runs_on_the_pytorch_kernels_with_a_warning():
    with pytest.warns(RuntimeWarning, match="SRKIT_CPU_BACKEND=ncnn cannot run this model.*unshuffles its input"):
        up = srkit.Upscaler(_small("rrdb-x2"), device="cpu")
    assert not isinstance(up.runner.executor, NcnnPlan)
