"""GraphReplay, the CUDA-graph path of a bound plan, with a stand-in capture (no GPU here): one capture per output
setting, one replay per run, and results that the next replay cannot overwrite."""

from __future__ import annotations

import torch

from srkit.engine.plan import GraphReplay


class StandInGraph:
    """Replays `run` into the tensor the capture returned, as a CUDA graph rewrites its static output."""

    def __init__(self, run, output: torch.Tensor) -> None:
        self.run, self.output, self.replays = run, output, 0

    def replay(self) -> None:
        self.replays += 1
        self.output.copy_(self.run())


def test_one_capture_per_output_setting_and_a_replay_per_run():
    source = torch.arange(6.0)
    calls, graphs = [], []

    def forward(clamp, out_dtype):
        calls.append((clamp, out_dtype))
        low, high = clamp or (-1e9, 1e9)
        return source.clamp(low, high).to(out_dtype or torch.float32)

    def capture(run):
        graph = StandInGraph(run, run())
        graphs.append(graph)
        return graph, graph.output

    replay = GraphReplay(forward, capture)
    first = replay([1.0, 3.0], None)
    assert torch.equal(first, torch.tensor([1.0, 1.0, 2.0, 3.0, 3.0, 3.0]))
    source += 10  # the next run sees the static input's new contents
    second = replay((1.0, 3.0), None)  # a list and a tuple clamp are one setting
    assert len(graphs) == 1 and graphs[0].replays == 2
    assert torch.equal(second, torch.full((6,), 3.0)) and torch.equal(first[:2], torch.tensor([1.0, 1.0]))
    codes = replay(None, torch.int64)
    assert len(graphs) == 2 and torch.equal(codes, torch.arange(10, 16))
    assert calls.count(((1.0, 3.0), None)) == 3  # captured once, replayed twice: never launched outside the graph
