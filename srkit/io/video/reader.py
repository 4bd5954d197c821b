"""Read one input for upscaling: RGB frames in presentation order with repaired timestamps, and the copied
streams' packets trimmed to the video's range.

`VideoReader` (a context manager) demuxes every stream once: video frames leave in presentation order with
increasing timestamps (timestamps.Retimer), optionally deinterlaced by FFmpeg's bwdif filter, converted to RGB
with the stream's own matrix (BT.601 / 709 / 2020) and range at the probed size; copied streams' packets pass
along unchanged, trimmed to the video's range. Reading starts at a keyframe at or before the trim start
(demux.demux_from).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.filter
import av.video.stream
import numpy as np

from .colour import TO_RGB_8BIT
from .demux import demux_from
from .probe import COPIED_STREAM_TYPES, VideoInfo, open_input
from .timestamps import Retimer, in_window, pts_window

TRUNCATION_FRAMES = 1.5  # a video ending this many frame durations early is truncated
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint={which}"  # one frame per frame: frame count and times kept


@dataclass
class RGBFrame:
    """One decoded frame as HxWx3 RGB (uint8, or uint16 for deep video) with its timestamp and duration."""

    pixels: np.ndarray
    pts: int | None
    time_base: Fraction
    duration: int | None = None


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
        self.times: deque[tuple[int | None, int]] = deque()

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

    Frames leave in presentation order with increasing timestamps (see Retimer), inside [start, start +
    duration) and at most `max_frames`; copied streams' packets in that window pass in demux order. A packet the
    decoder rejects is reported through on_warning and skipped. `deinterlace` is None, "interlaced" (frames
    flagged so) or "all". After iterating, `truncated()` says whether frames were missing at the end.
    """

    def __init__(
        self,
        info: VideoInfo,
        start: float | Fraction = 0,
        duration: float | Fraction | None = None,
        max_frames: int | None = None,
        deinterlace: str | None = None,
        copy: bool = True,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.info, self.start, self.duration, self.max_frames = info, start, duration, max_frames
        self.deinterlace, self.copy = deinterlace, copy
        self.on_warning = on_warning or (lambda message: None)
        self.container: av.container.InputContainer  # open within the `with` block
        self.frames = self.corrupt = 0
        self.retimer: Retimer | None = None
        self.end: int | None = None  # pts + duration of the last frame given out
        self.reached_end = self.stopped = False
        self.held: deque[av.Packet] = deque()  # copied packets waiting for the video to reach their time
        self.resized: set[tuple[int, int]] = set()  # frame sizes other than the probed one, already announced

    def __enter__(self) -> VideoReader:
        self.container = open_input(self.info.path)
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        info, container = self.info, self.container
        first, end = pts_window(info, self.start, self.duration)
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        step = round(1 / (info.average_rate * info.time_base)) if info.average_rate else 1
        stream_end = info.start_time + info.duration if info.duration is not None else None
        self.retimer = Retimer(step, None if stream_end is None else round(stream_end / info.time_base))
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
            if (end is not None and frame.pts is not None and frame.pts >= end) or (
                self.max_frames is not None and self.frames >= self.max_frames
            ):
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
            at = (
                f"{float(frame.pts * info.time_base - info.start_time):.3f} s into the video"
                if frame.pts is not None
                else "a frame"
            )
            self.on_warning(
                f"{info.path}: the picture changes size from {info.width}x{info.height} to "
                f"{frame.width}x{frame.height} at {at}; scaling those frames to {info.width}x"
                f"{info.height}, the size the output is made for"
            )
        rgb = frame.reformat(
            width=info.width,
            height=info.height,
            format="rgb48le" if info.deep else "rgb24",
            src_colorspace=info.matrix,
            dst_colorspace=info.matrix,
            src_color_range="JPEG" if info.full_range else "MPEG",
            dst_color_range="JPEG",
            interpolation=None if info.deep else TO_RGB_8BIT,
        )
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
        return (
            f"{info.path}: the video ends at {float(got_end):.3f} s but the file says {float(expected_end):.3f} s: "
            f"{self.frames} of about {expected} frames decoded (the file is truncated)"
        )


def read_frames(path: str | os.PathLike, info: VideoInfo, on_corrupt=None) -> Iterator[RGBFrame]:
    """Decode every frame of the first video stream in presentation order, as RGB with the stream's matrix/range."""
    with VideoReader(replace(info, path=Path(path)), copy=False, on_warning=on_corrupt) as reader:
        for _, frame in reader:
            yield frame
