"""Video decode and encode with PyAV: RGB frames in and out, colour-correct, timestamps kept, other streams copied.

Decoding converts each frame to RGB with the stream's own matrix (BT.601 / 709 / 2020) and range, defaulting
to BT.709 for HD and above and BT.601 below; frames deeper than 8 bits come out as 16-bit RGB. Encoding
converts back with the same matrix and range and tags the output stream with primaries, transfer, matrix,
range and rotation. Audio and subtitle packets are remuxed unchanged. Output goes to a temporary file that
is renamed only when the container is closed cleanly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import SrkitError

# FFmpeg AVColorSpace values -> the swscale matrix PyAV's reformatter knows.
MATRICES = {1: "itu709", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# The matching AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace tags for the output stream.
TAGS = {"itu709": (1, 1, 1), "itu601": (5, 6, 5), "smpte170m": (6, 6, 6), "smpte240m": (7, 7, 7),
        "bt2020": (9, 14, 9)}
RANGE_MPEG, RANGE_JPEG = 1, 2  # AVColorRange: limited (TV) and full (PC)
HD_HEIGHT = 720
DTS_SKEW_SECONDS = 10  # no real encoder delays decoding by more than this behind presentation
COPIED_STREAM_TYPES = ("audio", "subtitle")


class VideoError(SrkitError):
    """A video srkit cannot read or write (no video stream, unsupported codec, corrupt container)."""


@dataclass
class VideoInfo:
    """What srkit needs to know about an input video."""

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


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"{path}: cannot open as a video ({error})") from None


def _matrix(stream: av.video.stream.VideoStream) -> str:
    return MATRICES.get(int(stream.codec_context.colorspace or 2), "itu709" if stream.height >= HD_HEIGHT
                        else "itu601")


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the first video stream of `path`; raises VideoError if there is none."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.width == 0:
            raise VideoError(f"{path}: the video stream has no decodable picture (codec {stream.codec_context.name})")
        frames = stream.frames or None
        if frames is None and stream.duration and stream.average_rate:
            frames = round(float(stream.duration * stream.time_base * stream.average_rate))
        elif frames is None and container.duration and stream.average_rate:
            frames = round(container.duration / av.time_base * float(stream.average_rate))
        fmt = stream.codec_context.format
        deep = fmt is not None and any(c.bits > 8 for c in fmt.components)
        rotation = 0
        for frame in container.decode(stream):
            rotation = int(round(frame.rotation or 0)) % 360
            break
        return VideoInfo(path, stream.codec_context.width, stream.codec_context.height, frames,
                         stream.average_rate, stream.time_base, stream.codec_context.name,
                         fmt.name if fmt else "unknown", deep, _matrix(stream),
                         int(stream.codec_context.color_range or 0) == RANGE_JPEG, rotation,
                         int(stream.codec_context.color_primaries or 2), int(stream.codec_context.color_trc or 2))


@dataclass
class RGBFrame:
    """One decoded frame as HxWx3 RGB (uint8, or uint16 for deep video) with its source timestamp."""

    pixels: np.ndarray
    pts: int | None
    time_base: Fraction


def read_frames(path: str | os.PathLike, info: VideoInfo, on_corrupt=None) -> Iterator[RGBFrame]:
    """Decode every frame of the first video stream, in order, converted to RGB with the stream's matrix/range.

    A packet the decoder rejects is reported through on_corrupt(message) and skipped; decoding goes on.
    """
    fmt = "rgb48le" if info.deep else "rgb24"
    src_range = "JPEG" if info.full_range else "MPEG"
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as error:
                if on_corrupt:
                    on_corrupt(f"{path}: skipped a corrupt packet near pts {packet.pts} ({error})")
                continue
            for frame in frames:
                rgb = frame.reformat(format=fmt, src_colorspace=info.matrix, dst_colorspace=info.matrix,
                                     src_color_range=src_range, dst_color_range="JPEG")
                yield RGBFrame(rgb.to_ndarray(), frame.pts, frame.time_base)


@dataclass
class EncodeSettings:
    """Output video stream settings."""

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = None
    pix_fmt: str = "yuv420p"
    options: dict[str, str] | None = None


def available_encoders() -> list[str]:
    """Video encoders this PyAV build carries."""
    names = []
    for name in sorted(av.codecs_available):
        try:
            codec = av.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        if codec.type == "video":
            names.append(name)
    return names


class VideoWriter:
    """Writes RGB frames (and copied packets) to a temporary file, renamed to `path` on a clean close."""

    def __init__(self, path: str | os.PathLike, source: VideoInfo, width: int, height: int, settings: EncodeSettings,
                 copy_from: av.container.InputContainer | None = None, chapters: list[dict] | None = None) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")
        try:
            av.Codec(settings.codec, "w")
        except (av.error.FFmpegError, ValueError):
            raise VideoError(f"encoder {settings.codec!r} is not in this PyAV build; available: "
                             f"{', '.join(available_encoders())}") from None
        try:
            self.container = av.open(str(self.tmp), "w", format=_container_format(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoError(f"{self.path}: cannot create output ({error})") from None
        self.source = source
        rate = source.average_rate or Fraction(25)
        self.stream = self.container.add_stream(settings.codec, rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = settings.pix_fmt
        self.stream.time_base = source.time_base
        self.stream.codec_context.time_base = source.time_base  # else pts are rounded to 1/rate: VFR would be lost
        options = dict(settings.options or {})
        if settings.crf is not None and "crf" not in options:
            options["crf"] = str(settings.crf)
        if settings.preset and "preset" not in options:
            options["preset"] = settings.preset
        self.stream.options = options
        primaries, trc, matrix = TAGS[source.matrix]
        primaries = source.primaries if source.primaries != 2 else primaries  # the input's own tags win
        trc = source.transfer if source.transfer != 2 else trc
        context = self.stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace = primaries, trc, matrix
        context.color_range = RANGE_JPEG if source.full_range else RANGE_MPEG
        if source.rotation:
            self.stream.set_display_rotation(source.rotation)
        self.copied: dict[int, av.stream.Stream] = {}
        if copy_from is not None:
            for stream in copy_from.streams:
                if stream.type in COPIED_STREAM_TYPES:
                    out = self.container.add_stream_from_template(stream)
                    out.metadata.update(stream.metadata)
                    out.disposition = stream.disposition
                    self.copied[stream.index] = out
            self.container.metadata.update(copy_from.metadata)
            chapters = copy_from.chapters() if chapters is None else chapters
        if chapters:
            self.container.set_chapters(chapters)
        self.out_format = "rgb48le" if source.deep and _is_deep(settings.pix_fmt) else "rgb24"
        self.last_dts: int | None = None
        self.max_skew = round(DTS_SKEW_SECONDS / source.time_base)

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        """Encode one RGB frame with its source timestamp (uint16 pixels for 16-bit paths)."""
        if self.out_format == "rgb24" and pixels.dtype == np.uint16:
            pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=self.out_format)
        dst_range = "JPEG" if self.source.full_range else "MPEG"
        frame = frame.reformat(format=self.stream.pix_fmt, src_colorspace=self.source.matrix,
                               dst_colorspace=self.source.matrix, src_color_range="JPEG",
                               dst_color_range=dst_range)
        frame.pts = pts
        frame.time_base = self.source.time_base
        self.container.mux(self._checked(self.stream.encode(frame)))

    def _checked(self, packets: list[av.Packet]) -> list[av.Packet]:
        """Repair decode timestamps an encoder left uninitialised (libx265 on streams shorter than its lookahead).

        A dts must not exceed its pts, must increase, and stays within seconds of pts; one that breaks this is
        replaced by the smallest value that keeps the stream valid. Presentation timestamps are never touched.
        """
        for packet in packets:
            dts, pts = packet.dts, packet.pts
            broken = (dts is None or (pts is not None and (dts > pts or pts - dts > self.max_skew))
                      or (self.last_dts is not None and dts <= self.last_dts))
            if broken and pts is not None:
                packet.dts = pts if self.last_dts is None else min(pts, self.last_dts + 1)
            self.last_dts = packet.dts
        return packets

    def copy(self, packet: av.Packet, stream_index: int | None = None) -> None:
        """Remux an audio/subtitle packet of the input unchanged (flush packets without data are dropped).

        `stream_index` is the input stream's index, read when the packet was demuxed: a packet handed over from
        another thread may outlive its container, whose stream it can no longer name.
        """
        if packet.size == 0:
            return
        index = packet.stream.index if stream_index is None else stream_index
        if index not in self.copied:
            raise VideoError(f"{self.path}: a packet of input stream {index}, which is not being copied")
        packet.stream = self.copied[index]
        self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, finish the container and move it to its final name."""
        self.container.mux(self._checked(self.stream.encode()))
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop everything written so far (no file under the final name)."""
        try:
            self.container.close()
        except av.error.FFmpegError:
            pass
        self.tmp.unlink(missing_ok=True)


def _is_deep(pix_fmt: str) -> bool:
    return any(tag in pix_fmt for tag in ("10", "12", "16"))


def _container_format(path: Path) -> str | None:
    return {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".webm": "webm"}.get(path.suffix.lower())


def trim_chapters(chapters: list[dict], start: float, duration: float | None) -> list[dict]:
    """Chapters shifted to a trimmed range [start, start + duration) and clipped to it (empty ones dropped)."""
    kept = []
    for chapter in chapters:
        base = chapter["time_base"]
        first = max(Fraction(chapter["start"]) * base, Fraction(start))
        last = Fraction(chapter["end"]) * base
        if duration is not None:
            last = min(last, Fraction(start) + Fraction(duration))
        if last > first:
            kept.append(dict(chapter, start=round((first - Fraction(start)) / base),
                             end=round((last - Fraction(start)) / base)))
    return kept
