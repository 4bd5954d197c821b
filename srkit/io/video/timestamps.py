"""Timestamps: the repair of decoded frames' times, the pts window a trim selects, and the shifts a trim makes
to copied packets, the timecode and the chapters."""

from __future__ import annotations

import heapq
import re
from collections import deque
from fractions import Fraction
from typing import TYPE_CHECKING, cast

import av

from .probe import VideoInfo

if TYPE_CHECKING:
    from av.container.core import Chapter  # a type of PyAV's stubs only

REORDER_WINDOW = 16  # frames: H.264/HEVC reorder at most 16, so sorting this many puts any decoder's output in order


class Retimer:
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


def pts_window(
    info: VideoInfo, start: float | Fraction, duration: float | Fraction | None
) -> tuple[int | None, int | None]:
    """The video timestamps [first, end) that the range [start, start + duration) seconds selects (None: open)."""
    tb = info.time_base
    first = round(Fraction(start) / tb) if start else None
    end = round((Fraction(start) + Fraction(duration)) / tb) if duration is not None else None
    return first, end


def in_window(packet: av.Packet, start: float | Fraction, duration: float | Fraction | None) -> bool:
    """Whether a copied stream's packet lies in the trimmed range [start, start + duration)."""
    if packet.pts is None:
        return True
    seconds = packet.pts * packet.time_base
    if start and seconds < start:  # without a trim, priming packets (negative pts) are kept
        return False
    return duration is None or seconds < Fraction(start) + Fraction(duration)


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
    number = (
        (total_minutes * 60 + int(secs)) * fps
        + int(frames)
        - drop * (total_minutes - total_minutes // 10)
        + round(Fraction(seconds) * rate)
    )
    if drop:
        per_minute, per_ten = 60 * fps - drop, 600 * fps - 9 * drop
        tens, rest = divmod(number, per_ten)
        number += 9 * drop * tens + (drop * ((rest - drop) // per_minute) if rest > drop else 0)
    frames_part, secs_part = number % fps, number // fps
    return f"{secs_part // 3600 % 24:02d}:{secs_part // 60 % 60:02d}:{secs_part % 60:02d}{mark}{frames_part:02d}"


def trim_chapters(chapters: list[Chapter], start: float | Fraction, duration: float | Fraction | None) -> list[Chapter]:
    """Chapters shifted to a trimmed range [start, start + duration) and clipped to it (empty ones dropped)."""
    kept: list[Chapter] = []
    for chapter in chapters:
        base = cast(Fraction, chapter["time_base"])  # FFmpeg gives every chapter one
        first = max(Fraction(chapter["start"]) * base, Fraction(start))
        last = Fraction(chapter["end"]) * base
        if duration is not None:
            last = min(last, Fraction(start) + Fraction(duration))
        if last > first:
            kept.append(
                {
                    **chapter,
                    "start": round((first - Fraction(start)) / base),
                    "end": round((last - Fraction(start)) / base),
                }
            )
    return kept


def shift_packet(packet: av.Packet, start: float | Fraction) -> av.Packet:
    """A copied packet moved back by the trim start, so the output starts at 0 as the video does."""
    shift = round(Fraction(start) / packet.time_base)
    if packet.pts is not None:
        packet.pts -= shift
    if packet.dts is not None:
        packet.dts -= shift
    return packet
