"""One segment's work, the one path every video takes from decode to the written file.

A `SegmentUnit` is self-contained and picklable; `encode_segment` (a module-level function, so any worker
process or Ray actor can run it) decodes the segment from its keyframe (frames before its start dropped),
upscales it and encodes it. A segment of a segmented run is a video-only file in the work folder; the only
segment of a streamed video is the output itself, with the other streams, chapters and metadata copied in.
Either way the file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..io.video.errors import VideoError, ffmpeg_errors
from ..io.video.output import OutputPlan
from ..io.video.probe import VideoInfo
from ..io.video.reader import VideoReader
from ..io.video.timestamps import trim_chapters
from ..io.video.writer import VideoWriter
from ..upscaler import Upscaler
from .pump import pump
from .video_types import warn
from .workfolder import file_sha256


@dataclass(frozen=True)
class SegmentUnit:
    """One segment's work, self-contained and picklable: input, range, output file and encoder settings."""

    index: int
    info: VideoInfo
    path: Path
    start: Fraction
    end: Fraction | None
    shift: Fraction
    """The trim start, taken off every timestamp."""
    plan: OutputPlan
    deinterlace: str | None
    reuse_threshold: int | None
    last: bool
    allow_truncated: bool
    planned: int | None = None
    """Frames the plan counted in [start, end) from the packets (None: not counted, a one-segment plan)."""
    whole: bool = False
    """The only segment, written as the output itself: the copied streams, chapters and metadata go in too."""
    max_frames: int | None = None
    """--frames, for the whole video (a segmented run's plan turned it into the last segment's end)."""
    overwrite: bool = True
    """Replace an existing file at `path` (a work folder's segment always; the output only with --overwrite)."""


@dataclass(frozen=True)
class SegmentResult:
    """What a worker reports for a finished segment: counts and the checksum of its file."""

    index: int
    frames: int
    corrupt: int
    repaired: int
    busy: float
    reused: int
    sha256: str | None
    """None for a whole video's output (no manifest records it)."""


def output_size(info: VideoInfo, scale: float, pix_fmt: str) -> tuple[int, int]:
    """Width and height of the upscaled video (even where the pixel format subsamples chroma)."""
    width, height = round(info.width * scale), round(info.height * scale)
    if "420" in pix_fmt or "422" in pix_fmt:
        return width - width % 2, height - height % 2
    return width, height


def check_complete(reader: VideoReader, frames: int, allow_truncated: bool) -> None:
    """Raise VideoError if the range gave no frames, or if the input ended early and that is not allowed."""
    if frames == 0:
        raise VideoError(f"{reader.info.path}: no frames were decoded in the requested range")
    missing = reader.truncated()
    if missing and not allow_truncated:
        raise VideoError(f"{missing}; nothing was written: pass --allow-truncated to keep the frames that decode")
    if missing:
        warn(missing)


def encode_segment(
    upscaler: Upscaler, unit: SegmentUnit, on_frames: Callable[[int], object] | None = None
) -> SegmentResult:
    """Decode one segment from its keyframe, upscale it and encode it into `unit.path`, written under a temporary
    name and renamed when complete; `on_frames(n)` is called as frames are encoded (a progress bar)."""
    size = output_size(unit.info, upscaler.output_scale, unit.plan.pix_fmt)
    duration = None if unit.end is None else unit.end - unit.start
    with (
        ffmpeg_errors(f"{unit.info.path} -> {unit.path}"),
        VideoReader(
            unit.info, unit.start, duration, unit.max_frames, unit.deinterlace, copy=unit.whole, on_warning=warn
        ) as reader,
        VideoWriter(
            unit.path,
            unit.info,
            *size,
            unit.plan,
            copy_from=reader.container if unit.whole else None,
            chapters=trim_chapters(reader.container.chapters(), unit.start, duration) if unit.whole else [],
            overwrite=unit.overwrite,
            start=unit.shift,
        ) as writer,
    ):
        done = pump(reader, writer, upscaler, unit.reuse_threshold, unit.shift, size, on_frames)
        if unit.last:
            check_complete(reader, done.frames, unit.allow_truncated)
        _check_planned(unit, done.frames, reader.corrupt)
    return SegmentResult(
        unit.index,
        done.frames,
        reader.corrupt,
        reader.repaired,
        done.busy,
        done.reused,
        None if unit.whole else file_sha256(unit.path),
    )


def _check_planned(unit: SegmentUnit, frames: int, corrupt: int) -> None:
    """Raise VideoError if the segment gave other than the frames its plan counted (corrupt packets excepted)."""
    if unit.planned is None or unit.planned - corrupt <= frames <= unit.planned:
        return
    end = "the end" if unit.end is None else f"{float(unit.end):.3f} s"
    raise VideoError(
        f"{unit.info.path}: segment {unit.index} ({float(unit.start):.3f} s to {end}) gave {frames} "
        f"frames where the input holds {unit.planned}; nothing was written: pass --segment-seconds 0 "
        "to upscale it as one stream"
    )
