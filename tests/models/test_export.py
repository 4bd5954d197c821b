"""Round trip through `srkit models import` and `srkit models export`: the ONNX graph, run by onnxruntime on
odd-sized images other than the traced size, equals the module srkit loaded (and spandrel's, for its files)."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from srkit.cli import main
from srkit.defaults import DEFAULT_ONNX_OPSET
from srkit.models import compact
from srkit.models.zoo import load_model

from ._spandrel import randomised, spandrel_or_skip

# Against the module run in float64: onnxruntime's fp32 output is within 1.1e-4 of the peak there for SPAN
# (whose x255 input scaling random weights amplify; torch's own fp32 run is 2.2e-4 away), far closer for the rest.
RELATIVE_TOLERANCE = 2e-4


def _network(kind: str) -> torch.nn.Module:
    spandrel_or_skip()
    if kind == "esrgan-x2-unshuffle":
        from spandrel.architectures.ESRGAN import ESRGAN

        return ESRGAN(in_nc=12, num_filters=8, num_blocks=1, scale=4, shuffle_factor=2)
    if kind == "span-x4":
        from spandrel.architectures.SPAN import SPAN

        return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4)
    from spandrel.architectures.Compact import Compact

    return Compact(num_feat=16, num_conv=3, upscale=3)


@pytest.mark.parametrize("kind", ["esrgan-x2-unshuffle", "span-x4", "compact-x3"])
def test_import_then_export_runs_in_onnxruntime_like_the_module(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    source = tmp_path / f"{kind}.pth"
    torch.save(randomised(_network(kind), seed=12).state_dict(), source)
    assert main(["models", "import", str(source), "--name", kind]) == 0
    assert main(["models", "export", kind, "-o", str(tmp_path / "m.onnx")]) == 0
    graph = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(graph)
    assert graph.opset_import[0].version == DEFAULT_ONNX_OPSET
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    module = load_model(kind).module.double()
    for height, width in ((15, 9), (8, 21)):  # neither is the traced 24x24; odd sides pad inside the graph
        x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height))
        with torch.no_grad():
            expected = module(x.double()).numpy()
        (got,) = session.run(None, {"input": x.numpy()})
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= RELATIVE_TOLERANCE * max(1.0, np.abs(expected).max()), (kind, height)


def test_export_keeps_a_models_output_resize_and_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "anime-x2.onnx"
    assert main(["models", "export", "realesr-animevideov3-x2", "-o", str(target)]) == 0
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": np.random.default_rng(13).random((1, 3, 10, 14), dtype=np.float32)})
    assert got.shape == (1, 3, 20, 28)
    before = target.stat().st_mtime_ns
    assert main(["models", "export", "realesr-animevideov3-x2", "-o", str(target)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err and target.stat().st_mtime_ns == before


def test_models_info_describes_the_model(tmp_path, capsys):
    spandrel_or_skip()
    from spandrel.architectures.SPAN import SPAN

    path = tmp_path / "span.safetensors"
    from safetensors.torch import save_file

    save_file(SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2, norm=False).state_dict(), str(path))
    assert main(["models", "info", str(path)]) == 0
    lines = dict(line.split(None, 1) if not line.startswith(("size rules", "receptive", "tile overlap")) else
                 (line[:17].strip(), line[17:].strip()) for line in capsys.readouterr().out.splitlines())
    assert lines["architecture"].strip() == "span" and lines["scale"].strip() == "x2"
    assert lines["fused"].strip() == "yes" and lines["variant"].strip() == "8nf, no_norm"


def test_export_without_the_onnx_package_names_the_install(tmp_path, monkeypatch, capsys):
    source = tmp_path / "small.pth"
    torch.save(compact.CompactSR(features=8, num_conv=1, scale=2).state_dict(), source)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails as if it were not installed
    assert main(["models", "export", str(source), "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "ONNX export needs the package onnx: pip install 'srkit[onnx]'" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.pth"]
