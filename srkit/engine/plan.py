"""Inference plans: an architecture's lowered Program on one device and dtype, with the size rules applied.

The layers, each binding once: an Arch lowers a module to a `Program` (models/lowering.py: kernel calls on
weights); `Program.bind(buffer)` fixes the program to one input buffer (activations preallocated, kernels chosen
and arguments checked once, on CUDA autotuned then) and is called by `BoundPlan` alone; a `BoundPlan` is the one
bind level callers see: the plan fixed to (batch, height, width) with that buffer, the size rules' pad and crop,
and CUDA graph replay; a `Plan` keeps its bound plans per shape and is the srkit kernels' `Executor`
(engine/executor.py); engine/runner.py puts the model's output resize and tiling facts around any executor.

`build_plan` asks the loaded model's Arch to lower the module once (weights copied to the device).
`Plan.bind(batch, height, width)` fixes a plan to one input shape: a BoundPlan holds the input buffer (on the
plan's device, in its dtype and channels_last layout, padded to the model's size rules (models/size_rules.py);
laid out as the program asks: RRDB's x2/x1 input is unshuffled by the copy), the program bound to that shape and
the crop; its `run` copies a batch in and runs the launches: on CUDA as one CUDA graph replay per output setting
(captured on first use; SRKIT_CUDA_GRAPHS=0 launches one by one). The last step clamps and, if asked, packs to
uint8/uint16 HWC. `Plan.run` runs the bound plan of its batch's shape, the BOUND_CACHE most recent shapes kept (a
tiled image has one window shape). A bound plan's buffers belong to one caller at a time: `run` takes an idle one
of its shape from the cache and gives it back after, binding another when every one is busy, so threads running
one plan (the VapourSynth filter's streams) never share buffers. The cache is not thread-local: VapourSynth's
native threads delete their Python thread state after every frame, which would drop the bound plans each time
(and crashed Python 3.12.1 while clearing them).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from ..errors import SrkitError
from ..models.info import ModelInfo
from ..models.lowering import BoundProgram, EagerProgram, Forward, Program
from ..models.zoo import LoadedModel

DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
BOUND_CACHE = 4  # bound plans kept per plan: the window shape of an image, a frame batch, a last odd batch
# SRKIT_CUDA_GRAPHS=0 runs a bound plan's launches one by one on CUDA too (debugging, profiling single kernels).
GRAPHS_ENV = "SRKIT_CUDA_GRAPHS"


def graphs_enabled() -> bool:
    """Whether bound plans on CUDA replay CUDA graphs (SRKIT_CUDA_GRAPHS, default yes)."""
    return os.environ.get(GRAPHS_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


Capture = Callable[[Callable[[], torch.Tensor]], "tuple[object, torch.Tensor]"]


def capture_cuda_graph(run: Callable[[], torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """(a CUDA graph of run's launches, the output tensor each replay rewrites): run once on a side stream first, so
    that kernels compile and tune outside the capture."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        run()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = run()
    return graph, output


class GraphReplay:
    """A bound run as graph replays: one graph per output setting (clamp, out_dtype), captured on its first use; the
    host then pays one replay per run instead of Python and a launch per kernel. The input buffer is the graph's
    static input; the output is copied out, since the next replay rewrites it."""

    def __init__(
        self,
        forward: Callable[[tuple[float, float] | None, torch.dtype | None], torch.Tensor],
        capture: Capture = capture_cuda_graph,
    ) -> None:
        self._forward, self._capture = forward, capture
        self._graphs: dict[tuple, tuple[Any, torch.Tensor]] = {}  # (a CUDA graph or a test's stand-in, its output)

    def __call__(self, clamp: tuple[float, float] | None, out_dtype: torch.dtype | None) -> torch.Tensor:
        clamp = None if clamp is None else (clamp[0], clamp[1])
        key = (clamp, out_dtype)
        if key not in self._graphs:
            self._graphs[key] = self._capture(lambda: self._forward(clamp, out_dtype))
        graph, output = self._graphs[key]
        graph.replay()
        return output.clone()


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (fp32 accumulation inside the kernels), fp32 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


class BoundPlan:
    """A plan fixed to (batch, height, width) inputs: run(x) copies x into the padded input buffer and launches."""

    def __init__(self, plan: Plan, batch: int, height: int, width: int) -> None:
        self.plan, self.shape = plan, (batch, plan.info.in_channels, height, width)
        self.padded = plan.info.size_rules.padded_size(height, width)
        with torch.inference_mode():
            # The program's input and the view a batch is copied into (one copy: device, dtype, layout at once).
            self.input, self._batch = plan.program.input_buffer(
                (batch, plan.info.in_channels, *self.padded), plan.dtype, plan.device
            )
            self.forward: Forward = plan.program.bind(self.input)
            if plan.device.type == "cuda":  # the first launches tune their kernels: here, not inside an image
                self.forward(self.input, None, None)
        self._launch: Callable[[tuple[float, float] | None, torch.dtype | None], torch.Tensor] = (
            lambda clamp, out_dtype: self.forward(self.input, clamp, out_dtype)
        )
        # srkit's own programs only: a module run eagerly (EagerProgram) may synchronise, which a capture forbids.
        if plan.device.type == "cuda" and isinstance(plan.program, BoundProgram) and graphs_enabled():
            self._launch = GraphReplay(self._launch)

    def run(
        self, x: torch.Tensor, clamp: tuple[float, float] | None = None, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The network's output for x of the bound shape; clamped to `clamp` and converted to `out_dtype`."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"this plan is bound to inputs of shape {self.shape}, got {tuple(x.shape)}")
        height, width = self.shape[2:]
        with torch.inference_mode():
            if self.padded == (height, width):
                self._batch.copy_(x.reshape(self._batch.shape))
                return self._launch(clamp, out_dtype)
            rules = self.plan.info.size_rules
            self._batch.copy_(rules.pad(self.plan.prepare(x)).reshape(self._batch.shape))
            y = self._launch(clamp, out_dtype)  # packed codes are (N, H, W, C), floats (N, C, H, W)
            return rules.crop(y, height, width, self.plan.info.net_scale, packed=out_dtype is not None)


class Plan:
    """A network as kernel calls, an Executor: run(x) with x (N, C, H, W) in [0, 1] returns (N, C', H*s, W*s), s
    the network scale."""

    def __init__(self, info: ModelInfo, program: Program, device: torch.device, dtype: torch.dtype) -> None:
        self.info = info
        self.program = program
        self.device = device
        self.dtype = dtype
        self.name = f"srkit kernels {DTYPE_NAMES[dtype]}"
        self._idle: OrderedDict[tuple[int, int, int], list[BoundPlan]] = OrderedDict()  # shape -> idle bound plans
        self._lock = threading.Lock()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Move an input batch to the plan's device, dtype and memory format."""
        return x.to(device=self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)

    def bind(self, batch: int, height: int, width: int) -> BoundPlan:
        """The plan bound to (batch, height, width) inputs, made once per shape (the BOUND_CACHE latest kept); for
        one caller at a time (`run` is the thread-safe way to use the cache)."""
        key = (batch, height, width)
        with self._lock:
            idle = self._idle_of(key)
            if idle:
                return idle[-1]
        bound = BoundPlan(self, batch, height, width)
        with self._lock:
            self._idle_of(key).append(bound)
        return bound

    def _idle_of(self, key: tuple[int, int, int]) -> list[BoundPlan]:
        """The idle bound plans of one shape, that shape now the most recent (call with the lock held)."""
        if key in self._idle:
            self._idle.move_to_end(key)
        else:
            while len(self._idle) >= BOUND_CACHE:
                self._idle.popitem(last=False)
            self._idle[key] = []
        return self._idle[key]

    def run(
        self, x: torch.Tensor, clamp: tuple[float, float] | None = None, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The network's output for x; clamped to `clamp` and converted to `out_dtype` in its last pass."""
        batch, _, height, width = x.shape
        key = (batch, height, width)
        with self._lock:
            idle = self._idle_of(key)
            bound = idle.pop() if idle else None
        bound = bound or BoundPlan(self, *key)
        try:
            return bound.run(x, clamp, out_dtype)
        finally:
            with self._lock:
                self._idle_of(key).append(bound)

    def activation_bytes_per_pixel(self) -> float:
        """Peak bytes per input pixel of a bound plan: its activations, its input buffer and the output of a run
        (for choosing a tile that fits in memory)."""
        in_out = self.info.in_channels + self.info.out_channels * self.info.net_scale**2
        return self.program.activation_bytes_per_pixel(self.dtype) + in_out * torch.finfo(self.dtype).bits // 8


def build_plan(model: LoadedModel, device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> Plan:
    """The inference plan of a loaded model's network on `device` in `dtype` (lowered by its Arch, or run eagerly
    where it has no fused lowering)."""
    info, device = model.info, torch.device(device)
    if dtype is None:  # the device's default where the model supports it, else fp32
        dtype = default_dtype(device)
        dtype = dtype if DTYPE_NAMES[dtype] in info.dtypes else torch.float32
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    if DTYPE_NAMES[dtype] not in info.dtypes:
        raise SrkitError(
            f"{info.arch} models do not run accurately in {DTYPE_NAMES[dtype]}; use --dtype {' or '.join(info.dtypes)}"
        )
    program = model.arch.lower(model.module, info, device) if info.fused else EagerProgram(model.module, info, device)
    return Plan(info, program, device, dtype)
