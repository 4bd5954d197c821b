"""Inference plans: an architecture's lowered Program on one device and dtype, with the size rules applied.

`build_plan` asks the model's Arch to lower the module once (weights copied to the device). `Plan.bind(batch,
height, width)` fixes a plan to one input shape: a BoundPlan holds the input buffer (on the plan's device, in its
dtype and channels_last layout, padded to the model's size rules: a multiple of `multiple_of`, at least
`min_size`; laid out as the program asks: RRDB's x2/x1 input is unshuffled by the copy), the program bound to
that shape (activation buffers preallocated, kernels chosen and arguments checked once, on CUDA autotuned then)
and the crop; its `run` copies a batch in and runs the launches: on CUDA as one CUDA graph replay per output
setting (captured on first use; SRKIT_CUDA_GRAPHS=0 launches one by one). The last step clamps and, if asked, packs to
uint8/uint16 HWC. `Plan.run` runs the bound plan of its batch's shape, the BOUND_CACHE most recent shapes kept (a tiled image has one window shape). A bound plan's buffers belong to one
caller at a time: `run` takes an idle one of its shape from the cache and gives it back after, binding another
when every one is busy, so threads running one plan (the VapourSynth filter's streams) never share buffers. The
cache is not thread-local: VapourSynth's native threads delete their Python thread state after every frame,
which would drop the bound plans each time (and crashed Python 3.12.1 while clearing them).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SrkitError
from ..models.info import ModelInfo
from ..models.lowering import BoundProgram, EagerProgram, Forward, Program
from ..models.registry import by_id


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

    def __init__(self, forward: Callable[[tuple[float, float] | None, torch.dtype | None], torch.Tensor],
                 capture: Capture = capture_cuda_graph) -> None:
        self._forward, self._capture = forward, capture
        self._graphs: dict[tuple, tuple[object, torch.Tensor]] = {}

    def __call__(self, clamp: tuple[float, float] | None, out_dtype: torch.dtype | None) -> torch.Tensor:
        key = clamp, out_dtype = (None if clamp is None else tuple(clamp), out_dtype)
        if key not in self._graphs:
            self._graphs[key] = self._capture(lambda: self._forward(clamp, out_dtype))
        graph, output = self._graphs[key]
        graph.replay()
        return output.clone()


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (fp32 accumulation inside the kernels), fp32 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


def padded_size(height: int, width: int, info: ModelInfo) -> tuple[int, int]:
    """The smallest (height, width) at least as large that meets the model's size rules."""
    def side(size: int) -> int:
        size = max(size, info.min_size)
        return size + (-size) % info.multiple_of

    height, width = side(height), side(width)
    return (max(height, width),) * 2 if info.square else (height, width)


def pad_to_rules(x: torch.Tensor, info: ModelInfo) -> torch.Tensor:
    """x padded at the bottom and right to the size rules: reflected as far as the image allows (one pixel
    less than its side), then the edge repeated."""
    height, width = x.shape[2:]
    target_h, target_w = padded_size(height, width, info)
    if (target_h, target_w) == (height, width):
        return x
    reflect_h, reflect_w = min(target_h - height, height - 1), min(target_w - width, width - 1)
    x = F.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
    x = F.pad(x, (0, target_w - width - reflect_w, 0, target_h - height - reflect_h), mode="replicate")
    return x.contiguous(memory_format=torch.channels_last)


class BoundPlan:
    """A plan fixed to (batch, height, width) inputs: run(x) copies x into the padded input buffer and launches."""

    def __init__(self, plan: "Plan", batch: int, height: int, width: int) -> None:
        self.plan, self.shape = plan, (batch, plan.info.in_channels, height, width)
        self.padded = padded_size(height, width, plan.info)
        with torch.inference_mode():
            # The program's input and the view a batch is copied into (one copy: device, dtype, layout at once).
            self.input, self._batch = plan.program.input_buffer((batch, plan.info.in_channels, *self.padded),
                                                                plan.dtype, plan.device)
            self.forward: Forward = plan.program.bind(self.input)
            if plan.device.type == "cuda":  # the first launches tune their kernels: here, not inside an image
                self.forward(self.input, None, None)
        self._launch: Callable[[tuple[float, float] | None, torch.dtype | None], torch.Tensor] = \
            lambda clamp, out_dtype: self.forward(self.input, clamp, out_dtype)
        # srkit's own programs only: a module run eagerly (EagerProgram) may synchronise, which a capture forbids.
        if plan.device.type == "cuda" and isinstance(plan.program, BoundProgram) and graphs_enabled():
            self._launch = GraphReplay(self._launch)

    def run(self, x: torch.Tensor, clamp: tuple[float, float] | None = None,
            out_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The network's output for x of the bound shape; clamped to `clamp` and converted to `out_dtype`."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"this plan is bound to inputs of shape {self.shape}, got {tuple(x.shape)}")
        height, width = self.shape[2:]
        with torch.inference_mode():
            if self.padded == (height, width):
                self._batch.copy_(x.reshape(self._batch.shape))
                return self._launch(clamp, out_dtype)
            self._batch.copy_(pad_to_rules(self.plan.prepare(x), self.plan.info).reshape(self._batch.shape))
            s = self.plan.info.scale
            y = self._launch(clamp, out_dtype)  # packed codes are (N, H, W, C), floats (N, C, H, W)
            return y[:, :height * s, :width * s] if out_dtype is not None else y[:, :, :height * s, :width * s]


class Plan:
    """A model as kernel calls. run(x) with x (N, C, H, W) in [0, 1] returns (N, C', H*s, W*s)."""

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

    def run(self, x: torch.Tensor, clamp: tuple[float, float] | None = None,
            out_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The network's output for x; clamped to `clamp` and converted to `out_dtype` in its last pass."""
        key = (x.shape[0], *x.shape[2:])
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
        in_out = self.info.in_channels + self.info.out_channels * self.info.scale ** 2
        return self.program.activation_bytes_per_pixel(self.dtype) + in_out * torch.finfo(self.dtype).bits // 8


def build_plan(module: nn.Module, info: ModelInfo, device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None) -> Plan:
    """The inference plan of `module` (described by `info`) on `device` in `dtype`."""
    device = torch.device(device)
    if dtype is None:  # the device's default where the model supports it, else fp32
        dtype = default_dtype(device)
        dtype = dtype if DTYPE_NAMES[dtype] in info.dtypes else torch.float32
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    if DTYPE_NAMES[dtype] not in info.dtypes:
        raise SrkitError(f"{info.arch} models do not run accurately in {DTYPE_NAMES[dtype]}; use --dtype "
                         f"{' or '.join(info.dtypes)}")
    arch = by_id(info.arch)
    program = arch.lower(module, info, device) if arch is not None and info.fused else \
        EagerProgram(module, info, device)
    return Plan(info, program, device, dtype)
