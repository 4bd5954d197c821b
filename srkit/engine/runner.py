"""A loaded model made ready to run on one device: the executor that runs its network (srkit's kernel plan or a
CPU runtime, engine/executor.py), the output resize some models end with, and how the tiler cuts images for it.

Three scales, three names: a network's own `net_scale` (ModelInfo), the model's `out_scale` after its output
resize (LoadedModel; the animevideov3 x2/x3 ncnn files are the x4 network then a bicubic downscale), and the user's
-s output scale (the request's; engine/resize.py makes each window's pixels of it). The tiler sees the runner's
out_scale. A tile window's context is the network's receptive radius, capped where its Arch says the radius is
huge, plus a blend band (BLEND_PIXELS unless the Arch declares its own).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.lowering import finish
from ..models.zoo import LoadedModel
from .cpu_backend import cpu_plan
from .cpu_choice import Choice
from .executor import Executor
from .geometry import Geometry
from .plan import build_plan

# Context beyond the (capped) receptive radius that tile windows take by default, so neighbouring tiles are blended
# over a band of 2 x this many input pixels rather than switched at one line.
BLEND_PIXELS = 4


def tile_overlap(model: LoadedModel) -> int:
    """The context (input pixels) a tile window takes on each side by default for `model`."""
    arch, radius = model.arch, model.info.receptive_radius
    context = radius if arch.max_context is None else min(radius, arch.max_context)
    return context + (BLEND_PIXELS if arch.blend_pixels is None else arch.blend_pixels)


def receptive_radius(model: LoadedModel) -> int:
    """Input pixels on each side that can influence one output pixel of the model, output resize included: its
    bicubic reads two network pixels around each output pixel, less than one input pixel more."""
    return model.info.receptive_radius + (1 if model.output_resize else 0)


def model_geometry(model: LoadedModel, tile: int, overlap: int | None = None, wrap: bool = False) -> Geometry:
    """How the tiler cuts images for `model`: cores of at most `tile` input pixels, `overlap` pixels of context
    (None: the model's default), periodic when `wrap`."""
    return Geometry(
        model.out_scale,
        tile,
        tile_overlap(model) if overlap is None else overlap,
        receptive_radius(model),
        wrap,
        model.info.size_rules,
    )


def bicubic_resize(batch: torch.Tensor, factor: float) -> torch.Tensor:
    """The trailing resize of the animevideov3 x2/x3 ncnn graphs on an (N, C, H, W) batch: bicubic, half-pixel
    centres, no antialias (on a window, as the whole image gives: the factor keeps windows on whole pixels)."""
    size = (int(batch.shape[2] * factor), int(batch.shape[3] * factor))
    return F.interpolate(batch, size=size, mode="bicubic", align_corners=False)


class ModelRunner:
    """A loaded model on one device, itself an Executor: run(x) maps (N, C, H, W) unit floats to the model's
    output (N, C', H*s, W*s), s its out_scale (the executor's network output, then its output resize)."""

    def __init__(self, model: LoadedModel, executor: Executor, choice: Choice | None = None) -> None:
        self.model, self.executor = model, executor
        self.choice = choice
        """Which CPU backend runs the network and why (engine/cpu_backend.py); None where none was chosen."""
        self.info, self.device, self.dtype, self.name = executor.info, executor.device, executor.dtype, executor.name
        self.net_scale, self.out_scale = model.info.net_scale, model.out_scale

    def run(
        self, x: torch.Tensor, clamp: tuple[float, float] | None = None, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The model's output for x; clamped to `clamp` and converted to `out_dtype` (uint8/uint16 codes, HWC)."""
        if not self.model.output_resize:
            return self.executor.run(x, clamp, out_dtype)
        y = bicubic_resize(self.executor.run(x, clamp), self.model.output_resize)
        if clamp is not None:
            y = y.clamp(*clamp)
        return y if out_dtype is None else finish(y, clamp, out_dtype)

    def activation_bytes_per_pixel(self) -> float:
        """The executor's peak bytes per input pixel (for choosing a tile that fits in memory)."""
        return self.executor.activation_bytes_per_pixel()

    def geometry(self, tile: int, overlap: int | None = None, wrap: bool = False) -> Geometry:
        """How the tiler cuts images for this model (`model_geometry`)."""
        return model_geometry(self.model, tile, overlap, wrap)


def prepare(model: LoadedModel, device: torch.device, dtype: torch.dtype | None = None) -> ModelRunner:
    """`model` ready on `device`: srkit's kernel plan in `dtype` (None: the device's default the model supports),
    or the CPU backend chosen for it (engine/cpu_backend.py); torch.int8 asks for OpenVINO's quantized network."""
    plan = build_plan(model, device, torch.float32 if dtype == torch.int8 else dtype)
    executor, choice = cpu_plan(plan, model, dtype)
    return ModelRunner(model, executor, choice)
