"""srkit as a VapourSynth filter: `upscale(clip, model=...)` runs any model srkit loads on every frame of a clip.

8- and 16-bit integer clips run as they are: their planes go to the model as uint8 / uint16 codes and the model's
integer result is the output frame, so no float copy of a frame exists. Other integer depths (9..15 bits) go
through 16-bit integer, half floats through 32-bit float, by the core's own resizer and back to their format
afterwards. Frames go through srkit's blended tiler, so tile borders leave no seams. The core asks for frames out
of order and on `core.num_threads` threads: each filter holds one model on its device and lets at most
`num_streams` frames run on it at once (each CUDA frame on its own stream; one frame on the CPU, whose cores the
model already uses). Everything belongs to the returned clip, so several srkit filters can share one script.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import queue
import threading
from collections import OrderedDict
from concurrent.futures import Future
from contextlib import nullcontext
from fractions import Fraction
from typing import Any, TypeAlias

import numpy as np
import torch

from .defaults import DEFAULT_MODEL
from .errors import SrkitError
from .models.zoo import LoadedModel
from .upscaler import Upscaler

# VapourSynth's wheels exist for Python >= 3.12 only, so a type check elsewhere cannot read its types: the module
# is an Any handle, and the annotations name its classes through the Any aliases below.
vs: Any = importlib.import_module("vapoursynth")
VideoNode: TypeAlias = Any  # vs.VideoNode
VideoFrame: TypeAlias = Any  # vs.VideoFrame
FrameProps: TypeAlias = Any  # vs.FrameProps

MODEL_PROP = "srkit_model"  # frame property holding the name of the model that made the frame


def upscale(
    clip: VideoNode,
    model: str | os.PathLike | LoadedModel = DEFAULT_MODEL,
    output_scale: float | None = None,
    tile: int | str = "auto",
    overlap: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch: int | None = None,
    reuse_frames: int = 4,
    num_streams: int = 1,
) -> VideoNode:
    """Upscale `clip` (RGB, or GRAY for one-channel models) by `output_scale` (default: the model's), in its own
    format; `batch` as for Upscaler (default: 4 on CUDA, 1 on the CPU)."""
    try:
        return _build(clip, model, output_scale, tile, overlap, device, dtype, batch, reuse_frames, num_streams)
    except (SrkitError, ValueError) as error:
        raise vs.Error(f"srkit.upscale: {error}") from None


def _build(clip, model, output_scale, tile, overlap, device, dtype, batch, reuse_frames, num_streams) -> VideoNode:
    """Check the clip and the filter's own options (the Upscaler checks the request), make the model ready once,
    and wire the filter graph."""
    if not isinstance(clip, vs.VideoNode):
        raise SrkitError(f"clip must be a VapourSynth video clip, got {type(clip).__name__}")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise SrkitError(
            "the clip has a variable format or size; make it constant first (e.g. core.resize.Bicubic "
            "with width, height and format)"
        )
    for name, value, least in (("num_streams", num_streams, 1), ("reuse_frames", reuse_frames, 0)):
        if not isinstance(value, int) or value < least:
            raise SrkitError(f"{name} must be an integer >= {least}, got {value!r}")
    upscaler = Upscaler(
        model, device=_device(device), dtype=dtype, tile=tile, overlap=overlap, batch=batch, output_scale=output_scale
    )
    upscaler.hold_tile(clip.width)  # chosen once, so every frame is cut into the same tiles
    channels = upscaler.model.info.in_channels
    work_format = _work_format(clip, channels, upscaler.model.name)
    work = clip if clip.format.id == work_format else _convert(clip, work_format)
    height, width = upscaler.output_size(clip.height, clip.width)
    template = vs.core.std.BlankClip(work, width=width, height=height, keep=True)
    frames = _Frames(upscaler, channels, num_streams, reuse_frames, (clip.width, clip.height), (width, height))
    sources = [template, work] + ([clip] if work is not clip else [])
    # One ModifyFrame per request: a single ModifyFrame would run its callback for one frame at a time.
    out = template.std.FrameEval(lambda n: template.std.ModifyFrame(sources, frames), clip_src=sources)
    if work is clip:
        return out
    return vs.core.std.CopyFrameProps(_convert(out, clip.format.id), out)


def _convert(clip: VideoNode, format_id: int) -> VideoNode:
    """To another depth with codes taken as full range (0 .. 2^bits - 1 <-> 0 .. 1), as for srkit's images,
    whatever range the frames are tagged with (the resizer would follow the tag over its own arguments)."""
    untagged = vs.core.std.RemoveFrameProps(clip, props=["_Range", "_ColorRange"])
    return vs.core.resize.Point(untagged, format=format_id, range_in_s="full", range_s="full")


def _device(device: str | None) -> torch.device | None:
    """The device the user named, checked: one line if it is not a device here."""
    if device is None:
        return None
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SrkitError(f"device {device!r}: use 'cpu' or 'cuda' / 'cuda:N'") from None
    if chosen.type == "cuda" and (not torch.cuda.is_available() or (chosen.index or 0) >= torch.cuda.device_count()):
        raise SrkitError(f"device {device!r}: no such CUDA device here; use device='cpu'")
    if chosen.type not in ("cpu", "cuda"):
        raise SrkitError(f"device {device!r}: use 'cpu' or 'cuda' / 'cuda:N'")
    return chosen


def _work_format(clip: VideoNode, channels: int, model: str) -> int:
    """The format the model runs on: the clip's own for 8-bit, 16-bit and 32-bit float samples, else 16-bit
    integer (9..15 bits) or 32-bit float (half floats); one line saying why not for another colour family."""
    family, name = (vs.GRAY, "GRAY") if channels == 1 else (vs.RGB, "RGB")
    if clip.format.color_family != family:
        hint = "format=vs.GRAYS" if channels == 1 else "format=vs.RGBS, matrix_in_s='709'"
        raise SrkitError(
            f"model {model!r} takes {name} clips, this one is {clip.format.name}; convert it first, "
            f"e.g. core.resize.Bicubic(clip, {hint})"
        )
    sample, bits = clip.format.sample_type, clip.format.bits_per_sample
    if bits in ((8, 16) if sample == vs.INTEGER else (32,)):
        return clip.format.id
    return vs.core.query_video_format(family, sample, 16 if sample == vs.INTEGER else 32).id


class _Frames:
    """The ModifyFrame callback: one frame's planes through the model, its properties carried and adjusted."""

    def __init__(
        self,
        upscaler: Upscaler,
        channels: int,
        streams: int,
        reuse: int,
        size_in: tuple[int, int],
        size_out: tuple[int, int],
    ) -> None:
        self.upscaler, self.channels = upscaler, channels
        self.slots: queue.Queue = queue.Queue()
        cuda = upscaler.device.type == "cuda"
        for _ in range(streams if cuda else 1):
            self.slots.put(torch.cuda.Stream(upscaler.device) if cuda else None)
        self.reuse, self.lock = reuse, threading.Lock()
        self.recent: OrderedDict[bytes, Future] = OrderedDict()  # input digest -> result, newest last
        self.aspect = Fraction(size_in[0] * size_out[1], size_in[1] * size_out[0])

    def __call__(self, n: int, f: list[VideoFrame]) -> VideoFrame:
        template, work, props_from = f[0], f[1], f[-1]
        planes = np.stack([np.asarray(work[p]) for p in range(work.format.num_planes)], axis=2)
        try:
            result = self._result(planes)
        except SrkitError as error:
            raise vs.Error(f"srkit.upscale: frame {n}: {error}") from None
        out = template.copy()
        for p in range(out.format.num_planes):
            np.copyto(np.asarray(out[p]), result[..., p])
        out.props.clear()
        out.props.update(props_from.props)
        self._adjust_props(out.props)
        return out

    def _result(self, planes: np.ndarray) -> np.ndarray:
        """The upscaled (H', W', C) planes: a recent identical frame's (waiting for it if it is still running),
        or the model's."""
        if not self.reuse:
            return self._run(planes)
        key = hashlib.blake2b(planes.data, digest_size=16).digest()
        with self.lock:
            known = self.recent.get(key)
            if known is None:
                self.recent[key] = mine = Future()
            else:
                self.recent.move_to_end(key)
        if known is not None:
            return known.result()
        try:
            mine.set_result(self._run(planes))
        except BaseException as error:
            mine.set_exception(error)
            with self.lock:
                self.recent.pop(key, None)
            raise
        with self.lock:
            while len(self.recent) > self.reuse:
                self.recent.popitem(last=False)
        return mine.result()

    def _run(self, planes: np.ndarray) -> np.ndarray:
        """One frame through the model, on a free CUDA stream (or the CPU) once one is free."""
        slot = self.slots.get()
        try:
            with torch.cuda.stream(slot) if slot is not None else nullcontext():
                result = self.upscaler.upscale(planes if self.channels == 3 else planes[..., 0])
        finally:
            self.slots.put(slot)
        return result if result.ndim == 3 else result[..., None]

    def _adjust_props(self, props: FrameProps) -> None:
        """Record the model; keep the display aspect ratio where rounding made the scale differ per axis."""
        props[MODEL_PROP] = self.upscaler.model.name
        if self.aspect != 1 and props.get("_SARNum", 0) > 0 and props.get("_SARDen", 0) > 0:
            sar = Fraction(props["_SARNum"], props["_SARDen"]) * self.aspect
            props["_SARNum"], props["_SARDen"] = sar.numerator, sar.denominator
