"""Video decode and encode with PyAV: RGB frames in and out, colour-correct, timestamps repaired, other streams copied.

This is the only module that decodes or encodes video. `probe` reads a file once into a `VideoInfo` that is passed
along. `VideoReader` (a context manager) demuxes every stream once: video frames leave in presentation order with
increasing timestamps (the set of source times sorted over a reorder window, duplicates and backward steps moved
forward: what FFmpeg's best-effort timestamps aim at), optionally deinterlaced by FFmpeg's bwdif filter, converted to RGB
with the stream's own matrix (BT.601 / 709 / 2020) and range at the probed size; copied streams' packets pass
along unchanged, trimmed to the video's range. `demux_from` starts reading at a keyframe at or before a time, in
containers with an index or without. `plan_output` checks before any work that the output container can hold the
chosen codec, its options and the input's other streams (text subtitles it cannot hold are re-encoded to its own,
mov_text for MP4, or left out; attachments kept in MKV), and picks the container's natural codec and the deepest
pixel format the codec takes. `VideoWriter` (a context manager)
converts back with the same matrix and range, tags primaries, transfer, matrix, range and rotation, gives every
packet its frame's duration, and renames its temporary file only on a clean close; it can remux an encoded video
stream instead (the join of a segmented run). `scan_packets` reads the video's frame and keyframe times without
decoding (the segment plan); `copied_packets` demuxes only the streams a join copies.
"""

from __future__ import annotations

import heapq
import io
import os
import re
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
from av.subtitles.subtitle import SubtitleSet

from ..errors import SrkitError
from .atomic import discard, partial_path, publish
from .images import codes_8bit

# FFmpeg AVColorSpace values -> the swscale matrix PyAV's reformatter knows.
MATRICES = {1: "itu709", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# The matching AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace tags for the output stream.
TAGS = {"itu709": (1, 1, 1), "itu601": (5, 6, 5), "smpte170m": (6, 6, 6), "smpte240m": (7, 7, 7),
        "bt2020": (9, 14, 9)}
RANGE_MPEG, RANGE_JPEG = 1, 2  # AVColorRange: limited (TV) and full (PC)
HDR_TRANSFERS = {16: "PQ", 18: "HLG"}  # AVColorTransferCharacteristic values of HDR video
FIELD_ORDERS = {2: "tt", 3: "bb", 4: "tb", 5: "bt"}  # AVFieldOrder values of interlaced video
HD_HEIGHT = 720
DTS_SKEW_SECONDS = 10  # no real encoder delays decoding by more than this behind presentation
REORDER_WINDOW = 16  # frames: H.264/HEVC reorder at most 16, so sorting this many puts any decoder's output in order
TRUNCATION_FRAMES = 1.5  # a video ending this many frame durations early is truncated
COPIED_STREAM_TYPES = ("audio", "subtitle")
ATTACHING_CONTAINERS = {"matroska"}  # containers that hold attachments (fonts, cover files)
TIMECODE_TRACKS = {"mp4", "mov"}  # containers whose muxer writes a timecode track (tmcd) from the video's tag
TEXT_SUBTITLES = {"srt", "subrip", "ass", "ssa", "webvtt", "mov_text", "text"}  # decoders giving ASS events
CONTAINER_SUBTITLES = {"mp4": "mov_text", "mov": "mov_text"}  # the text subtitle codec of a container
CHROMA_DETAIL = {"444": 4, "422": 2, "440": 2, "420": 1, "411": 1, "410": 0}  # chroma samples per 4 pixels
CONTAINERS = {".mkv": "matroska", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}
NATURAL_CODECS = {"webm": "libvpx-vp9"}  # every other container: libx264
NATURAL_OPTIONS = {"libvpx-vp9": {"b": "0", "row-mt": "1"}}  # crf alone is constant quality only with b=0
TRIAL_SIZE = 64  # pixels: the picture an encoder is test-opened with to learn which options it takes
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint={which}"  # one frame per frame: frame count and times kept
# swscale's flags (measured on a real photo against the exact BT.709 formulas): its default 4:2:0 -> RGB path
# interpolates chroma in a way that leaves RGB about 1-1.5 codes dark; accurate rounding with full chroma
# interpolation is within 0.02. 16-bit RGB is unbiased with the defaults (and wrong with FULL_CHR_H_INT).
# RGB -> YUV is within 0.06 by default and 0.01 with accurate rounding.
_FLAGS = av.video.reformatter.Interpolation
TO_RGB_8BIT = _FLAGS.BILINEAR | _FLAGS.ACCURATE_RND | _FLAGS.FULL_CHR_H_INT
TO_YUV = _FLAGS.BILINEAR | _FLAGS.ACCURATE_RND

class VideoError(SrkitError):
    """A video srkit cannot read or write (no video stream, unsupported codec, corrupt container)."""


class OutputPlanError(VideoError):
    """The output cannot be made as asked (codec, pixel format, container, streams); found before any work."""

    exit_code = 2


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


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"{path}: cannot open as a video ({error})") from None


def _matrix(stream: av.video.stream.VideoStream) -> str:
    return MATRICES.get(int(stream.codec_context.colorspace or 2), "itu709" if stream.height >= HD_HEIGHT
                        else "itu601")


def _stream_end(stream: av.stream.Stream) -> Fraction | None:
    """Where the video stream ends, in seconds: start + the container's duration field, else Matroska's DURATION
    tag (which FFmpeg writes as the end timestamp); None if the container does not say."""
    if stream.duration:
        return (stream.duration + (stream.start_time or 0)) * stream.time_base
    tag = next((value for key, value in stream.metadata.items() if key.upper().startswith("DURATION")), None)
    found = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag or "")
    if not found:
        return None
    hours, minutes, seconds = found.groups()
    return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the first video stream of `path` and the streams to copy; raises VideoError if there is none."""
    path = Path(path)
    with _open(path) as container:
        if all(s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video):
            cover = " (only a cover picture)" if container.streams.video else ""
            raise VideoError(f"{path}: has no video stream{cover}")
        stream = container.streams.video[0]
        if stream.codec_context.width == 0:
            raise VideoError(f"{path}: the video stream has no decodable picture (codec {stream.codec_context.name})")
        start = stream.start_time * stream.time_base if stream.start_time is not None else Fraction(0)
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
        streams = tuple(StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else s.mimetype)
                        for s in container.streams if s.type in (*COPIED_STREAM_TYPES, "attachment"))
        timecode = next((found for found in (*(s.metadata.get("timecode") for s in container.streams),
                                             container.metadata.get("timecode")) if found), None)
        return VideoInfo(path, stream.codec_context.width, stream.codec_context.height, frames,
                         stream.average_rate, stream.time_base, stream.codec_context.name,
                         fmt.name if fmt else "unknown", bits > 8, _matrix(stream),
                         int(stream.codec_context.color_range or 0) == RANGE_JPEG, rotation,
                         int(stream.codec_context.color_primaries or 2), int(stream.codec_context.color_trc or 2),
                         bits, field_order, duration, start, streams, timecode)


@dataclass
class RGBFrame:
    """One decoded frame as HxWx3 RGB (uint8, or uint16 for deep video) with its timestamp and duration."""

    pixels: np.ndarray
    pts: int | None
    time_base: Fraction
    duration: int | None = None


class _Retimer:
    """Decoded frames in decoder (presentation) order, relabelled with the sorted set of their timestamps.

    Files whose packets carry pts == dts decode to frames labelled in decode order; sorting the labels over
    REORDER_WINDOW frames restores presentation times (FFmpeg's best-effort timestamps do the same from dts).
    A label not above the previous one is moved one frame duration past it. Durations become the gap to the
    next frame; the last frame lasts until the stream's end where the container says it (`end`, a pts) and that
    lies within two frame durations, else keeps its own. (A packet's own duration is no presentation time in
    files with B-frames: MP4 stores decode-order gaps.)
    """

    def __init__(self, step: int, end: int | None = None) -> None:
        self.step = max(1, step)
        self.end = end
        self.frames: deque[av.VideoFrame] = deque()
        self.times: list[int] = []
        self.last: int | None = None
        self.highest: int | None = None
        self.repaired = 0

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Take one decoded frame; returns those that are now ready."""
        label = frame.pts if frame.pts is not None else frame.dts
        if label is None:
            label = 0 if self.highest is None else self.highest + self.step
        self.highest = label if self.highest is None else max(self.highest, label)
        self.frames.append(frame)
        heapq.heappush(self.times, label)
        return [self._pop() for _ in range(len(self.frames) - REORDER_WINDOW)]

    def flush(self) -> list[av.VideoFrame]:
        """The frames still held, at the end of the stream."""
        return [self._pop() for _ in range(len(self.frames))]

    def _pop(self) -> av.VideoFrame:
        frame = self.frames.popleft()
        time = heapq.heappop(self.times)
        if self.last is not None and time <= self.last:
            time = self.last + self.step
        if time != frame.pts:
            self.repaired += 1
        frame.pts = self.last = time
        own = frame.duration or self.step
        if self.times and self.times[0] > time:
            frame.duration = self.times[0] - time
        elif self.times:
            frame.duration = self.step
        elif self.end is not None and 0 < self.end - time <= 2 * own:
            frame.duration = self.end - time
        else:
            frame.duration = own
        return frame


class _Deinterlacer:
    """FFmpeg's bwdif through PyAV's filter graph, one output frame per input frame (send_frame mode)."""

    def __init__(self, stream: av.video.stream.VideoStream, every_frame: bool) -> None:
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(template=stream)
        name, _, arguments = DEINTERLACE.format(which="all" if every_frame else "interlaced").partition("=")
        bwdif = self.graph.add(name, arguments)
        sink = self.graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        self.graph.configure()
        self.times: deque[tuple[int, int | None]] = deque()

    def push(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Filter one frame (None: flush); returns the frames that came out, with their input's pts/duration."""
        if frame is not None:
            self.times.append((frame.pts, frame.duration))
        self.graph.vpush(frame)
        out = []
        while True:
            try:
                result = self.graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            result.pts, result.duration = self.times.popleft()
            out.append(result)


class VideoReader:
    """Context manager over one input: iterate it for ("frame", RGBFrame) and ("packet", (index, packet)) items.

    Frames leave in presentation order with increasing timestamps (see _Retimer), inside [start, start +
    duration) and at most `max_frames`; copied streams' packets in that window pass in demux order. A packet the
    decoder rejects is reported through on_warning and skipped. `deinterlace` is None, "interlaced" (frames
    flagged so) or "all". After iterating, `truncated()` says whether frames were missing at the end.
    """

    def __init__(self, info: VideoInfo, start: float = 0.0, duration: float | None = None,
                 max_frames: int | None = None, deinterlace: str | None = None, copy: bool = True,
                 on_warning: Callable[[str], None] | None = None) -> None:
        self.info, self.start, self.duration, self.max_frames = info, start, duration, max_frames
        self.deinterlace, self.copy = deinterlace, copy
        self.on_warning = on_warning or (lambda message: None)
        self.container: av.container.InputContainer | None = None
        self.frames = self.corrupt = 0
        self.retimer: _Retimer | None = None
        self.end: int | None = None  # pts + duration of the last frame given out
        self.reached_end = self.stopped = False
        self.held: deque[av.Packet] = deque()  # copied packets waiting for the video to reach their time
        self.resized: set[tuple[int, int]] = set()  # frame sizes other than the probed one, already announced

    def __enter__(self) -> VideoReader:
        self.container = _open(self.info.path)
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    def __iter__(self) -> Iterator[tuple[str, object]]:
        info, container = self.info, self.container
        first, end = pts_window(info, self.start, self.duration)
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        step = round(1 / (info.average_rate * info.time_base)) if info.average_rate else 1
        stream_end = info.start_time + info.duration if info.duration is not None else None
        self.retimer = _Retimer(step, None if stream_end is None else round(stream_end / info.time_base))
        deinterlacer = _Deinterlacer(video, self.deinterlace == "all") if self.deinterlace else None
        wanted = [video] + ([s for s in container.streams if s.type in COPIED_STREAM_TYPES] if self.copy else [])
        for packet in demux_from(container, wanted, first):
            if packet.stream.type != "video":
                if in_window(packet, self.start, self.duration):
                    self.held.append(packet)
                    yield from self._copied()
                continue
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError as error:
                self.corrupt += 1
                self.on_warning(f"{info.path}: skipped a corrupt video packet near pts {packet.pts} ({error})")
                continue
            ready = [out for frame in decoded for out in self.retimer.push(frame)]
            if deinterlacer:
                ready = [out for frame in ready for out in deinterlacer.push(frame)]
            yield from self._emit(ready, first, end)
            yield from self._copied()
            if self.stopped:
                return
        tail = self.retimer.flush()
        if deinterlacer:
            tail = [out for frame in tail for out in deinterlacer.push(frame)] + deinterlacer.push(None)
        yield from self._emit(tail, first, end)
        self.reached_end = not self.stopped
        yield from self._copied()

    @property
    def repaired(self) -> int:
        """How many frames got a timestamp other than their own."""
        return self.retimer.repaired if self.retimer else 0

    def _copied(self) -> Iterator[tuple[str, tuple[int, av.Packet]]]:
        """Copied packets, in demux order, once they are known to lie in the video's range.

        With a frame limit the range ends where the last frame given out ends, known only when the limit is hit:
        until then packets wait for the video to pass their time; at the limit those after its end are dropped,
        so every stream is trimmed to the video's range as with a duration.
        """
        if self.max_frames is None or self.reached_end:
            ready, self.held = list(self.held), deque()
        elif self.stopped:
            ready = [packet for packet in self.held if self._before_video_end(packet)]
            self.held.clear()
        else:
            ready = []
            while self.held and self._before_video_end(self.held[0]):
                ready.append(self.held.popleft())
        for packet in ready:
            yield "packet", (packet.stream.index, packet)

    def _before_video_end(self, packet: av.Packet) -> bool:
        """Whether a copied packet starts before the end of the last frame given out."""
        if packet.pts is None:
            return True
        return self.end is not None and packet.pts * packet.time_base < self.end * self.info.time_base

    def _emit(self, frames: list[av.VideoFrame], first: int | None, end: int | None) -> Iterator[tuple[str, RGBFrame]]:
        """RGB items for the frames inside the window; sets `stopped` once past its end or the frame limit."""
        for frame in frames:
            if ((end is not None and frame.pts is not None and frame.pts >= end)
                    or (self.max_frames is not None and self.frames >= self.max_frames)):
                self.stopped = True
                return
            if first is None or frame.pts is None or frame.pts >= first:
                yield "frame", self._rgb(frame)

    def _rgb(self, frame: av.VideoFrame) -> RGBFrame:
        """The frame as RGB at the probed size: a stream whose pictures change size mid-way is scaled to the size
        the output is made for (said once per new size), never cropped."""
        info = self.info
        size = (frame.width, frame.height)
        if size != (info.width, info.height) and size not in self.resized:
            self.resized.add(size)
            at = (f"{float(frame.pts * info.time_base - info.start_time):.3f} s into the video"
                  if frame.pts is not None else "a frame")
            self.on_warning(f"{info.path}: the picture changes size from {info.width}x{info.height} to "
                            f"{frame.width}x{frame.height} at {at}; scaling those frames to {info.width}x"
                            f"{info.height}, the size the output is made for")
        rgb = frame.reformat(width=info.width, height=info.height, format="rgb48le" if info.deep else "rgb24",
                             src_colorspace=info.matrix, dst_colorspace=info.matrix,
                             src_color_range="JPEG" if info.full_range else "MPEG", dst_color_range="JPEG",
                             interpolation=None if info.deep else TO_RGB_8BIT)
        self.frames += 1
        if frame.pts is not None:
            self.end = frame.pts + (frame.duration or 0)
        return RGBFrame(rgb.to_ndarray(), frame.pts, info.time_base, frame.duration)

    def truncated(self) -> str | None:
        """After reading to the end: a line saying how many frames are missing, or None if the video is whole."""
        info = self.info
        if not self.reached_end or info.duration is None or self.end is None:
            return None
        expected_end = info.start_time + info.duration
        got_end = self.end * info.time_base
        frame_seconds = 1 / info.average_rate if info.average_rate else Fraction(1, 25)
        if got_end >= expected_end - TRUNCATION_FRAMES * frame_seconds:
            return None
        expected = round((expected_end - max(info.start_time, Fraction(self.start))) / frame_seconds)
        return (f"{info.path}: the video ends at {float(got_end):.3f} s but the file says {float(expected_end):.3f} s: "
                f"{self.frames} of about {expected} frames decoded (the file is truncated)")


def pts_window(info: VideoInfo, start: float | Fraction, duration: float | Fraction | None
               ) -> tuple[int | None, int | None]:
    """The video timestamps [first, end) that the range [start, start + duration) seconds selects (None: open)."""
    tb = info.time_base
    first = round(Fraction(start) / tb) if start else None
    end = round((Fraction(start) + Fraction(duration)) / tb) if duration is not None else None
    return first, end


def in_window(packet: av.Packet, start: float, duration: float | None) -> bool:
    """Whether a copied stream's packet lies in the trimmed range [start, start + duration)."""
    if packet.pts is None:
        return True
    seconds = packet.pts * packet.time_base
    if start and seconds < start:  # without a trim, priming packets (negative pts) are kept
        return False
    return duration is None or seconds < Fraction(start) + Fraction(duration)


def _starts_decoding(packet: av.Packet, first: int) -> bool:
    """Whether decoding from `packet` gives every frame from `first` on: a keyframe presented no later."""
    label = packet.pts if packet.pts is not None else packet.dts
    return packet.is_keyframe and label is not None and label <= first


def demux_from(container: av.container.InputContainer, wanted: list[av.stream.Stream],
               first: int | None) -> Iterator[av.Packet]:
    """Packets of `wanted` (which holds the first video stream) from a video keyframe at or before pts `first`.

    Seeking to a time lands on a keyframe in indexed containers (MP4, MKV), but in MPEG program and transport
    streams it lands on whichever packet has a timestamp near it, often inside a GOP: the decoder then drops
    every frame up to the next keyframe. So the first video packet after a seek is checked, and the seek goes
    back further (one second, then twice as far each time, at worst to the start) until decoding starts at a
    keyframe presented no later than `first`.
    """
    if first is None:
        yield from container.demux(*wanted)
        return
    video = container.streams.video[0]
    back = max(1, round(1 / video.time_base))
    lowest = video.start_time if video.start_time is not None else 0
    target = first
    while True:
        container.seek(target, stream=video, backward=True)
        packets = container.demux(*wanted)
        held = []
        for packet in packets:
            held.append(packet)
            if packet.stream.index == video.index and packet.size:
                break
        if target <= lowest or not held or _starts_decoding(held[-1], first):
            break
        target, back = max(lowest, target - back), back * 2
    yield from held
    yield from packets


def copied_packets(container: av.container.InputContainer, start: float = 0.0,
                   duration: float | None = None) -> Iterator[tuple[int, av.Packet]]:
    """(input stream index, packet) for the audio and subtitle packets in [start, start + duration), in demux
    order, without decoding the video (the join of a segmented run copies them once from the source)."""
    wanted = [s for s in container.streams if s.type in COPIED_STREAM_TYPES]
    if not wanted:
        return
    video = container.streams.video[0]
    # from where the reader of an unsegmented run starts, so that both copy the same packets
    first = round(Fraction(start) / video.time_base) if start else None
    for packet in demux_from(container, [video, *wanted] if first is not None else wanted, first):
        if packet.stream.type != "video" and packet.size and in_window(packet, start, duration):
            yield packet.stream.index, packet


@dataclass(frozen=True)
class PacketTimes:
    """The video stream's packet timestamps, read without decoding: every frame's and the keyframes'."""

    frames: tuple[int, ...]
    """Presentation timestamps of every video packet, sorted (in the stream's time base)."""
    keyframes: tuple[int, ...]
    """Presentation timestamps of the keyframes (where decoding can start), sorted."""
    usable: bool
    """False when some packet has no timestamp or two share one: the times need the reader's repair."""


def scan_packets(info: VideoInfo) -> PacketTimes:
    """Demux the video stream of `info.path` once (no decoding) and collect its frame and keyframe timestamps."""
    frames, keyframes, usable = [], [], True
    with _open(info.path) as container:
        for packet in container.demux(container.streams.video[0]):
            if not packet.size:
                continue
            if packet.pts is None:
                usable = False
                continue
            frames.append(packet.pts)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
    frames.sort()
    usable = usable and all(a < b for a, b in zip(frames, frames[1:]))
    return PacketTimes(tuple(frames), tuple(sorted(keyframes)), usable)


def read_frames(path: str | os.PathLike, info: VideoInfo, on_corrupt=None) -> Iterator[RGBFrame]:
    """Decode every frame of the first video stream in presentation order, as RGB with the stream's matrix/range."""
    with VideoReader(replace(info, path=Path(path)), copy=False, on_warning=on_corrupt) as reader:
        for _, frame in reader:
            yield frame


@dataclass
class EncodeSettings:
    """Output video stream settings (codec and pix_fmt None: chosen by plan_output)."""

    codec: str | None = None
    crf: int | None = 18
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict[str, str] | None = None


@dataclass
class OutputPlan:
    """What the output will hold: resolved encode settings, the input streams copied, lines to warn with."""

    settings: EncodeSettings
    copied: tuple[int, ...]
    warnings: list[str] = field(default_factory=list)
    converted: dict[int, str] = field(default_factory=dict)
    """Text subtitle streams re-encoded to the container's own subtitle codec: input index -> encoder."""
    attached: tuple[int, ...] = ()
    """Attachment streams of the input, embedded in the output's header."""


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


def _container_format(path: Path) -> str:
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise OutputPlanError(f"{path}: srkit writes video as {', '.join(sorted(CONTAINERS))}; "
                         "choose one of those extensions for -o") from None


def _pixel_format(info: VideoInfo, codec: av.Codec) -> str:
    """The input's chroma and bit depth where the codec takes them, else the nearest it does (8-bit 4:2:0 last)."""
    offered = {fmt.name for fmt in codec.video_formats or ()}
    depths = [""] if not info.deep else (["12le", "10le", ""] if info.bits >= 12 else ["10le", ""])
    for depth in depths:
        for chroma in dict.fromkeys([info.chroma, "420"]):
            if f"yuv{chroma}p{depth}" in offered:
                return f"yuv{chroma}p{depth}"
    return "yuv420p" if "yuv420p" in offered or not offered else sorted(offered)[0]


def _reductions(info: VideoInfo, pix_fmt: str) -> list[str]:
    """What an output in `pix_fmt` loses of the input: bit depth, HDR transfer, chroma resolution."""
    depth = re.search(r"p(\d+)(le|be)?$", pix_fmt)
    bits = int(depth.group(1)) if depth else 8
    chroma = re.search(r"4[0-4][0-4]", pix_fmt)
    chroma = chroma.group(0) if chroma else "444"
    reduced = []
    if bits < info.bits:
        reduced.append(f"{info.bits}-bit to {bits}-bit")
    if info.transfer in HDR_TRANSFERS and bits < 10:
        reduced.append(f"HDR ({HDR_TRANSFERS[info.transfer]}) to 8 bits")
    if CHROMA_DETAIL.get(chroma, 0) < CHROMA_DETAIL.get(info.chroma, 0):
        reduced.append(f"chroma {info.chroma} to {chroma}")
    return reduced


def plan_output(target: str | os.PathLike, info: VideoInfo, settings: EncodeSettings) -> OutputPlan:
    """Check before any work that `target` can hold the video and the input's streams; raises VideoError if not."""
    target = Path(target)
    fmt = _container_format(target)
    name = settings.codec or NATURAL_CODECS.get(fmt, "libx264")
    try:
        codec = av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        raise OutputPlanError(f"encoder {name!r} is not in this PyAV build; available: "
                         f"{', '.join(available_encoders())}") from None
    if codec.type != "video":
        raise OutputPlanError(f"--codec {name}: is a {codec.type} encoder; choose a video encoder")
    with av.open(io.BytesIO(), "w", format=fmt) as container:
        supported = container.supported_codecs
    suffix = target.suffix.lower()
    if name not in supported:
        raise OutputPlanError(f"{target}: a {suffix} file cannot hold {name} video; choose --codec "
                         f"{NATURAL_CODECS.get(fmt, 'libx264')} or an .mkv output")
    pix_fmt = settings.pix_fmt or _pixel_format(info, codec)
    offered = {f.name for f in codec.video_formats or ()}
    if offered and pix_fmt not in offered:
        raise OutputPlanError(f"--pix-fmt {pix_fmt}: {name} does not take it; it takes {', '.join(sorted(offered))}")
    _check_encoder_options(name, pix_fmt, settings.options or {})
    warnings, copied, converted, attached = [], [], {}, []
    for stream in info.streams:
        if stream.type == "attachment" and fmt in ATTACHING_CONTAINERS:
            attached.append(stream.index)
        elif stream.type == "attachment":
            warnings.append(f"{info.path}: leaving out attachment #{stream.index} ({stream.codec}), which a "
                            f"{suffix} file cannot hold; write .mkv to keep it")
        elif stream.codec in supported:
            copied.append(stream.index)
        elif stream.type == "subtitle" and stream.codec in TEXT_SUBTITLES and fmt in CONTAINER_SUBTITLES:
            converted[stream.index] = CONTAINER_SUBTITLES[fmt]
            warnings.append(f"{info.path}: subtitle stream #{stream.index} ({stream.codec}) becomes "
                            f"{CONTAINER_SUBTITLES[fmt]}, the text subtitles a {suffix} file holds")
        elif stream.type == "subtitle":
            warnings.append(f"{info.path}: leaving out subtitle stream #{stream.index} ({stream.codec}), which a "
                            f"{suffix} file cannot hold; write .mkv to keep it")
        else:
            raise OutputPlanError(f"{target}: a {suffix} file cannot hold {stream.type} stream #{stream.index} "
                             f"({stream.codec}) of {info.path}, which is copied unchanged; write .mkv instead")
    if info.timecode and fmt not in TIMECODE_TRACKS:
        warnings.append(f"{info.path}: timecode {info.timecode} is kept as a tag of the video stream, as a "
                        f"{suffix} file has no timecode track; write .mp4 or .mov to keep the track")
    reduced = _reductions(info, pix_fmt)
    if reduced:
        warnings.append(f"{target}: {pix_fmt} output reduces {', '.join(reduced)} ({info.pix_fmt} input); "
                        "pass --pix-fmt (and a --codec that takes it) to keep them")
    options = {**NATURAL_OPTIONS.get(name, {}), **(settings.options or {})}
    return OutputPlan(replace(settings, codec=name, pix_fmt=pix_fmt, options=options), tuple(copied), warnings,
                      converted, tuple(attached))


def _trial_open(name: str, pix_fmt: str, options: dict[str, str]) -> dict[str, str]:
    """Open encoder `name` on a small picture with `options`; returns the options it did not take."""
    context = av.CodecContext.create(name, "w")
    context.width = context.height = TRIAL_SIZE
    context.pix_fmt = pix_fmt
    context.time_base = Fraction(1, 25)
    context.options = dict(options)
    context.open()
    return dict(context.options or {})


def _check_encoder_options(name: str, pix_fmt: str, options: dict[str, str]) -> None:
    """Raise OutputPlanError if encoder `name` does not take or refuses an --encoder-opt (FFmpeg would otherwise
    drop an unknown option without a word)."""
    if not options:
        return
    given = " ".join(f"--encoder-opt {key}={value}" for key, value in options.items())
    try:
        untaken = _trial_open(name, pix_fmt, options)
    except av.error.FFmpegError as error:
        try:
            _trial_open(name, pix_fmt, {})
        except av.error.FFmpegError:
            return  # the encoder does not open on the trial picture at all: the options are not to blame
        raise OutputPlanError(f"{given}: {name} refuses these values ({error.strerror}); check them against "
                              f"`ffmpeg -h encoder={name}`") from None
    if untaken:
        names = ", ".join(f"{key}={value}" for key, value in untaken.items())
        raise OutputPlanError(f"--encoder-opt {names}: {name} has no such option; check the name against "
                              f"`ffmpeg -h encoder={name}`")


class VideoWriter:
    """Context manager writing RGB frames (and copied packets) to a partial file, published as `path` when the
    block ends cleanly (an existing file replaced only with `overwrite`: io.atomic) and removed when it raises.

    With `video_from` (a stream of an already encoded file) the video is remuxed, packet by packet through
    `remux`, instead of encoded: the join of a segmented run. `start` is where in the source the output begins
    (the trim): the source's timecode moves with it. Files are written bit-exact (no random container
    UIDs), so the same packets always give the same bytes.
    """

    def __init__(self, path: str | os.PathLike, source: VideoInfo, width: int, height: int,
                 settings: EncodeSettings | OutputPlan, copy_from: av.container.InputContainer | None = None,
                 chapters: list[dict] | None = None, video_from: av.stream.Stream | None = None,
                 overwrite: bool = False, start: float | Fraction = 0.0) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        plan = settings if isinstance(settings, OutputPlan) else plan_output(self.path, source, settings)
        settings = plan.settings
        self.tmp = partial_path(self.path)
        try:
            self.container = av.open(str(self.tmp), "w", format=_container_format(self.path),
                                     container_options={"fflags": "+bitexact"})
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoError(f"{self.path}: cannot create output ({error})") from None
        self.source = source
        self.encoding = video_from is None
        if self.encoding:
            self.stream = self._encoder(settings, width, height)
        else:
            self.stream = self.container.add_stream_from_template(video_from)
            self.stream.time_base = source.time_base
        if source.rotation:
            self.stream.set_display_rotation(source.rotation)
        self.copied: dict[int, av.stream.Stream] = {}
        self.decoders: dict[int, av.codec.context.CodecContext] = {}
        if copy_from is not None:
            for stream in copy_from.streams:
                if stream.index in plan.copied:
                    out = self.container.add_stream_from_template(stream)
                    out.metadata.update(stream.metadata)
                    out.disposition = stream.disposition
                    self.copied[stream.index] = out
                elif stream.index in plan.converted:
                    self.copied[stream.index] = self._text_subtitles(stream, plan.converted[stream.index])
                elif stream.index in plan.attached:
                    self.container.add_attachment(stream.name, stream.mimetype, bytes(stream.data))
            self.container.metadata.update(copy_from.metadata)
            if source.timecode:
                self.container.metadata.pop("timecode", None)  # the video stream's tag is the one kept
                self.stream.metadata["timecode"] = shift_timecode(source.timecode, source.average_rate, start)
                if source.average_rate:  # the timecode track's rate (a remuxed stream has none of its own)
                    self.stream.codec_context.framerate = source.average_rate
            chapters = copy_from.chapters() if chapters is None else chapters
        if chapters:
            self.container.set_chapters(chapters)
        self.out_format = "rgb48le" if source.deep and _is_deep(settings.pix_fmt) else "rgb24"
        self.last_dts: int | None = None
        self.max_skew = round(DTS_SKEW_SECONDS / source.time_base)
        self.durations: dict[int, int] = {}
        self.busy = threading.Lock()  # held while encoding or muxing

    def _encoder(self, settings: EncodeSettings, width: int, height: int) -> av.video.stream.VideoStream:
        """The output video stream, encoding with `settings` and tagged with the input's colour."""
        source = self.source
        stream = self.container.add_stream(settings.codec, rate=source.average_rate or Fraction(25))
        stream.width, stream.height = width, height
        stream.pix_fmt = settings.pix_fmt
        stream.time_base = source.time_base
        stream.codec_context.time_base = source.time_base  # else pts are rounded to 1/rate: VFR would be lost
        options = dict(settings.options or {})
        if settings.crf is not None and "crf" not in options:
            options["crf"] = str(settings.crf)
        if settings.preset and "preset" not in options:
            options["preset"] = settings.preset
        stream.options = options
        primaries, trc, matrix = TAGS[source.matrix]
        primaries = source.primaries if source.primaries != 2 else primaries  # the input's own tags win
        trc = source.transfer if source.transfer != 2 else trc
        context = stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace = primaries, trc, matrix
        context.color_range = RANGE_JPEG if source.full_range else RANGE_MPEG
        return stream

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, pixels: np.ndarray, pts: int | None, duration: int | None = None) -> None:
        """Encode one RGB frame with its timestamp and duration (uint16 pixels for 16-bit paths)."""
        with self.busy:
            self._write(pixels, pts, duration)

    def _write(self, pixels: np.ndarray, pts: int | None, duration: int | None) -> None:
        if self.out_format == "rgb24" and pixels.dtype == np.uint16:
            pixels = codes_8bit(pixels)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=self.out_format)
        dst_range = "JPEG" if self.source.full_range else "MPEG"
        frame = frame.reformat(format=self.stream.pix_fmt, src_colorspace=self.source.matrix,
                               dst_colorspace=self.source.matrix, src_color_range="JPEG",
                               dst_color_range=dst_range, interpolation=TO_YUV)
        frame.pts = pts
        frame.time_base = self.source.time_base
        if duration and pts is not None:
            frame.duration = duration
            self.durations[pts] = duration
        self.container.mux(self._checked(self.stream.encode(frame)))

    def _checked(self, packets: list[av.Packet]) -> list[av.Packet]:
        """Give each packet its frame's duration and a valid decode timestamp.

        A dts must not exceed its pts, must increase, and stays within seconds of pts; one that breaks this (libx265
        leaves them uninitialised on streams shorter than its lookahead) is replaced by the smallest value that keeps
        the stream valid. Presentation timestamps are never touched.
        """
        for packet in packets:
            dts, pts = packet.dts, packet.pts
            if pts in self.durations:
                packet.duration = self.durations.pop(pts)
            broken = (dts is None or (pts is not None and (dts > pts or pts - dts > self.max_skew))
                      or (self.last_dts is not None and dts <= self.last_dts))
            if broken and pts is not None:
                packet.dts = pts if self.last_dts is None else min(pts, self.last_dts + 1)
            self.last_dts = packet.dts
        return packets

    def remux(self, packet: av.Packet) -> None:
        """Write one already encoded video packet (of the `video_from` stream's codec) unchanged."""
        if packet.size == 0:
            return
        packet.stream = self.stream
        with self.busy:
            self.container.mux(self._checked([packet]))

    def copy(self, packet: av.Packet, stream_index: int | None = None) -> None:
        """Remux an audio/subtitle packet of the input unchanged (flush packets without data are dropped).

        `stream_index` is the input stream's index, read when the packet was demuxed: a packet handed over from
        another thread may outlive its container, whose stream it can no longer name. Packets of streams the
        output leaves out are dropped.
        """
        if packet.size == 0:
            return
        index = packet.stream.index if stream_index is None else stream_index
        if index in self.decoders:
            packet = self._converted(packet, index)
        if packet is not None and index in self.copied:
            packet.stream = self.copied[index]
            with self.busy:
                self.container.mux(packet)

    def _text_subtitles(self, source: av.stream.Stream, encoder: str) -> av.stream.Stream:
        """An output stream re-encoding the text subtitles of `source` with `encoder` (their ASS form kept)."""
        decoder = source.codec_context
        decoder.open()  # the decoder makes the ASS header the encoder needs
        out = self.container.add_stream(encoder)
        out.time_base = out.codec_context.time_base = source.time_base
        out.codec_context.subtitle_header = decoder.subtitle_header
        out.metadata.update(source.metadata)
        out.disposition = source.disposition
        self.decoders[source.index] = decoder
        return out

    def _converted(self, packet: av.Packet, index: int) -> av.Packet | None:
        """One text subtitle packet decoded to its ASS events and encoded for the output stream (None: empty)."""
        encoder = self.copied[index].codec_context
        events = b"".join(rect.ass for rect in self.decoders[index].decode(packet))
        if not events:
            return None
        made = encoder.encode_subtitle(SubtitleSet.create(events, 0, packet.duration or 0, packet.pts or 0))
        made.pts, made.dts, made.duration, made.time_base = packet.pts, packet.pts, packet.duration, packet.time_base
        return made

    def close(self) -> None:
        """Flush the encoder, finish the container and move it to its final name."""
        try:
            if self.encoding:
                self.container.mux(self._checked(self.stream.encode()))
            self.container.close()
        except av.error.FFmpegError as error:
            self.abort()
            raise VideoError(f"{self.path}: the encoder or muxer failed while finishing ({error})") from None
        try:
            publish(self.tmp, self.path, self.overwrite)
        finally:
            discard(self.tmp)

    def abort(self) -> None:
        """Drop everything written so far (no file under the final name).

        A worker thread still inside an encode call (one that outlived the run's bounded join) keeps the
        container: it is not closed under that thread's feet, only its file is removed.
        """
        if self.busy.acquire(timeout=0):
            try:
                self.container.close()
            except (av.error.FFmpegError, ValueError):
                pass
            finally:
                self.busy.release()
        discard(self.tmp)


def _is_deep(pix_fmt: str) -> bool:
    return any(tag in pix_fmt for tag in ("10", "12", "16"))


def shift_timecode(timecode: str, rate: Fraction | None, seconds: float | Fraction) -> str:
    """SMPTE timecode `timecode` moved `seconds` later at `rate` frames per second (drop-frame when written with
    ';' before the frames, as for 29.97 and 59.94 fps)."""
    found = re.fullmatch(r"(\d+):(\d+):(\d+)([:;.,])(\d+)", timecode)
    if not seconds or not found or not rate:
        return timecode
    hours, minutes, secs, mark, frames = found.groups()
    fps = round(rate)
    drop = fps // 15 if mark in ";," else 0  # frame numbers skipped each minute but every tenth
    total_minutes = int(hours) * 60 + int(minutes)
    number = ((total_minutes * 60 + int(secs)) * fps + int(frames) - drop * (total_minutes - total_minutes // 10)
              + round(Fraction(seconds) * rate))
    if drop:
        per_minute, per_ten = 60 * fps - drop, 600 * fps - 9 * drop
        tens, rest = divmod(number, per_ten)
        number += 9 * drop * tens + (drop * ((rest - drop) // per_minute) if rest > drop else 0)
    frames_part, secs_part = number % fps, number // fps
    return (f"{secs_part // 3600 % 24:02d}:{secs_part // 60 % 60:02d}:{secs_part % 60:02d}{mark}"
            f"{frames_part:02d}")


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
