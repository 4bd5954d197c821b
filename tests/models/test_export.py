"""Round trip through `srkit models import` and `srkit models export`: the ONNX graph equals the module srkit
loaded, checked in float64 by ONNX's own reference evaluator (independent of torch and of onnxruntime), and runs in
onnxruntime on odd-sized images other than the traced size as accurately as the module runs in fp32."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator

from srkit.cli import main
from srkit.defaults import DEFAULT_ONNX_OPSET
from srkit.models import compact
from srkit.models.zoo import load_model

from ._spandrel import randomised, spandrel_or_skip

# The graph in float64 against the module in float64: measured 5e-16 (compact) to 6.5e-9 (ESRGAN's unshuffle, whose
# padding arithmetic stays float32 in the graph) of the peak. An export mistake is off by the order of the peak.
EXACT_TOLERANCE = 1e-7
# onnxruntime runs fp32 and sums in another order than torch; how far fp32 lands from float64 depends on the
# network's conditioning (SPAN's x255 input scaling under random weights loses 1e-4..5e-4 of the peak in fp32, in
# torch and onnxruntime alike, and by different amounts on AVX2 and AVX-512 CPUs). So the runtime is held to a
# multiple of the module's own fp32 error on the same CPU and input, with a floor for well-conditioned networks.
FP32_ERROR_FACTOR = 8
FP32_FLOOR = 1e-5


def _float64_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` computing in float64: float tensors, casts and the graph's inputs/outputs widened; Resize scales,
    which ONNX defines as float32 whatever the data type, left as they are."""
    graph = model.graph
    scales = {node.input[2] for node in graph.node if node.op_type == "Resize" and len(node.input) > 2}
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and tensor.name not in scales:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.DOUBLE
            if (
                attribute.type == onnx.AttributeProto.TENSOR
                and attribute.t.data_type == TensorProto.FLOAT
                and node.output[0] not in scales
            ):
                attribute.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attribute.t).astype(np.float64)))
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.elem_type = TensorProto.DOUBLE
    del graph.value_info[:]
    return model


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
    evaluator = ReferenceEvaluator(_float64_graph(graph))
    module = load_model(kind).module
    for height, width in ((15, 9), (8, 21)):  # neither is the traced 24x24; odd sides pad inside the graph
        x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height))
        with torch.no_grad():
            expected = module.double()(x.double()).numpy()
            fp32 = module.float()(x).numpy()
        with warnings.catch_warnings():  # the reference Sigmoid overflows exp() on its way to the right limit
            warnings.simplefilter("ignore", RuntimeWarning)
            (exact,) = evaluator.run(None, {"input": x.double().numpy()})
        (got,) = session.run(None, {"input": x.numpy()})
        peak = max(1.0, np.abs(expected).max())
        assert exact.shape == got.shape == expected.shape
        assert np.abs(exact - expected).max() <= EXACT_TOLERANCE * peak, (kind, height)
        allowed = max(FP32_ERROR_FACTOR * np.abs(fp32 - expected).max(), FP32_FLOOR * peak)
        assert np.abs(got - expected).max() <= allowed, (kind, height, np.abs(got - expected).max(), allowed)


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
    lines = dict(
        line.split(None, 1)
        if not line.startswith(("size rules", "receptive", "tile overlap"))
        else (line[:17].strip(), line[17:].strip())
        for line in capsys.readouterr().out.splitlines()
    )
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
