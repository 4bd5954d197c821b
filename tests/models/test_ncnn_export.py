"""srkit's ncnn writer: every fused architecture it writes (compact with each activation, RRDB plain and ESRGAN+,
SPAN with and without input normalisation) run by the ncnn runtime (the oracle) against the torch module at odd
sizes, the file layout read back by srkit's own ncnn reader, and the architectures it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srkit.models import compact, rrdb, span
from srkit.models.ncnn_export import NcnnExportError, export_ncnn, exportable
from srkit.models.ncnn_graph import load_graph

ncnn = pytest.importorskip("ncnn", reason="the ncnn runtime is the oracle (pip install ncnn)")

NETWORKS = {
    "compact-prelu-x4": lambda: compact.CompactSR(features=12, num_conv=2, scale=4),
    "compact-relu-x3": lambda: compact.CompactSR(features=8, num_conv=1, scale=3, act="relu"),
    "compact-leaky-x2": lambda: compact.CompactSR(features=8, num_conv=2, scale=2, act="leaky_relu"),
    "compact-gray-x2": lambda: compact.CompactSR(in_channels=1, out_channels=1, features=8, num_conv=1, scale=2),
    "rrdb-x4": lambda: rrdb.RRDBNet(features=16, num_block=2, growth=8, scale=4),
    "rrdb-plus-x4": lambda: rrdb.RRDBNet(features=8, num_block=1, growth=4, scale=4, plus=True),
    "rrdb-x8": lambda: rrdb.RRDBNet(features=8, num_block=1, growth=4, scale=8),
    "span-x4": lambda: span.SPAN(features=8, scale=4),
    "span-no-norm-x2": lambda: span.SPAN(features=8, scale=2, norm=False),
}


def _seeded(name: str, seed: int = 7) -> torch.nn.Module:
    module = NETWORKS[name]().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() == 1 else 1.0) / max(1, p[0].numel()) ** 0.5)
    return module.reparameterize() if isinstance(module, span.SPAN) else module


def _run_ncnn(param, x: np.ndarray) -> np.ndarray:
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = 1
    assert net.load_param(str(param)) == 0 and net.load_model(str(param.with_suffix(".bin"))) == 0
    chw = np.ascontiguousarray(x[0])
    mat = ncnn.Mat(chw)  # a view of chw: both stay alive until the output is copied
    extractor = net.create_extractor()
    extractor.input("data", mat)
    status, out = extractor.extract("output")
    assert status == 0
    return np.array(out)


@pytest.mark.parametrize("name", NETWORKS)
def test_ncnn_runs_the_written_graph_as_torch_runs_the_module(tmp_path, name):
    module = _seeded(name)
    param, binary = export_ncnn(module, tmp_path / f"{name}.param")
    channels = module.body[0].in_channels if isinstance(module, compact.CompactSR) else 3
    x = torch.rand(1, channels, 13, 19, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = module(x)[0].numpy()
    out = _run_ncnn(param, x.numpy())
    assert out.shape == expected.shape
    error = np.abs(out - expected).max()
    assert error < 1e-3 * max(1.0, float(np.abs(expected).max())), f"{name}: max error {error}"


def test_srkits_reader_reads_the_written_files_back(tmp_path):
    module = _seeded("rrdb-plus-x4")
    param, _ = export_ncnn(module, tmp_path / "m.param")
    graph = load_graph(param)  # checks every parameter and that the .bin holds exactly the weights
    assert (graph.input, graph.output) == ("data", "output")
    convs = [i for i, layer in enumerate(graph.layers) if layer.type == "Convolution"]
    first = graph.weights[convs[0]]["weight"]
    assert np.array_equal(first.reshape(module.conv_first.weight.shape), module.conv_first.weight.detach().numpy())


def test_an_existing_file_is_kept_without_overwrite(tmp_path):
    target = tmp_path / "m.param"
    target.write_text("mine")
    with pytest.raises(Exception, match="exists"):
        export_ncnn(_seeded("compact-relu-x3"), target)
    assert target.read_text() == "mine"


def test_rrdb_with_input_unshuffle_is_refused():
    module = rrdb.RRDBNet(features=8, num_block=1, growth=4, scale=2)
    assert "unshuffles its input" in exportable(module)
    with pytest.raises(NcnnExportError, match="unshuffles its input"):
        export_ncnn(module, "never-written.param")
