"""srkit.Upscaler: upscale numpy arrays or PIL images with a model, keeping dtype and channel layout.

Grayscale is run as RGB and averaged back; alpha is upscaled separately (through the model, as a gray image) and
recombined; a one-channel (gray) model takes a gray image as it is and runs each plane of a colour image (R, G, B,
alpha) as a gray image of its own; uint8 / uint16 / float32 inputs come back as the same dtype. The image is split
into tiles by the engine, so only tiles occupy device memory, and the tiles are packed straight into an output array
of the input's dtype (pinned host memory on CUDA): no full-size float copy of the image is made, also for an -s
resize to another scale than the model's (each window of the network output is resized on the device as it comes,
engine/resize.py). An 8/16-bit image that fits in one window (nothing to blend) asks the executor for codes
directly, which it packs in its last pass (OpenVINO inside its compiled graph).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import overload

import numpy as np
import torch
from PIL import Image

from .defaults import default_batch
from .engine.geometry import Geometry
from .engine.memory import auto_tile, band_bytes_per_row, resize_bytes_per_pixel
from .engine.plan import DTYPE_NAMES
from .engine.resize import Resize
from .engine.runner import prepare, tile_overlap
from .engine.tiling import upscale_tiled
from .engine.transfer import host_output
from .environment import default_device
from .models.zoo import LoadedModel, load_model
from .request import UpscaleRequest

INTEGER_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
# a request's precision name -> torch dtype (int8: OpenVINO's quantized network, engine/runner.prepare)
DTYPES = {**{name: dtype for dtype, name in DTYPE_NAMES.items()}, "int8": torch.int8}
TORCH_CODES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.uint16): torch.uint16}
TORCH_DTYPES = {**TORCH_CODES, np.dtype(np.float32): torch.float32}


class Upscaler:
    """A model made ready once (plan, device, tile) from one UpscaleRequest and applied to many images."""

    def __init__(
        self,
        model: str | os.PathLike | LoadedModel,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        tile: int | str = "auto",
        overlap: int | None = None,
        batch: int | None = None,
        output_scale: float | None = None,
        wrap: bool = False,
    ) -> None:
        loaded, name = (model, model.name) if isinstance(model, LoadedModel) else (None, os.fspath(model))
        self.request = UpscaleRequest(
            model=name,
            device=None if device is None else str(device),
            dtype=_dtype_name(dtype),
            tile=None if tile == "auto" else tile,  # type: ignore[arg-type]  (another text: the request refuses it)
            overlap=overlap,
            batch=batch,
            output_scale=output_scale,
            wrap=wrap,
        )
        self.model = loaded if loaded is not None else load_model(self.request.model)
        self.device = torch.device(self.request.device) if self.request.device else default_device()
        dtype_ = DTYPES[self.request.dtype] if self.request.dtype else None
        self.runner = prepare(self.model, self.device, dtype_)  # on the CPU, the backend chosen for it
        self.fitted_tile: int | None = None
        """After an out-of-memory retry, the tile size that fitted: later images start there (the request is
        left as asked)."""

    @classmethod
    def from_request(cls, request: UpscaleRequest) -> Upscaler:
        """The Upscaler a request describes (each worker process or Ray actor builds its own from one)."""
        return cls(
            request.model,
            device=request.device,
            dtype=request.dtype,
            tile="auto" if request.tile is None else request.tile,
            overlap=request.overlap,
            batch=request.batch,
            output_scale=request.output_scale,
            wrap=request.wrap,
        )

    @property
    def batch(self) -> int:
        """Tiles or video frames per model call (the request's, else the device's default)."""
        return self.request.batch or default_batch(self.device.type)

    @property
    def overlap(self) -> int:
        """Context pixels around each tile (the request's, else the model's)."""
        return tile_overlap(self.model) if self.request.overlap is None else self.request.overlap

    @property
    def wrap(self) -> bool:
        """Whether images are periodic (seamless textures)."""
        return self.request.wrap

    @property
    def model_scale(self) -> int:
        """The loaded model's output / input size (an ncnn x2/x3 graph's resize after the network included)."""
        return self.model.out_scale

    @property
    def output_scale(self) -> float:
        """Output size / input size: the request's output scale, else the network's."""
        return self.request.output_scale or self.model_scale

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the output for a `height` x `width` input: the one rule photos, animations, video
        and the tiler follow."""
        return self.request.output_size(height, width, self.model_scale)

    def tile_size(self, width: int | None = None) -> int:
        """The core tile size in input pixels: the size that fitted after an out-of-memory retry, else the
        request's, else chosen from free memory (the bound plan's buffers, an -s resize's per window and, on CUDA
        for an image `width` pixels wide, the output bands)."""
        if self.fitted_tile is not None:
            return self.fitted_tile
        if self.request.tile is not None:
            return self.request.tile
        channels = self.model.info.out_channels
        per_pixel = self.runner.activation_bytes_per_pixel()
        if self._resizes():
            per_pixel += resize_bytes_per_pixel(channels, self.model_scale, self.output_scale)
        per_row = (
            band_bytes_per_row(width * self.output_scale, channels, self.output_scale)
            if width and self.device.type == "cuda"
            else 0.0
        )
        return auto_tile(per_pixel, self.overlap, self.batch, self.device, bytes_per_row=per_row)

    def hold_tile(self, width: int) -> None:
        """Cut every later image into the tiles chosen now for one `width` pixels wide (the VapourSynth filter:
        every frame alike), as if that size had fitted."""
        self.fitted_tile = self.tile_size(width)

    @overload
    def upscale(
        self,
        image: np.ndarray,
        on_progress: Callable[[int, int], None] | None = None,
        out_dtype: np.dtype | type | None = None,
    ) -> np.ndarray: ...

    @overload
    def upscale(
        self,
        image: Image.Image,
        on_progress: Callable[[int, int], None] | None = None,
        out_dtype: np.dtype | type | None = None,
    ) -> Image.Image: ...

    def upscale(
        self,
        image: np.ndarray | Image.Image,
        on_progress: Callable[[int, int], None] | None = None,
        out_dtype: np.dtype | type | None = None,
    ) -> np.ndarray | Image.Image:
        """Upscale an HxW, HxWx3 or HxWx4 array (uint8, uint16, float32 in [0, 1]) or a PIL image.

        The result has the input's dtype, or `out_dtype` (np.uint8 / np.uint16) for a float32 array: codes
        packed tile by tile (clamped, rounded half up), so no float copy of the output exists."""
        if isinstance(image, Image.Image):
            return _to_pil(self.upscale(_from_pil(image), on_progress), image.mode)
        array = np.asarray(image)
        if array.dtype not in INTEGER_MAX and array.dtype != np.float32:
            raise TypeError(f"image dtype must be uint8, uint16 or float32, got {array.dtype}")
        if out_dtype is not None and (array.dtype != np.float32 or np.dtype(out_dtype) not in INTEGER_MAX):
            raise TypeError(
                f"out_dtype is for float32 images and must be uint8 or uint16, got {out_dtype} for a "
                f"{array.dtype} image"
            )
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise ValueError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
        if any(stride < 0 for stride in array.strides):  # torch takes no negative strides (a flipped view)
            array = np.ascontiguousarray(array)
        return self._upscale_into(array, np.dtype(out_dtype or array.dtype), on_progress)

    def upscale_frames(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Upscale same-size HxWx3 frames (video); frames that fit in one window go through the model `batch` at a
        time (`_whole`).

        Larger frames, and a batch that runs out of device memory, take the tiled path of `upscale` one by one.
        """
        first = frames[0]
        if (
            self.batch < 2
            or len(frames) < 2
            or any(f.shape != first.shape or f.dtype != first.dtype for f in frames)
            or (geometry := self._whole_geometry(first)) is None
        ):
            return [self.upscale(frame) for frame in frames]
        batch = torch.from_numpy(np.stack(frames))
        try:
            outputs = [
                self._whole(batch[i : i + self.batch], geometry).cpu() for i in range(0, len(frames), self.batch)
            ]
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return [self.upscale(frame) for frame in frames]
        return [out.numpy() for chunk in outputs for out in chunk]

    def _whole_geometry(self, image: np.ndarray) -> Geometry | None:
        """How an image is cut when it runs as one window whose codes the executor packs itself (`_whole`): HxWxC
        with the model's channels, uint8/uint16, no -s resize, not periodic, within one tile once padded; else
        None. (The tile is chosen once here, so the check and the run agree.)"""
        if image.ndim != 3 or image.shape[2] != self.model.info.in_channels or image.dtype not in INTEGER_MAX:
            return None
        height, width = image.shape[:2]
        geometry = self.runner.geometry(self.tile_size(width), self.overlap, self.wrap)
        return geometry if not self._resizes() and geometry.fits_one_window(height, width) else None

    def _whole(self, frames: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """(N, H, W, C) codes that fit in one window of `geometry` -> the model's (N, H*s, W*s, C) codes of the same
        dtype, packed by the executor in its last pass (nothing to blend: no float copy of the output), the input
        padded to the model's size rules as the tiler pads it and the output cropped back."""
        _, height, width, _ = frames.shape
        s = self.model.out_scale
        grid = geometry.whole(height, width, [(s, 1), (s, 1)])
        window = grid.window(grid.cores[0])
        x = torch.stack([grid.pixels(frame.permute(2, 0, 1), window) for frame in frames])
        codes = self.runner.run(
            self._unit(x, float(torch.iinfo(frames.dtype).max)), clamp=(0.0, 1.0), out_dtype=frames.dtype
        )
        return codes[:, : height * s, : width * s]

    def _resizes(self) -> bool:
        """Whether -s asks for another scale than the model's (each window resized after the network)."""
        return bool(self.request.output_scale) and self.request.output_scale != self.model_scale

    def _upscale_into(self, array: np.ndarray, out_dtype: np.dtype, on_progress) -> np.ndarray:
        """The output (self.output_size) of an HxW[xC] array, tiles packed straight into an `out_dtype` array."""
        planes = array if array.ndim == 3 else array[..., None]
        whole = self._whole_geometry(planes) if out_dtype == array.dtype else None
        if whole is not None:
            try:
                out = self._whole(_input_view(planes)[None], whole)[0].cpu()
            except torch.OutOfMemoryError:  # the tiled path below splits it
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            else:
                if on_progress:
                    on_progress(1, 1)
                result = out.contiguous().numpy()
                return result if array.ndim == 3 else result[..., 0]
        height, width, channels = planes.shape
        s = self.model.out_scale
        resize = None
        if self._resizes():
            resize = Resize((height * s, width * s), self.output_size(height, width), periodic=self.wrap)
        target = host_output(
            (*(resize.size if resize else (height * s, width * s)), channels),
            TORCH_DTYPES[np.dtype(out_dtype)],
            self.device,
        )
        pixels = _input_view(planes).permute(2, 0, 1)
        divisor = INTEGER_MAX.get(array.dtype, 1.0)
        if self.model.info.in_channels == 1:  # a gray model: each plane (colour, alpha) is a gray image of its own
            for plane in range(channels):
                progress = on_progress and _share(on_progress, plane, channels)
                self._tile(
                    pixels[plane : plane + 1],
                    target[..., plane : plane + 1],
                    divisor,
                    progress,
                    gray=False,
                    resize=resize,
                )
        else:
            colour = min(channels, 3)
            self._tile(pixels[:colour], target[..., :colour], divisor, on_progress, gray=colour == 1, resize=resize)
            if channels == 4:  # alpha: upscaled separately, as a gray image
                self._tile(pixels[3:], target[..., 3:], divisor, None, gray=True, resize=resize)
        out = target.numpy()  # shares the tensor's memory (and keeps it alive)
        return out if array.ndim == 3 else out[..., 0]

    def _tile(
        self, pixels: torch.Tensor, target: torch.Tensor, divisor: float, on_progress, gray: bool, resize: Resize | None
    ) -> None:
        """Upscale (C, H, W) pixels (codes / `divisor` are unit floats) into the `target` (H*s, W*s, C) or, with
        `resize`, its size; `gray` runs one plane as RGB and averages the result back."""

        def run(batch: torch.Tensor) -> torch.Tensor:
            x = self._unit(batch, divisor)
            y = self.runner.run(x.expand(-1, 3, -1, -1) if gray else x, clamp=(0.0, 1.0))
            return y.mean(dim=1, keepdim=True) if gray else y

        geometry = self.runner.geometry(self.tile_size(pixels.shape[2]), self.overlap, self.wrap)
        upscale_tiled(
            pixels,
            run,
            geometry,
            batch=self.batch,
            out=target,
            clamp=(0.0, 1.0),
            resize=resize,
            on_progress=on_progress,
            on_smaller_tile=self._use_smaller_tile,
        )

    def _unit(self, batch: torch.Tensor, divisor: float) -> torch.Tensor:
        """A batch of codes (or unit floats) as unit-range float32 on the runner's device."""
        x = batch.to(self.device).float()
        return x.div_(divisor) if divisor != 1.0 else x

    def _use_smaller_tile(self, size: int) -> None:
        """After an out-of-memory retry: say so once, and start later images at the size that fitted."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        warnings.warn(f"out of {self.device} memory: tiles reduced to {size} pixels", RuntimeWarning, stacklevel=2)
        self.fitted_tile = size


def _dtype_name(dtype: str | torch.dtype | None) -> str | None:
    """A precision as the request names it ('fp16', ...); a torch dtype srkit does not run becomes its text, which
    the request refuses in one line."""
    names = {torch_dtype: name for name, torch_dtype in DTYPES.items()}
    return names.get(dtype, str(dtype)) if isinstance(dtype, torch.dtype) else dtype


def _share(on_progress: Callable[[int, int], None], part: int, parts: int) -> Callable[[int, int], None]:
    """Progress of one of `parts` equal passes, reported as progress of the whole."""
    return lambda done, total: on_progress(part * total + done, parts * total)


def _input_view(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing an input array's memory; srkit only reads it, so a read-only array (PIL's) is fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


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
