"""The segment plan of a video: the requested range cut at keyframes about `--segment-seconds` apart.

It depends only on the input and the trim and segment options, so a resumed run finds the same segments. One
segment (the streamed case) when segmenting is off, the range is short, or the packets' timestamps are missing
or repeated.
"""

from __future__ import annotations

import bisect
from fractions import Fraction

from ..io.video.demux import PacketTimes, scan_packets
from ..io.video.probe import VideoInfo
from ..io.video.timestamps import pts_window
from .video_types import Segment, VideoOptions

SHORTEST_LAST = Fraction(1, 2)  # a last segment shorter than this share of --segment-seconds joins the one before


def whole_range(info: VideoInfo, options: VideoOptions) -> Segment:
    """The range the trim options select, as one segment (its frames: the container's count, 0 if unknown)."""
    start = Fraction(options.start)
    end = start + Fraction(options.duration) if options.duration is not None else None
    return Segment(start, end, info.frames or 0)


def plan_segments(info: VideoInfo, options: VideoOptions, times: PacketTimes | None = None) -> list[Segment]:
    """Cut the range the trim options select at keyframes about `options.segment_seconds` apart.

    One segment (the streaming pipeline's case) when segmenting is off, the range is short, or the packets'
    timestamps are missing or repeated (the reader must repair them, which needs the whole stream).
    """
    seconds = Fraction(str(options.segment_seconds))  # as typed: 0.8 is 4/5, not the float above it
    whole = [whole_range(info, options)]
    start, end = whole[0].start, whole[0].end
    length = (
        Fraction(options.duration)
        if options.duration is not None
        else info.duration - start
        if info.duration is not None
        else None
    )
    if seconds <= 0 or (length is not None and length <= seconds):
        return whole
    times = times or scan_packets(info)
    if not times.usable:
        return whole
    tb = info.time_base
    first, stop = pts_window(info, options.start, options.duration)  # as the reader selects frames
    inside = [pts for pts in times.frames if (first is None or pts >= first) and (stop is None or pts < stop)]
    if options.max_frames is not None and len(inside) > options.max_frames:
        end, inside = inside[options.max_frames] * tb, inside[: options.max_frames]
    if len(inside) < 2:
        return whole
    cuts, last = [], inside[0] * tb
    for key in times.keyframes:
        at = key * tb
        if end is not None and at >= end:
            break
        if at - last >= seconds:
            cuts.append(at)
            last = at
    finish = end if end is not None else inside[-1] * tb
    if cuts and finish - cuts[-1] < SHORTEST_LAST * seconds:
        cuts.pop()
    edges = [0, *(bisect.bisect_left(inside, cut / tb) for cut in cuts), len(inside)]
    return [
        Segment(low, high, last - first)
        for low, high, first, last in zip([start, *cuts], [*cuts, end], edges, edges[1:])
    ]
