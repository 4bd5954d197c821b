"""Packets without decoding: reading from a keyframe at or before a time (`demux_from`), the video's packet and
keyframe times (`scan_packets`, for the segment plan) and the copied streams' packets (`copied_packets`, for the
join of a segmented run)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container
import av.stream

from .probe import COPIED_STREAM_TYPES, VideoInfo, open_input, time_base
from .timestamps import in_window


def _starts_decoding(packet: av.Packet, first: int) -> bool:
    """Whether decoding from `packet` gives every frame from `first` on: a keyframe presented no later."""
    label = packet.pts if packet.pts is not None else packet.dts
    return packet.is_keyframe and label is not None and label <= first


def demux_from(
    container: av.container.InputContainer, wanted: list[av.stream.Stream], first: int | None
) -> Iterator[av.Packet]:
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
    back = max(1, round(1 / time_base(video)))
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


def copied_packets(
    container: av.container.InputContainer, start: float | Fraction = 0, duration: float | Fraction | None = None
) -> Iterator[tuple[int, av.Packet]]:
    """(input stream index, packet) for the audio and subtitle packets in [start, start + duration), in demux
    order, without decoding the video (the join of a segmented run copies them once from the source)."""
    wanted = [s for s in container.streams if s.type in COPIED_STREAM_TYPES]
    if not wanted:
        return
    video = container.streams.video[0]
    # from where the reader of an unsegmented run starts, so that both copy the same packets
    first = round(Fraction(start) / time_base(video)) if start else None
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
    with open_input(info.path) as container:
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
