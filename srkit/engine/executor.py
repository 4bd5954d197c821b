"""The one execution contract: what every way of running a network (srkit's kernel plan, OpenVINO, ncnn, ONNX
Runtime) offers to the tiler and the pipelines, so callers never ask which one they hold. An executor runs the
network alone: the tiler gives it windows in whole units of the size rules' multiple_of, and srkit's plan takes any
size (padded to the rules by models/size_rules.py and cropped back); the model's own output resize and its tiling
facts are put around any executor by engine/runner.py's ModelRunner."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..models.info import ModelInfo


@runtime_checkable
class Executor(Protocol):
    """Runs one model on one device: `run` maps x (N, C, H, W) unit floats to the network output (N, C', H*s, W*s)
    (s the network scale), clamped to `clamp` and, with `out_dtype` uint8/uint16, packed to (N, H*s, W*s, C') codes."""

    info: ModelInfo
    device: torch.device
    dtype: torch.dtype
    name: str  # what runs, in the user's words ("srkit kernels fp32", "OpenVINO bf16", "ncnn fp32", ...)

    def run(
        self, x: torch.Tensor, clamp: tuple[float, float] | None = None, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The network's output for x; clamped and converted in its last pass."""
        ...

    def activation_bytes_per_pixel(self) -> float:
        """Peak bytes per input pixel while running (for choosing a tile that fits in memory)."""
        ...
