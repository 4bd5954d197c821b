"""Read an input once into a `VideoInfo`: its first video stream's size, rate, time base, colour, depth, field
order, rotation, duration and timecode, and the audio, subtitle and attachment streams the output copies."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.stream
import av.video.stream

from .colour import HD_HEIGHT, MATRICES, RANGE_JPEG
from .errors import VideoError

FIELD_ORDERS = {2: "tt", 3: "bb", 4: "tb", 5: "bt"}  # AVFieldOrder values of interlaced video
COPIED_STREAM_TYPES = ("audio", "subtitle")  # streams the output copies beside the video


@dataclass(frozen=True)
class StreamInfo:
    """An audio, subtitle or attachment stream of the input, which the output copies (or says it leaves out)."""

    index: int
    type: str
    codec: str
    """The codec's name; for an attachment, its MIME type."""


@dataclass
class VideoInfo:
    """What srkit needs to know about an input video (read once by `probe`, then passed along)."""

    path: Path
    width: int
    height: int
    frames: int | None
    """Frame count from the container, or an estimate from duration x rate, or None if unknown."""
    average_rate: Fraction | None
    time_base: Fraction
    codec: str
    pix_fmt: str
    deep: bool
    """More than 8 bits per sample."""
    matrix: str
    full_range: bool
    rotation: int
    """Degrees the stored frames must be turned by for display (from the display matrix)."""
    primaries: int = 2
    """AVColorPrimaries tag of the input (2: unspecified)."""
    transfer: int = 2
    """AVColorTransferCharacteristic tag of the input (2: unspecified); kept as is (e.g. PQ for HDR10)."""
    bits: int = 8
    field_order: str | None = None
    """'tt', 'bb', 'tb' or 'bt' for interlaced video, None for progressive."""
    duration: Fraction | None = None
    """Seconds the video stream lasts according to the container (None: unknown)."""
    start_time: Fraction = Fraction(0)
    streams: tuple[StreamInfo, ...] = ()
    """Audio, subtitle and attachment streams, copied to the output."""
    timecode: str | None = None
    """SMPTE timecode of the first frame (a tag of the video stream, of a tmcd track or of the file)."""

    @property
    def chroma(self) -> str:
        """Chroma subsampling of the input as in pixel format names: '420', '422', '444', ..."""
        found = re.search(r"4[0-4][0-4]", self.pix_fmt)
        return found.group(0) if found else "444"


def open_input(path: Path) -> av.container.InputContainer:
    """Open `path` for reading; a VideoError naming it if FFmpeg cannot."""
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"{path}: cannot open as a video ({error})") from None


def _matrix(stream: av.video.stream.VideoStream) -> str:
    return MATRICES.get(int(stream.codec_context.colorspace or 2), "itu709" if stream.height >= HD_HEIGHT else "itu601")


def time_base(stream: av.stream.Stream) -> Fraction:
    """The time base of a demuxed stream (FFmpeg gives every input stream one)."""
    if stream.time_base is None:
        raise VideoError(f"stream #{stream.index} has no time base")
    return stream.time_base


def _stream_end(stream: av.stream.Stream) -> Fraction | None:
    """Where the video stream ends, in seconds: start + the container's duration field, else Matroska's DURATION
    tag (which FFmpeg writes as the end timestamp); None if the container does not say."""
    if stream.duration:
        return (stream.duration + (stream.start_time or 0)) * time_base(stream)
    tag = next((value for key, value in stream.metadata.items() if key.upper().startswith("DURATION")), None)
    found = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag or "")
    if not found:
        return None
    hours, minutes, seconds = found.groups()
    return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)


def _mimetype(stream: av.stream.Stream) -> str:
    """An attachment stream's MIME type (PyAV's stubs type attachments as plain streams)."""
    attachment: Any = stream
    return attachment.mimetype


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the first video stream of `path` and the streams to copy; raises VideoError if there is none."""
    path = Path(path)
    with open_input(path) as container:
        if all(s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video):
            cover = " (only a cover picture)" if container.streams.video else ""
            raise VideoError(f"{path}: has no video stream{cover}")
        stream = container.streams.video[0]
        if stream.codec_context.width == 0:
            raise VideoError(f"{path}: the video stream has no decodable picture (codec {stream.codec_context.name})")
        start = stream.start_time * time_base(stream) if stream.start_time is not None else Fraction(0)
        end = _stream_end(stream)
        duration = end - start if end is not None else None
        frames = stream.frames or None
        if frames is None and duration and stream.average_rate:
            frames = round(float(duration * stream.average_rate))
        elif frames is None and container.duration and stream.average_rate:
            frames = round(container.duration / av.time_base * float(stream.average_rate))
        fmt = stream.codec_context.format
        bits = max((c.bits for c in fmt.components), default=8) if fmt is not None else 8
        rotation, interlaced = 0, False
        try:
            for frame in container.decode(stream):
                rotation = int(round(frame.rotation or 0)) % 360
                interlaced = bool(frame.interlaced_frame)
                break
        except av.error.FFmpegError:
            pass  # the reader reports undecodable packets one by one
        field_order = FIELD_ORDERS.get(int(stream.codec_context.field_order or 0))
        if interlaced and field_order is None:
            field_order = "tt"
        streams = tuple(
            StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else _mimetype(s))
            for s in container.streams
            if s.type in (*COPIED_STREAM_TYPES, "attachment")
        )
        timecode = next(
            (
                found
                for found in (
                    *(s.metadata.get("timecode") for s in container.streams),
                    container.metadata.get("timecode"),
                )
                if found
            ),
            None,
        )
        return VideoInfo(
            path,
            stream.codec_context.width,
            stream.codec_context.height,
            frames,
            stream.average_rate,
            time_base(stream),
            stream.codec_context.name,
            fmt.name if fmt else "unknown",
            bits > 8,
            _matrix(stream),
            int(stream.codec_context.color_range or 0) == RANGE_JPEG,
            rotation,
            int(stream.codec_context.color_primaries or 2),
            int(stream.codec_context.color_trc or 2),
            bits,
            field_order,
            duration,
            start,
            streams,
            timecode,
        )
