"""Which CPU backend runs: by default the fastest by measurement (timings injected here, so no test depends on
which runtime wins on this machine), SRKIT_CPU_BACKEND forcing one, the switches that keep srkit's PyTorch
kernels, what `srkit info` and the run summary say, and --threads reaching the runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import srkit
from srkit.cli import main
from srkit.engine import cpu_backend, cpu_choice
from srkit.engine.ncnn_backend import NcnnPlan
from srkit.engine.onnxruntime_backend import OnnxRuntimePlan
from srkit.engine.openvino_backend import OpenVinoPlan
from srkit.models.zoo import LoadedModel

from . import _cpu
from ._models import small_model

pytest.importorskip("openvino", reason="the OpenVINO backend needs the openvino package (a dependency of srkit)")
pytest.importorskip("ncnn", reason="the ncnn backend needs the ncnn package (pip install 'srkit[cpu]')")
pytest.importorskip("onnxruntime", reason="the ONNX Runtime backend needs onnxruntime (pip install 'srkit[cpu]')")

FAKE_MS = {"OpenVINO": 30.0, "ncnn": 10.0, "ONNX Runtime": 20.0, "srkit kernels": 40.0}


@pytest.fixture(autouse=True)
def auto(monkeypatch, tmp_path):
    """The product's default (auto), a fresh cache, and timings injected by executor name."""
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "auto")
    monkeypatch.delenv("SRKIT_KERNELS", raising=False)
    measured: list[str] = []

    def fake(executor, best_ms: float) -> float:
        measured.append(executor.name)
        return next(ms for prefix, ms in FAKE_MS.items() if executor.name.startswith(prefix))

    monkeypatch.setattr(cpu_choice, "time_executor", fake)
    return measured


def _model(name: str = "compact-x3", seed: int = 2) -> LoadedModel:
    module, info = small_model(name, seed=seed)
    return LoadedModel.of(module, info, f"test-{name}")


def test_auto_keeps_the_fastest_measured_and_reuses_the_choice(auto, monkeypatch):
    up = srkit.Upscaler(_model(), device="cpu")
    assert isinstance(up.runner.executor, NcnnPlan) and up.runner.choice.how == "measured"
    assert [name.split()[0] for name in auto] == ["OpenVINO", "ncnn", "ONNX", "srkit"]  # every candidate timed
    assert not any("int8" in name for name in auto)  # int8 is asked for, never chosen
    again = srkit.Upscaler(_model(), device="cpu")
    assert isinstance(again.runner.executor, NcnnPlan) and again.runner.choice.how == "cached" and len(auto) == 4
    image = _cpu.photo()[:29, :31]
    assert _cpu.psnr(again.upscale(image), _cpu.reference(_model(), image, monkeypatch)) >= 45.0


def test_a_model_ncnn_cannot_take_is_chosen_among_the_others(auto):
    up = srkit.Upscaler(_model("rrdb-x2"), device="cpu")
    assert isinstance(up.runner.executor, OnnxRuntimePlan)
    assert "ncnn" not in up.runner.choice.timings_ms and len(auto) == 3


@pytest.mark.parametrize(
    "value,executor", [("openvino", OpenVinoPlan), ("ncnn", NcnnPlan), ("onnxruntime", OnnxRuntimePlan)]
)
def test_the_setting_forces_a_backend_without_measuring(auto, monkeypatch, value, executor):
    monkeypatch.setenv("SRKIT_CPU_BACKEND", value)
    up = srkit.Upscaler(_model(), device="cpu")
    assert isinstance(up.runner.executor, executor) and not auto
    assert up.runner.choice is not None and up.runner.choice.how == "forced by SRKIT_CPU_BACKEND"


@pytest.mark.parametrize("value", ["ncnn", "onnxruntime"])
def test_the_same_bytes_on_any_number_of_threads(monkeypatch, value):
    """Scale-out workers run with their share of the cores: their segments must match the one-process run's
    (OpenVINO's case is tests/test_scaleout.py's)."""
    monkeypatch.setenv("SRKIT_CPU_BACKEND", value)
    model, image = _model("rrdb-x4"), _cpu.photo()[:24, :30]
    before = torch.get_num_threads()
    outputs = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            outputs.append(srkit.Upscaler(model, device="cpu").upscale(image))
    finally:
        torch.set_num_threads(before)
    assert all(np.array_equal(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize("env,value", [("SRKIT_KERNELS", "reference"), ("SRKIT_CPU_BACKEND", "torch")])
def test_switches_keep_the_pytorch_kernels(auto, monkeypatch, capsys, env, value):
    monkeypatch.setenv(env, value)
    up = srkit.Upscaler(_model(), device="cpu")
    assert up.runner.choice is None and up.runner.executor.name == "srkit kernels fp32" and not auto
    assert main(["info"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("cpu backend"))
    assert "PyTorch reference kernels" in line and f"{env}={value}" in line


def test_info_names_every_candidate_and_the_rule(capsys):
    assert main(["info"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("cpu backend"))
    assert line.split(maxsplit=2)[2].startswith("auto: the fastest of OpenVINO")
    for words in (
        "ncnn",
        "ONNX Runtime",
        "PyTorch kernels",
        "measured per model",
        "SRKIT_CPU_BACKEND",
        f"{torch.get_num_threads()} threads",
    ):
        assert words in line


def test_missing_openvino_is_said_and_forcing_it_falls_back(monkeypatch):
    real = cpu_backend.importlib.util.find_spec
    monkeypatch.setattr(
        cpu_backend.importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a)
    )
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "openvino")
    assert "openvino package is not installed" in cpu_backend.describe()
    up = srkit.Upscaler(_model(), device="cpu")
    assert up.runner.choice is None and not isinstance(up.runner.executor, OpenVinoPlan)


def test_an_unknown_setting_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match="SRKIT_CPU_BACKEND='tensorrt' is not one of auto, openvino, ncnn"):
        cpu_backend.requested()
    assert main(["info"]) == 2
    assert "SRKIT_CPU_BACKEND='tensorrt'" in capsys.readouterr().err


def test_the_run_summary_says_which_backend_and_why(tmp_path, capsys):
    weights = tmp_path / "tiny.pth"
    torch.save(small_model("compact-x3", seed=4)[0].state_dict(), weights)
    Image.fromarray(_cpu.photo()[:20, :24]).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", str(weights)]) == 0
    err = capsys.readouterr().err
    assert (
        f"srkit: ncnn fp32: fastest on a {cpu_choice.TILE}x{cpu_choice.TILE} tile (measured): ncnn 10.0 ms, "
        "onnxruntime 20.0 ms" in err
    )
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (60, 72, 3)


def test_threads_reach_the_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "onnxruntime")
    weights = tmp_path / "tiny.pth"
    torch.save(small_model("compact-x3", seed=4)[0].state_dict(), weights)
    Image.fromarray(_cpu.photo()[:20, :24]).save(tmp_path / "in.png")
    seen: list[int] = []
    real = OnnxRuntimePlan.__init__

    def spy(self, *args) -> None:
        real(self, *args)
        seen.append(self.session.get_session_options().intra_op_num_threads)

    monkeypatch.setattr(OnnxRuntimePlan, "__init__", spy)
    before = torch.get_num_threads()
    try:
        assert (
            main(
                [
                    "upscale",
                    str(tmp_path / "in.png"),
                    "-o",
                    str(tmp_path / "out.png"),
                    "-m",
                    str(weights),
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
    with pytest.raises(SystemExit) as refused:
        main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "o2.png"), "--threads", "0"])
    assert refused.value.code == 2


def test_a_segmented_run_records_its_backend_and_a_resumed_run_keeps_it(home, keyframed_clip, monkeypatch, capsys):
    from srkit.pipelines import segments
    from srkit.pipelines.workfolder import work_folder_for

    clip, out = keyframed_clip(3, 32, 24), home / "out.mkv"
    args = [
        "upscale",
        str(clip),
        "-o",
        str(out),
        "-m",
        "tiny",
        "--device",
        "cpu",
        "--segment-seconds",
        "1",
        "--preset",
        "ultrafast",
    ]
    real, used = segments.encode_segment, []

    def interrupted_second(upscaler, unit):
        used.append(upscaler.runner.executor.name)
        if len(used) == 2:
            raise KeyboardInterrupt
        return real(upscaler, unit)

    monkeypatch.setattr(segments, "encode_segment", interrupted_second)
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "auto")
    assert main(args) == 130
    manifest = (work_folder_for(out) / "manifest.json").read_text()
    assert '"cpu_backend": "ncnn"' in manifest  # the fastest by the injected timings
    now = {**FAKE_MS, "ncnn": 50.0}  # the machine now measures ONNX Runtime fastest
    monkeypatch.setattr(
        cpu_choice,
        "time_executor",
        lambda executor, best: next(ms for name, ms in now.items() if executor.name.startswith(name)),
    )
    monkeypatch.setenv("SRKIT_CACHE", str(home / "another-cache"))
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "auto")
    used.clear()
    monkeypatch.setattr(
        segments,
        "encode_segment",
        lambda upscaler, unit: used.append(upscaler.runner.executor.name) or real(upscaler, unit),
    )
    assert main([*args, "--resume"]) == 0, capsys.readouterr().err
    assert used and set(used) == {"ncnn fp32"}
    assert out.is_file()
