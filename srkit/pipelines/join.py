"""The join of a segmented run: the segments' video packets remuxed, without re-encoding, with the source's
audio, subtitles, chapters and metadata into one file, interleaved by time."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from ..io.video.demux import copied_packets
from ..io.video.errors import VideoError
from ..io.video.output import OutputPlan
from ..io.video.probe import VideoInfo
from ..io.video.timestamps import shift_packet, trim_chapters
from ..io.video.writer import VideoWriter


def _segment_packets(files: list[Path]) -> Iterator[tuple[None, av.Packet]]:
    """The segments' video packets, in order."""
    for file in files:
        with av.open(str(file)) as container:
            for packet in container.demux(container.streams.video[0]):
                if packet.size:
                    yield None, packet


def _keyed(
    packets: Iterator[tuple[int | None, av.Packet]], rank: int
) -> Iterator[tuple[Fraction, int, int, int | None, av.Packet]]:
    """Packets keyed for interleaving by a never-decreasing time (dts, else pts), their own order kept."""
    latest = Fraction(0)
    for position, (index, packet) in enumerate(packets):
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is not None:
            latest = max(latest, stamp * packet.time_base)
        yield latest, rank, position, index, packet


def _check_alike(files: list[Path]) -> None:
    """Refuse to join segments whose codec parameters differ (the joined stream would not decode)."""

    def parameters(path: Path) -> tuple:
        with av.open(str(path)) as container:
            context = container.streams.video[0].codec_context
            return (
                context.name,
                context.width,
                context.height,
                context.format and context.format.name,
                bytes(context.extradata or b""),
            )

    first = parameters(files[0])
    for index, path in enumerate(files[1:], 1):
        if parameters(path) != first:
            raise VideoError(
                f"{path}: segment {index} was encoded with other codec parameters than segment 0; "
                "pass --overwrite to redo the run"
            )


def join_segments(
    source: Path,
    joined: Path,
    info: VideoInfo,
    plan: OutputPlan,
    files: list[Path],
    start: Fraction,
    end: Fraction | None,
) -> int:
    """Remux the segments' video with the source's audio, subtitles, chapters and metadata into `joined`;
    returns the video packets written."""
    written = 0
    _check_alike(files)
    duration = None if end is None else end - start
    with av.open(str(source)) as container, av.open(str(files[0])) as first:
        template = first.streams.video[0]
        chapters = trim_chapters(container.chapters(), float(start), None if duration is None else float(duration))
        with VideoWriter(
            joined,
            info,
            template.width,
            template.height,
            plan,
            copy_from=container,
            chapters=chapters,
            video_from=template,
            overwrite=True,
            start=start,
        ) as writer:
            copied = (
                (index, shift_packet(packet, start)) for index, packet in copied_packets(container, start, duration)
            )
            for _, _, _, index, packet in heapq.merge(_keyed(_segment_packets(files), 0), _keyed(copied, 1)):
                if index is None:
                    writer.remux(packet)
                    written += 1
                else:
                    writer.copy(packet, index)
    return written
