"""srkit.Upscaler: upscale numpy arrays or PIL images with a model, keeping dtype and channel layout.

Grayscale is run as RGB and averaged back (a one-channel model takes it as it is); alpha is upscaled
separately (through the model, as a gray image) and recombined; uint8 / uint16 / float32 inputs come back
as the same dtype. The image is split into tiles by the engine, so only tiles occupy device memory.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .engine.cpu_backend import cpu_plan
from .engine.memory import auto_tile
from .engine.plan import build_plan
from .engine.tiling import upscale_tiled
from .environment import default_device
from .models.zoo import LoadedModel, load_model

INTEGER_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


class Upscaler:
    """A model made ready once (plan, device, tile) and applied to many images."""

    def __init__(self, model: str | os.PathLike | LoadedModel, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, tile: int | str = "auto", overlap: int | None = None,
                 batch: int = 1, outscale: float | None = None, wrap: bool = False) -> None:
        self.model = model if isinstance(model, LoadedModel) else load_model(model)
        self.device = torch.device(device) if device is not None else default_device()
        dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
        self.plan = build_plan(self.model.module, self.model.info, self.device, dtype)
        # CPU backend hook (engine/cpu_backend.py): OpenVINO runs the tiles on the CPU where it applies.
        self.plan = cpu_plan(self.plan, self.model.module, dtype)
        self.overlap = self.model.info.tile_overlap if overlap is None else int(overlap)
        if tile != "auto" and (not isinstance(tile, int) or tile < 8):
            raise ValueError(f"tile must be 'auto' or an integer >= 8, got {tile!r}")
        self.tile = tile
        self.batch = batch
        self.outscale = outscale
        self.wrap = wrap

    @property
    def scale(self) -> float:
        """Output size / input size."""
        return self.outscale or self.model.scale

    def tile_size(self) -> int:
        """The core tile size in input pixels (chosen from free memory when tile='auto')."""
        if self.tile != "auto":
            return int(self.tile)
        return auto_tile(self.plan.activation_bytes_per_pixel(), self.overlap, self.batch, self.device)

    def upscale(self, image: np.ndarray | Image.Image,
                on_progress: Callable[[int, int], None] | None = None) -> np.ndarray | Image.Image:
        """Upscale an HxW, HxWx3 or HxWx4 array (uint8, uint16, float32 in [0, 1]) or a PIL image."""
        if isinstance(image, Image.Image):
            return _to_pil(self.upscale(_from_pil(image), on_progress), image.mode)
        array = np.asarray(image)
        if array.dtype not in INTEGER_MAX and array.dtype != np.float32:
            raise TypeError(f"image dtype must be uint8, uint16 or float32, got {array.dtype}")
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise ValueError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
        unit = array.astype(np.float32) / INTEGER_MAX.get(array.dtype, 1.0)
        planes = unit if unit.ndim == 3 else unit[..., None]
        if self.model.info.in_channels == 1:
            if planes.shape[2] != 1:
                raise ValueError(f"model {self.model.name!r} takes one-channel (gray) images, got shape {array.shape}")
            result = self._upscale_planes(planes, on_progress)
            return _as_dtype(result if array.ndim == 3 else result[..., 0], array.dtype)
        colour = planes[..., :3] if planes.shape[2] >= 3 else np.repeat(planes[..., :1], 3, axis=2)
        result = self._upscale_planes(colour, on_progress)
        if planes.shape[2] < 3:
            result = result.mean(axis=2, keepdims=True)
        if planes.shape[2] == 4:
            alpha = self._upscale_planes(np.repeat(planes[..., 3:], 3, axis=2), None).mean(axis=2, keepdims=True)
            result = np.concatenate([result, alpha], axis=2)
        if array.ndim == 2:
            result = result[..., 0]
        return _as_dtype(result, array.dtype)

    def upscale_frames(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Upscale same-size HxWx3 frames (video); frames that fit in one tile go through the model `batch` at a time.

        Larger frames, and a batch that runs out of device memory, take the tiled path of `upscale` one by one.
        """
        first = frames[0]
        if (self.batch < 2 or len(frames) < 2 or first.ndim != 3 or first.shape[2] != 3
                or any(f.shape != first.shape or f.dtype != first.dtype for f in frames)
                or max(first.shape[:2]) > self.tile_size() or first.dtype not in INTEGER_MAX):
            return [self.upscale(frame) for frame in frames]
        unit = np.stack(frames).astype(np.float32) / INTEGER_MAX[first.dtype]
        batch = torch.from_numpy(unit).permute(0, 3, 1, 2)
        try:
            outputs = [self.plan.run(batch[i:i + self.batch], clamp=(0.0, 1.0)).float().cpu()
                       for i in range(0, len(frames), self.batch)]
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return [self.upscale(frame) for frame in frames]
        return [_as_dtype(self._finish(out.permute(1, 2, 0), first.shape[:2]), first.dtype)
                for chunk in outputs for out in chunk]

    def _upscale_planes(self, planes: np.ndarray, on_progress) -> np.ndarray:
        """(H, W, C) float32 in [0, 1], C the model's input channels -> (H*s, W*s, C) float32 clamped to [0, 1]."""
        image = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))
        info = self.model.info
        out = upscale_tiled(image, lambda batch: self.plan.run(batch, clamp=(0.0, 1.0)), info.scale,
                            self.tile_size(), self.overlap, info.receptive_radius, self.wrap, self.batch,
                            on_progress, self._use_smaller_tile, multiple_of=info.multiple_of)
        return self._finish(out, planes.shape[:2])

    def _finish(self, out: torch.Tensor, size_in: tuple[int, int]) -> np.ndarray:
        """The network's (H*s, W*s, C) output after the model's own resize and any --scale resize, in [0, 1]."""
        if self.model.output_resize:
            out = _bicubic_resize(out, self.model.output_resize)
        result = out.numpy()
        if self.outscale and self.outscale != self.model.scale:
            height, width = size_in
            size = (max(1, round(width * self.outscale)), max(1, round(height * self.outscale)))
            downscale = size[0] < result.shape[1]
            resized = cv2.resize(result, size, interpolation=cv2.INTER_AREA if downscale else cv2.INTER_LANCZOS4)
            result = resized.reshape(size[1], size[0], -1)  # OpenCV drops a single channel's axis
        return np.clip(result, 0.0, 1.0)

    def _use_smaller_tile(self, size: int) -> None:
        """After an out-of-memory retry: say so once, and start later images at the size that fitted."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        warnings.warn(f"out of {self.device} memory: tiles reduced to {size} pixels", RuntimeWarning, stacklevel=2)
        self.tile = size


def _as_dtype(result: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Unit-range floats back to the input's dtype: integer codes rounded half up, or float32."""
    if dtype in INTEGER_MAX:
        codes = np.clip(result, 0.0, 1.0)  # the one copy; the rest is in place (a 4K frame is 100 MB of floats)
        codes *= INTEGER_MAX[dtype]
        codes += 0.5
        return np.floor(codes, out=codes).astype(dtype)
    return result.astype(np.float32)


def _bicubic_resize(image: torch.Tensor, factor: float) -> torch.Tensor:
    """The trailing resize of the animevideov3 x2/x3 ncnn graphs: bicubic, half-pixel centres, no antialias."""
    height, width = image.shape[:2]
    size = (int(height * factor), int(width * factor))
    chw = image.permute(2, 0, 1)[None]
    return F.interpolate(chw, size=size, mode="bicubic", align_corners=False)[0].permute(1, 2, 0).clamp(0.0, 1.0)


PIL_ARRAY_MODES = {"L": np.uint8, "RGB": np.uint8, "RGBA": np.uint8, "I;16": np.uint16}


def _from_pil(image: Image.Image) -> np.ndarray:
    """A PIL image as an array srkit can upscale (palette and other modes become RGB / RGBA first)."""
    if image.mode not in PIL_ARRAY_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return np.asarray(image)


def _to_pil(array: np.ndarray, mode: str) -> Image.Image:
    """Back to PIL in the input's mode where possible (16-bit gray stays 16-bit)."""
    if mode == "I;16":
        return Image.fromarray(array.astype(np.uint16))
    return Image.fromarray(array)
