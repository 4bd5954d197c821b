"""`--dtype int8`: OpenVINO on the NNCF-quantized network (calibrated on scikit-image's photos), its quality
against fp32 on a real photo, the quantized IR cached, and the one-line errors where it cannot run."""

from __future__ import annotations

import types

import pytest
import torch

import srkit
from srkit.cli import main
from srkit.engine import cpu_backend, openvino_int8
from srkit.engine.openvino_backend import OpenVinoPlan
from srkit.models.zoo import LoadedModel

from . import _cpu
from ._models import small_model

pytest.importorskip("openvino", reason="int8 runs on OpenVINO (a dependency of srkit)")
pytest.importorskip("nncf", reason="int8 quantization needs NNCF (pip install 'srkit[int8]')")


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path_factory.getbasetemp() / "int8-cache"))
    monkeypatch.delenv("SRKIT_KERNELS", raising=False)


def _model() -> LoadedModel:
    module, info = small_model("compact-x4", seed=21)
    return LoadedModel.of(module, info, "test-compact")


def test_int8_runs_the_quantized_network_close_to_fp32(monkeypatch):
    up = srkit.Upscaler(_model(), device="cpu", dtype="int8")
    assert isinstance(up.runner.executor, OpenVinoPlan) and up.runner.executor.name == "OpenVINO int8"
    assert up.runner.choice and up.runner.choice.backend == "openvino" and "--dtype int8" in up.runner.choice.how
    assert "int8" in up.runner.executor.xml.name
    ops = {op.get_type_name() for op in up.runner.executor.core.read_model(up.runner.executor.xml).get_ops()}
    assert "FakeQuantize" in ops
    image = _cpu.photo()
    out = up.upscale(image)
    quality = _cpu.psnr(out, _cpu.reference(_model(), image, monkeypatch))
    assert 28.0 <= quality < 60.0, quality  # quantized: close, but not the fp32 result


def test_the_quantized_network_is_reused_from_disk(monkeypatch):
    first = srkit.Upscaler(_model(), device="cpu", dtype="int8").runner.executor.xml
    import nncf

    monkeypatch.setattr(nncf, "quantize", lambda *a, **k: pytest.fail("quantized again"))
    assert srkit.Upscaler(_model(), device="cpu", dtype="int8").runner.executor.xml == first


def test_the_calibration_set_is_real_photos_seeded():
    tiles = openvino_int8.calibration_tiles(3)
    assert len(tiles) == len(openvino_int8.PHOTOS) * openvino_int8.CROPS_PER_PHOTO
    assert all(
        t.shape == (1, 3, openvino_int8.CROP, openvino_int8.CROP) and 0 <= t.min() <= t.max() <= 1 for t in tiles
    )
    assert all((a == b).all() for a, b in zip(tiles, openvino_int8.calibration_tiles(3)))
    assert openvino_int8.calibration_tiles(1)[0].shape == (1, 1, openvino_int8.CROP, openvino_int8.CROP)


def test_missing_nncf_is_one_line_with_the_install_hint(monkeypatch, tmp_path, capsys):
    real = openvino_int8.importlib.util.find_spec
    monkeypatch.setattr(
        openvino_int8.importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a)
    )
    with pytest.raises(openvino_int8.Int8UnavailableError, match=r"needs the nncf package .*srkit\[int8\]"):
        srkit.Upscaler(_model(), device="cpu", dtype="int8")
    weights = tmp_path / "tiny.pth"
    torch.save(_model().module.state_dict(), weights)
    from PIL import Image

    Image.fromarray(_cpu.photo()[:16, :16]).save(tmp_path / "in.png")
    code = main(
        ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", str(weights), "--dtype", "int8"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'srkit[int8]'" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_int8_off_the_cpu_is_refused():
    plan = types.SimpleNamespace(device=torch.device("cuda"))
    with pytest.raises(openvino_int8.Int8UnavailableError, match="runs on the CPU only"):
        cpu_backend.cpu_plan(plan, _model(), torch.int8)  # type: ignore[arg-type]


def test_a_segmented_int8_run_records_openvino_whatever_the_setting(monkeypatch):
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "torch")
    assert cpu_backend.run_backend("any-model", "int8", torch.device("cpu")) == "openvino"
