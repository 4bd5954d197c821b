"""Values the video pipeline's modules share: what a run is asked (VideoOptions), the range a segment covers
(Segment), a video prepared for its run (PreparedVideo), what a run reports (VideoSummary), and its warning line.

A leaf: it imports no other pipeline module, so the preparation, the segment plan, the units and the segmented
run can all use these without import circles.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from ..defaults import DEFAULT_SEGMENT_SECONDS
from ..io.video.output import EncodeSettings, OutputPlan
from ..io.video.probe import VideoInfo


@dataclass
class VideoOptions:
    """Encoding, trimming, deinterlacing and completeness choices for one video."""

    encode: EncodeSettings
    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None
    deinterlace: str = "auto"
    """auto: deinterlace input whose stream or frames are flagged interlaced; on: every frame; off: never."""
    allow_truncated: bool = False
    """Keep the output of an input that ends before its container says (else an error, nothing written)."""
    reuse_threshold: int | None = 0
    """Reuse the last output for frames within this many 8-bit codes of its input (0: equal); None: off."""
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    """Cut videos longer than this at keyframes into segments that survive a crash (pipelines/segments.py); 0: off."""
    resume: bool = False
    """Continue from the finished segments of an interrupted run (its work folder beside the output)."""


@dataclass(frozen=True)
class Segment:
    """A piece of the requested range: [start, end) in seconds of the source, and the frames it holds."""

    start: Fraction
    """The first segment's is the trim start (0: from the first frame); the others start at a keyframe."""
    end: Fraction | None
    """Where the next segment starts; for the last, the end of the range (None: the end of the video)."""
    frames: int


@dataclass(frozen=True)
class PreparedVideo:
    """One video made ready for its run, once: the input's probe, the output plan, the reader's deinterlace mode
    and the segment plan (one segment: the video is streamed into its output without a work folder)."""

    source: Path
    target: Path
    info: VideoInfo
    plan: OutputPlan
    deinterlace: str | None
    """None, "interlaced" or "all" (io.video.reader.VideoReader's mode)."""
    segments: tuple[Segment, ...]


@dataclass
class VideoSummary:
    """Frames written, corrupt packets skipped, timestamps repaired, seconds taken, the model thread's busy share,
    and held frames that took the previous output (pipelines/reuse.py)."""

    frames: int
    corrupt: int
    seconds: float
    model_busy: float
    repaired: int = 0
    reused: int = 0
    segments: int = 1
    """Segments the run was cut into (1: streamed into the output without a work folder)."""
    kept_segments: int = 0
    """Segments of an interrupted run kept by --resume (pipelines/segments.py)."""
    encoded_segments: int = 0
    retried_segments: list[str] = field(default_factory=list)
    """Why each segment that went to another worker was retried (its worker or node was lost)."""


def warn(message: str) -> None:
    """Print one warning line above the progress bar."""
    tqdm.write(f"srkit: warning: {message}", file=sys.stderr)
