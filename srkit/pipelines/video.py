"""Upscale one video file: prepare it once, then run its segments; a streamed video is a run of one segment.

Preparation (`prepare`) refuses an output onto the input, probes the input (unless the batch plan did), makes the
output plan (codec, pixel format, streams: io.video.output), picks the deinterlace mode and cuts the segment plan
(pipelines/segment_plan.py). A plan of one segment is encoded straight into the output, with the other streams,
chapters and metadata copied in, without a work folder; a plan of several runs through the crash-safe work
folder and the join (pipelines/segments.py). Both encode with pipelines/segment_unit.py's `encode_segment`.
Ctrl-C, SIGTERM or SIGHUP stop the run within seconds and leave no file under the output's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from ..io.video.errors import VideoError
from ..io.video.output import OutputPlan, plan_output
from ..io.video.probe import VideoInfo
from ..io.video.probe import probe as probe_file
from ..request import UpscaleRequest
from ..upscaler import Upscaler
from .segment_plan import plan_segments, whole_range
from .segment_unit import SegmentUnit, encode_segment
from .segments import run_segments
from .types import ScaleOut
from .video_types import PreparedVideo, VideoOptions, VideoSummary, warn

DEINTERLACE_CHOICES = ("auto", "on", "off")


def deinterlace_mode(info: VideoInfo, choice: str) -> str | None:
    """The reader's deinterlace mode for --deinterlace `choice`, announcing it in one line."""
    if choice not in DEINTERLACE_CHOICES:
        raise VideoError(f"--deinterlace must be one of {', '.join(DEINTERLACE_CHOICES)}, got {choice!r}")
    if choice == "off" or (choice == "auto" and info.field_order is None):
        return None
    what = f"interlaced ({info.field_order})" if info.field_order else "treated as interlaced (--deinterlace on)"
    warn(
        f"{info.path}: {what}; deinterlacing with FFmpeg's bwdif, one frame per frame so timing is kept "
        "(--deinterlace off to upscale the fields as they are)"
    )
    return "all" if choice == "on" else "interlaced"


def prepare(
    source: str | Path,
    target: str | Path,
    options: VideoOptions,
    probe: VideoInfo | None = None,
    segmented: bool = True,
    output: OutputPlan | None = None,
) -> PreparedVideo:
    """Everything decided once about one video before any frame is decoded; raises VideoError (OutputPlanError
    for a codec or container that cannot work) if the video cannot be made.

    `probe` is `io.video.probe.probe(source)` when the caller has it (the file is then not probed again);
    without `segmented` the plan is one segment whatever its length; `output` is the output plan the batch
    planner made for it (made here otherwise).
    """
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise VideoError(f"{target}: refusing to overwrite the input video; choose another -o")
    info = probe or probe_file(source)
    if info.frames == 0:
        raise VideoError(f"{source}: the video stream has no frames")
    plan = output or plan_output(target, info, options.encode)
    for line in plan.warnings:
        warn(line)
    deinterlace = deinterlace_mode(info, options.deinterlace)
    segments = plan_segments(info, options) if segmented else [whole_range(info, options)]
    return PreparedVideo(source, target, info, plan, deinterlace, tuple(segments))


def upscale_video(
    source: str | Path,
    target: str | Path,
    options: VideoOptions,
    model: Callable[[], Upscaler],
    spec: UpscaleRequest | None = None,
    scale_out: ScaleOut | None = None,
    probe: VideoInfo | None = None,
    overwrite: bool = False,
    output: OutputPlan | None = None,
) -> VideoSummary:
    """Upscale `source` into `target` (published when complete; a target that exists by then, another run's
    output included, is replaced only with `overwrite`).

    `model()` gives the Upscaler, asked for only when frames are upscaled in this process. With `spec` (what
    builds it) a video longer than `options.segment_seconds` is cut into segments that survive a crash and run
    on the workers `scale_out` names; without it the video is one segment. `probe` is the input's, when the
    caller has it, `output` its output plan when the batch planner made it. SIGTERM/SIGHUP handling is the
    caller's (`batch.run_plan` turns them into KeyboardInterrupt).
    """
    video = prepare(source, target, options, probe, segmented=spec is not None, output=output)
    if spec is None or len(video.segments) == 1:
        made = _stream(video, options, model(), overwrite)
    else:
        workers = scale_out or ScaleOut()
        made = run_segments(video, options, spec, workers, None if workers.parallel else model(), overwrite)
    if made.repaired:
        warn(
            f"{video.source}: repaired the timestamps of {made.repaired} of {made.frames} frames (out of order, "
            "duplicated or missing): frames are written in presentation order"
        )
    return made


def _expected_frames(info: VideoInfo, options: VideoOptions) -> int | None:
    """Frames the run should produce (for the progress bar): the smallest known bound, or None."""
    bounds = [info.frames, options.max_frames]
    if options.duration is not None and info.average_rate:
        bounds.append(round(options.duration * float(info.average_rate)))
    known = [bound for bound in bounds if bound]
    return min(known) if known else None


def _stream(video: PreparedVideo, options: VideoOptions, upscaler: Upscaler, overwrite: bool) -> VideoSummary:
    """The one segment of `video` encoded straight into its output, in this process, with a frame progress bar."""
    segment = video.segments[0]
    unit = SegmentUnit(
        0,
        video.info,
        video.target,
        segment.start,
        segment.end,
        Fraction(options.start),
        video.plan,
        video.deinterlace,
        options.reuse_threshold,
        last=True,
        allow_truncated=options.allow_truncated,
        whole=True,
        max_frames=options.max_frames,
        overwrite=overwrite,
    )
    began = time.perf_counter()
    bar = tqdm(total=_expected_frames(video.info, options), unit="frame", dynamic_ncols=True, disable=None)
    try:
        done = encode_segment(upscaler, unit, bar.update)
    finally:
        bar.close()
    seconds = time.perf_counter() - began
    return VideoSummary(
        done.frames, done.corrupt, seconds, done.busy / seconds if seconds else 0.0, done.repaired, done.reused
    )
