"""srkit.TextureGenerator: seeds in, seamless square RGB textures out, from a GAN family, a generator file or noise.

A GAN texture is the fused generator plan run on seeded spatial noise (drawn on the CPU, so a seed means the
same noise on every device); sizes beyond one tile go through the engine's tiler in wrap mode. Noise methods
are the classic baselines. With `upscale`, the texture is made at size / scale and upscaled by an SR model
in wrap mode, so the large texture stays seamless. Tiles are of a fixed size, so a seed gives the same
bytes on every run on one machine.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .catalog import DEFAULT_FAMILY
from .engine.plan import build_plan
from .engine.runner import model_geometry
from .engine.tiling import upscale_tiled
from .environment import default_device
from .errors import SrkitError
from .models.generators import load_family, read_generator
from .models.zoo import LoadedModel
from .synth import noise
from .upscaler import DTYPES, Upscaler

GENERATOR_TILE = 64  # noise cells per tile side (1024 pixels for a 4-stage generator)
UPSCALE_TILE = 256  # input pixels per tile side for the SR model
NOISE_MIN_SIZE = 8
MAX_SIZE = 16384


class TextureOptionError(SrkitError):
    """An option the texture source cannot honour (size, method, colour map, upscaling model)."""

    exit_code = 2


class TextureGenerator:
    """A texture source made ready once (exactly one of family, model, method) and applied to many seeds."""

    def __init__(self, family: str | None = None, *, model: str | os.PathLike | None = None,
                 method: str | None = None, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, upscale: str | os.PathLike | LoadedModel | None = None,
                 colormap: str = "gray", octaves: int = 4, frequency: float = 4) -> None:
        if sum(x is not None for x in (family, model, method)) > 1:
            raise TextureOptionError("choose one texture source: a family, a generator model or a noise method")
        self.device = torch.device(device) if device is not None else default_device()
        self.generator: LoadedModel | None = None
        if method is not None:
            if method not in noise.METHODS:
                raise TextureOptionError(f"unknown noise method {method!r}; choose one of "
                                         f"{', '.join(noise.METHODS)}")
            if colormap not in noise.COLORMAPS:
                raise TextureOptionError(f"unknown colour map {colormap!r}; choose one of "
                                         f"{', '.join(noise.COLORMAPS)}")
            self.name, self.source = method, dict(method=method, colormap=colormap, octaves=octaves,
                                                  frequency=frequency)
            self.palette = noise.colormap_palette(colormap)
        else:
            self.generator = read_generator(model) if model is not None else load_family(family or DEFAULT_FAMILY)
            self.name = self.generator.name
            self.source = dict(model=str(model)) if model is not None else dict(family=self.name)
            self.plan = build_plan(self.generator, self.device, DTYPES[dtype] if isinstance(dtype, str) else dtype)
        self.upscaler = None if upscale is None else self._upscaler(upscale, dtype)
        if self.upscaler is not None:
            self.source["upscale"] = self.upscaler.model.name

    def _upscaler(self, model: str | os.PathLike | LoadedModel, dtype) -> Upscaler:
        upscaler = Upscaler(model, device=self.device, dtype=dtype, tile=UPSCALE_TILE, wrap=True)
        name, scale = upscaler.model.name, upscaler.model.out_scale
        if upscaler.model.output_resize:
            raise TextureOptionError(f"--upscale {name}: its output is resized after the network, which does not "
                                     "wrap around; use an x2 or x4 network such as realesr-animevideov3")
        if scale & (scale - 1):
            raise TextureOptionError(f"--upscale {name}: scale {scale} would not keep power-of-two sizes; "
                                     "use an x2 or x4 model")
        return upscaler

    @property
    def scale(self) -> int:
        """How many times the SR model enlarges the generated texture (1 without `upscale`)."""
        return self.upscaler.model.out_scale if self.upscaler else 1

    @property
    def grid(self) -> int:
        """Pixels between the grid lines of its textures (noise cells, times the upscale); 1 for noise methods."""
        return (self.generator.info.net_scale if self.generator else 1) * self.scale

    def seam_period(self, size: int) -> int:
        """The grid period the seam score of a `size` texture compares its border with (1 if too small)."""
        return self.grid if size >= 2 * self.grid else 1

    @property
    def min_size(self) -> int:
        """The smallest texture side this source makes (the generator's pixels per noise cell, times the scale)."""
        base = self.generator.info.net_scale if self.generator else NOISE_MIN_SIZE
        return base * self.scale

    def check_size(self, size: int) -> None:
        """Refuse a size that is not a power of two in [min_size, MAX_SIZE], naming the fix."""
        if not isinstance(size, int) or size < 1 or size & (size - 1) or not self.min_size <= size <= MAX_SIZE:
            raise TextureOptionError(f"--size {size}: use a power of two from {self.min_size} to {MAX_SIZE}")

    def generate(self, size: int, seed: int) -> np.ndarray:
        """A seamless (size, size, 3) uint8 texture; the same seed gives the same pixels.

        The last pass (the generator's plan or tiler, else the SR model's tiler) packs the codes, so no float
        copy of the texture is made; only a texture to be upscaled stays float, at 1 / scale of its size."""
        self.check_size(size)
        base = size // self.scale
        out_dtype = None if self.upscaler else torch.uint8
        if self.generator:
            rgb = self._generate(base, seed, out_dtype)
        else:
            rgb = noise.noise_texture(self.source["method"], base, seed, self.palette, self.source["frequency"],
                                      self.source["octaves"], np.float32 if out_dtype is None else np.uint8)
        return self.upscaler.upscale(rgb, out_dtype=np.uint8) if self.upscaler else rgb

    def _generate(self, size: int, seed: int, out_dtype: torch.dtype | None) -> np.ndarray:
        """(size, size, 3) from the generator, float32 in [0, 1] or packed to `out_dtype` codes; one plan run,
        or wrapped tiles when large."""
        info = self.generator.info
        cells = size // info.net_scale
        noise_cells = torch.randn((1, info.in_channels, cells, cells), generator=torch.Generator().manual_seed(seed))
        if cells <= GENERATOR_TILE:
            image = self.plan.run(noise_cells, clamp=(0.0, 1.0), out_dtype=out_dtype)[0]
            return (image if out_dtype is not None else image.permute(1, 2, 0).float()).cpu().numpy()
        out = torch.empty(size, size, info.out_channels, dtype=out_dtype or torch.float32)
        upscale_tiled(noise_cells[0], lambda batch: self.plan.run(batch, clamp=(0.0, 1.0)),
                      model_geometry(self.generator, GENERATOR_TILE, wrap=True), out=out, clamp=(0.0, 1.0))
        return out.numpy()
