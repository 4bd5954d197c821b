"""srkit.TextureGenerator: seeds in, seamless square RGB textures out, from a GAN family, a generator file, noise,
or image quilting from an exemplar (a user's photo of a material).

A GAN texture is the fused generator plan run on seeded spatial noise (drawn on the CPU, so a seed means the
same noise on every device) and the generator's wave fields, if it has any; sizes beyond one tile go through the
engine's tiler in wrap mode. Noise methods are the classic baselines; quilting (srkit/synth/quilt.py) copies an
exemplar's own patches. With `upscale`, the texture is made at size / scale and upscaled by an SR model in wrap
mode, so the large texture stays seamless.
Tiles are of a fixed size, so a seed gives the same bytes on every run on one machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .catalog import DEFAULT_FAMILY, EXEMPLAR_METHOD
from .defaults import DEFAULT_MAX_PIXELS
from .engine.plan import build_plan
from .engine.runner import model_geometry
from .engine.tiling import upscale_tiled
from .environment import default_device
from .errors import SrkitError
from .io.paths import special_file_reason
from .models import dcgan
from .models.generators import load_family, material_names, read_generator
from .models.zoo import LoadedModel
from .synth import noise, quilt
from .train.exemplar_sources import records
from .train.exemplars import read_exemplar
from .upscaler import DTYPES, Upscaler

GENERATOR_TILE = 64  # noise cells per tile side (1024 pixels for a 4-stage generator)
UPSCALE_TILE = 256  # input pixels per tile side for the SR model
NOISE_MIN_SIZE = 8
MAX_SIZE = 16384


class TextureOptionError(SrkitError):
    """An option the texture source cannot honour (size, method, colour map, upscaling model)."""

    exit_code = 2


def read_quilt_exemplar(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, bool]:
    """The exemplar of `--exemplar` as (H, W, 3) uint8 and whether it tiles; every unusable file is one line."""
    path = Path(path)
    if reason := special_file_reason(path):  # never opened: a FIFO would block
        raise TextureOptionError(f"--exemplar {path}: {reason}")
    if path.is_dir():
        raise TextureOptionError(f"--exemplar {path}: is a folder; name one image of the material (PNG, JPEG, ...)")
    if not path.is_file():
        raise TextureOptionError(f"--exemplar {path}: no such file; name an image of the material (PNG, JPEG, ...)")
    try:
        pixels, tileable = read_exemplar(path, max_pixels)
        quilt.check_exemplar(pixels)
    except (SrkitError, quilt.QuiltError) as error:
        raise TextureOptionError(
            f"--exemplar {error}" if isinstance(error, SrkitError) else f"--exemplar {path}: {error}"
        ) from None
    return pixels, tileable


class TextureGenerator:
    """A texture source made ready once (exactly one of family, model, method; `exemplar` for quilting, which it
    implies) and applied to many seeds."""

    def __init__(
        self,
        family: str | None = None,
        *,
        model: str | os.PathLike | None = None,
        method: str | None = None,
        exemplar: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        upscale: str | os.PathLike | LoadedModel | None = None,
        colormap: str = "gray",
        octaves: int = 4,
        frequency: float = 4,
        material: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        patch: int | None = None,
    ) -> None:
        if exemplar is not None and method is None:
            method = EXEMPLAR_METHOD
        if sum(x is not None for x in (family, model, method)) > 1:
            raise TextureOptionError(
                "choose one texture source: a family, a generator model, a noise method or an exemplar to quilt"
            )
        if exemplar is None and method == EXEMPLAR_METHOD:
            raise TextureOptionError(f"--method {EXEMPLAR_METHOD} needs --exemplar FILE (an image of the material)")
        if patch is not None and exemplar is None:
            raise TextureOptionError("--patch is the side of quilting's patches; it needs --exemplar FILE")
        if exemplar is not None and method != EXEMPLAR_METHOD:
            raise TextureOptionError(
                f"--exemplar is quilted (--method {EXEMPLAR_METHOD}), not used by --method {method}; drop one of them"
            )
        self.device = torch.device(device) if device is not None else default_device()
        self.generator: LoadedModel | None = None
        self.exemplar: np.ndarray | None = None
        self.source: dict[str, Any]  # what made the textures, as the pack manifest records it
        if exemplar is not None:
            self.exemplar, self.tileable = read_quilt_exemplar(exemplar, max_pixels)
            self.name = Path(exemplar).stem
            if patch is not None and patch < quilt.MIN_PATCH:
                raise TextureOptionError(f"--patch {patch}: use patches of at least {quilt.MIN_PATCH} pixels")
            self.patch = patch or quilt.default_patch(self.exemplar.shape)
            self.source = dict(method=EXEMPLAR_METHOD, exemplar=str(exemplar), patch=self.patch)
            if known := records([Path(exemplar)]):  # a registry exemplar: its package and license
                self.source["exemplar_source"] = known[0]
        elif method is not None:
            if method not in noise.METHODS:
                raise TextureOptionError(
                    f"unknown noise method {method!r}; choose one of "
                    f"{', '.join(noise.METHODS)}, or {EXEMPLAR_METHOD} with an exemplar"
                )
            if colormap not in noise.COLORMAPS:
                raise TextureOptionError(f"unknown colour map {colormap!r}; choose one of {', '.join(noise.COLORMAPS)}")
            self.name, self.source = (
                method,
                dict(method=method, colormap=colormap, octaves=octaves, frequency=frequency),
            )
            self.palette = noise.colormap_palette(colormap)
        else:
            self.generator = read_generator(model) if model is not None else load_family(family or DEFAULT_FAMILY)
            self.name = self.generator.name
            self.source = dict(model=str(model)) if model is not None else dict(family=self.name)
            self.plan = build_plan(self.generator, self.device, DTYPES[dtype] if isinstance(dtype, str) else dtype)
        self.materials = material_names(self.generator) if self.generator else []
        self.material = material
        if material is not None:
            if not self.materials:
                raise TextureOptionError(
                    f"--material {material}: {self.name} makes one material; --material picks one of a family "
                    "trained with `srkit train gan --materials`"
                )
            if not 0 <= material < len(self.materials):
                choices = ", ".join(f"{index} {name}" for index, name in enumerate(self.materials))
                raise TextureOptionError(f"--material {material}: choose one of {choices}")
        self.upscaler = None if upscale is None else self._upscaler(upscale, dtype)
        if self.upscaler is not None:
            self.source["upscale"] = self.upscaler.model.name

    def _upscaler(self, model: str | os.PathLike | LoadedModel, dtype) -> Upscaler:
        upscaler = Upscaler(model, device=self.device, dtype=dtype, tile=UPSCALE_TILE, wrap=True)
        name, scale = upscaler.model.name, upscaler.model.out_scale
        if upscaler.model.output_resize:
            raise TextureOptionError(
                f"--upscale {name}: its output is resized after the network, which does not "
                "wrap around; use an x2 or x4 network such as realesr-animevideov3"
            )
        if scale & (scale - 1):
            raise TextureOptionError(
                f"--upscale {name}: scale {scale} would not keep power-of-two sizes; use an x2 or x4 model"
            )
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
        base = (
            self.generator.info.net_scale
            if self.generator
            else quilt.MIN_SIZE
            if self.exemplar is not None
            else NOISE_MIN_SIZE
        )
        return base * self.scale

    def check_size(self, size: int) -> None:
        """Refuse a size that is not a power of two in [min_size, MAX_SIZE], naming the fix."""
        if not isinstance(size, int) or size < 1 or size & (size - 1) or not self.min_size <= size <= MAX_SIZE:
            raise TextureOptionError(f"--size {size}: use a power of two from {self.min_size} to {MAX_SIZE}")
        if self.exemplar is not None:
            base = size // self.scale
            try:
                quilt.plan_blocks(base, base, self.patch, self.exemplar.shape, self.tileable)
            except quilt.QuiltError as error:
                raise TextureOptionError(f"--size {size}: {error}") from None

    def material_of(self, seed: int) -> int | None:
        """The material of texture `seed`: the chosen one, else seed mod the count (consecutive seeds go round
        all of them); None for a source without materials."""
        if not self.materials:
            return None
        return self.material if self.material is not None else seed % len(self.materials)

    def texture_fields(self, seed: int) -> dict[str, Any]:
        """What a pack's manifest records of texture `seed` beyond its source: its material, if it has one."""
        material = self.material_of(seed)
        return {} if material is None else dict(material=material, material_name=self.materials[material])

    def generate(self, size: int, seed: int) -> np.ndarray:
        """A seamless (size, size, 3) uint8 texture; the same seed gives the same pixels.

        The last pass (the generator's plan or tiler, else the SR model's tiler) packs the codes, so no float
        copy of the texture is made; only a texture to be upscaled stays float, at 1 / scale of its size."""
        self.check_size(size)
        base = size // self.scale
        out_dtype = None if self.upscaler else torch.uint8
        if self.generator:
            rgb = self._generate(self.generator, base, seed, out_dtype)
        elif self.exemplar is not None:
            codes = quilt.quilt(self.exemplar, base, base, seed, patch=self.patch, tileable=self.tileable)
            rgb = codes if out_dtype is not None else codes.astype(np.float32) / 255.0
        else:
            rgb = noise.noise_texture(
                self.source["method"],
                base,
                seed,
                self.palette,
                self.source["frequency"],
                self.source["octaves"],
                np.float32 if out_dtype is None else np.uint8,
            )
        return np.asarray(self.upscaler.upscale(rgb, out_dtype=np.uint8)) if self.upscaler else rgb

    def _generate(self, generator: LoadedModel, size: int, seed: int, out_dtype: torch.dtype | None) -> np.ndarray:
        """(size, size, 3) from the generator, float32 in [0, 1] or packed to `out_dtype` codes; one plan run,
        or wrapped tiles when large."""
        info = generator.info
        cells = size // info.net_scale
        rng = torch.Generator().manual_seed(seed)
        noise_cells = dcgan.draw_cells(generator.module, info.in_channels, 1, cells, rng, self.material_of(seed))
        if cells <= GENERATOR_TILE:
            image = self.plan.run(noise_cells, clamp=(0.0, 1.0), out_dtype=out_dtype)[0]
            return (image if out_dtype is not None else image.permute(1, 2, 0).float()).cpu().numpy()
        out = torch.empty(size, size, info.out_channels, dtype=out_dtype or torch.float32)
        upscale_tiled(
            noise_cells[0],
            lambda batch: self.plan.run(batch, clamp=(0.0, 1.0)),
            model_geometry(generator, GENERATOR_TILE, wrap=True),
            out=out,
            clamp=(0.0, 1.0),
        )
        return out.numpy()
