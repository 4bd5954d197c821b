"""Upscale a video in segments cut at keyframes, each a unit of work that survives a crash, then join them.

The segment plan (pipelines/segment_plan.py) is made once when the video is prepared (pipelines/video.py). Each
segment is a `SegmentUnit` that `encode_segment` (pipelines/segment_unit.py) encodes into its own video-only
file in the work folder (pipelines/workfolder.py), on this process or the workers `--workers` / `--backend ray`
name (pipelines/scaleout.py); the driver records each finished segment's checksum in the manifest. Every segment
is encoded with the same settings and a pinned encoder thread count, so it starts with a closed GOP, carries
identical codec parameters and does not depend on the worker that made it. The join (pipelines/join.py) remuxes
the segments' packets, without re-encoding, with the source's audio, subtitles, chapters and metadata into the
final file (a temporary name, then renamed), and the work folder is removed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..engine import cpu_backend
from ..environment import default_device
from ..io.video.errors import VideoError, ffmpeg_errors
from ..io.video.output import OutputPlan
from ..request import UpscaleRequest
from ..upscaler import Upscaler
from .join import join_segments
from .scaleout import run_units
from .segment_unit import SegmentResult, SegmentUnit, encode_segment
from .types import ScaleOut
from .video_types import PreparedVideo, Segment, VideoOptions, VideoSummary
from .workfolder import (
    WorkFolder,
    WorkFolderError,
    differences,
    file_sha256,
    input_identity,
    publish_durably,
    work_folder_for,
)

# Encoder threads of every segment: x264's (and VP9's) output depends on its thread count, which by default
# follows the worker's CPU count, so it is pinned to make a segment's bytes the same on any worker.
# --encoder-opt threads=N overrides it (for every segment alike).
SEGMENT_THREADS = 8


def _segment_plan(plan: OutputPlan) -> OutputPlan:
    """The output plan with the encoder thread count pinned (unless --encoder-opt sets it)."""
    options = {"threads": str(SEGMENT_THREADS), **(plan.settings.options or {})}
    return replace(plan, settings=replace(plan.settings, options=options))


def options_record(spec: UpscaleRequest, options: VideoOptions, plan: OutputPlan) -> dict[str, Any]:
    """The options that shape the output, by flag: a resumed run must use the same."""
    encode = plan.settings
    record = {
        "--model": spec.model,
        "--scale": spec.output_scale,
        "--tile": spec.tile or "auto",
        "--dtype": spec.dtype,
        "--codec": encode.codec,
        "--crf": encode.crf,
        "--preset": encode.preset,
        "--pix-fmt": encode.pix_fmt,
        "--encoder-opt": sorted(f"{key}={value}" for key, value in (encode.options or {}).items()),
        "--start": options.start,
        "--duration": options.duration,
        "--frames": options.max_frames,
        "--deinterlace": options.deinterlace,
        "--reuse-frames": options.reuse_threshold,
        "--segment-seconds": options.segment_seconds,
    }
    return json.loads(json.dumps(record))


def _segment_file(target: Path, index: int) -> str:
    return f"segment-{index:04d}{target.suffix}"


def _begin(
    folder: WorkFolder,
    target: Path,
    record: dict[str, Any],
    options: VideoOptions,
    overwrite: bool,
    segments: tuple[Segment, ...],
) -> dict[str, Any]:
    """The manifest to work on: the earlier run's (with --resume, checked against this one) or a new one.

    An earlier run that finished no segment left nothing to keep: it is started over without a word.
    """
    manifest = folder.load() if folder.has_manifest() else None
    if manifest and any(segment["sha256"] for segment in manifest["segments"]):
        if options.resume:
            changed = [f"input {line}" for line in differences(manifest["input"], record["input"])]
            changed += differences(manifest["options"], record["options"])
            if changed:
                raise WorkFolderError(
                    f"{target}: cannot resume the run in {folder.path}, made with other input or "
                    f"options: {', '.join(changed)}; rerun as it was, or --overwrite without "
                    "--resume to start over"
                )
            return manifest
        if not overwrite:
            finished = sum(1 for segment in manifest["segments"] if segment["sha256"])
            raise WorkFolderError(
                f"{target}: an interrupted run left {finished} of {len(manifest['segments'])} "
                f"segments in {folder.path}: pass --resume to continue it, or --overwrite to start "
                "over"
            )
    folder.clear_except(set())
    manifest = {
        **record,
        "joined": None,
        "segments": [
            {
                "start": str(segment.start),
                "end": None if segment.end is None else str(segment.end),
                "frames": segment.frames,
                "file": _segment_file(target, index),
                "sha256": None,
            }
            for index, segment in enumerate(segments)
        ],
    }
    folder.save(manifest)
    return manifest


def _keep_finished(folder: WorkFolder, manifest: dict[str, Any]) -> int:
    """Forget segments whose file is missing or fails its checksum, remove every other file; how many are kept."""
    kept = set()
    for segment in manifest["segments"]:
        path = folder.path / segment["file"]
        if segment["sha256"] and path.is_file() and file_sha256(path) == segment["sha256"]:
            kept.add(segment["file"])
        else:
            segment["sha256"] = None
    folder.clear_except(kept)
    folder.save(manifest)
    return len(kept)


@dataclass
class _Tally:
    """What this run's workers did, summed as segments finish."""

    frames: int = 0
    corrupt: int = 0
    repaired: int = 0
    busy: float = 0.0
    reused: int = 0
    encoded: int = 0
    retried: list[str] = field(default_factory=list)


def run_segments(
    video: PreparedVideo,
    options: VideoOptions,
    spec: UpscaleRequest,
    scale_out: ScaleOut,
    upscaler: Upscaler | None,
    overwrite: bool,
) -> VideoSummary:
    """Upscale a prepared video of several segments (on the workers `scale_out` names), then join them.

    The segments and a manifest live in `.<target name>.srkit/` beside the target until the join succeeds.
    `options.resume` continues an interrupted run; a work folder found without it is an error (with the hint),
    unless `overwrite` (start over). `upscaler`, one built from `spec` in this process, runs the segments when
    they run here (not rebuilt).
    """
    source, target, info = video.source, video.target, video.info
    folder = WorkFolder(work_folder_for(target))
    record = {"input": input_identity(source), "options": options_record(spec, options, video.plan)}
    began = time.perf_counter()
    with folder.locked():
        if target.exists() and not overwrite and not (options.resume and folder.has_manifest()):
            raise VideoError(f"{target} exists; pass --overwrite")
        manifest = _begin(folder, target, record, options, overwrite, video.segments)
        if "cpu_backend" not in manifest:  # the backend its segments were made with; a resumed run keeps it
            manifest["cpu_backend"] = cpu_backend.run_backend(
                spec.model, spec.dtype, torch.device(spec.device) if spec.device else default_device()
            )
        if manifest["cpu_backend"]:
            cpu_backend.pin(manifest["cpu_backend"])
            choice = upscaler.runner.choice if upscaler is not None else None
            if choice is not None and choice.backend != manifest["cpu_backend"]:
                upscaler = None  # made for another backend than the run's: the segments build their own
        entries = manifest["segments"]
        if target.exists() and manifest["joined"] and file_sha256(target) == manifest["joined"]:
            folder.remove()  # the run was killed after its output was in place: only the tidying was left
            return VideoSummary(
                sum(entry["frames"] for entry in entries),
                0,
                time.perf_counter() - began,
                0.0,
                segments=len(entries),
                kept_segments=len(entries),
            )
        if target.exists() and not overwrite:
            raise VideoError(f"{target} exists and is not the output of the run in {folder.path}; pass --overwrite")
        kept = _keep_finished(folder, manifest)
        shift = Fraction(options.start)
        # absolute paths: a worker process or Ray actor may run in another working directory
        anywhere = replace(info, path=info.path.absolute())
        units = [
            SegmentUnit(
                index,
                anywhere,
                (folder.path / entry["file"]).absolute(),
                Fraction(entry["start"]),
                None if entry["end"] is None else Fraction(entry["end"]),
                shift,
                _segment_plan(video.plan),
                video.deinterlace,
                options.reuse_threshold,
                index == len(entries) - 1,
                options.allow_truncated,
                entry["frames"],
            )
            for index, entry in enumerate(entries)
            if not entry["sha256"]
        ]
        tally = _Tally()
        bar = tqdm(
            total=sum(entry["frames"] for entry in entries),
            unit="frame",
            dynamic_ncols=True,
            disable=None,
            initial=sum(entry["frames"] for entry in entries if entry["sha256"]),
        )

        def finished(_: int, result: SegmentResult) -> None:
            entries[result.index].update(sha256=result.sha256, frames=result.frames)
            folder.save(manifest)
            for name in ("frames", "corrupt", "repaired", "busy", "reused"):
                setattr(tally, name, getattr(tally, name) + getattr(result, name))
            tally.encoded += 1
            bar.update(result.frames)

        try:
            run_units(
                units,
                encode_segment,
                spec,
                scale_out,
                finished,
                upscaler=upscaler,
                on_retry=lambda _, reason: tally.retried.append(reason),
                output=folder.path,
            )
        except BaseException:
            bar.close()
            done = sum(1 for entry in entries if entry["sha256"])
            if not done:
                folder.remove()  # nothing to resume
                raise
            print(
                f"srkit: {done} of {len(entries)} segments of {target} are kept in {folder.path}: run the same "
                "command with --resume to continue",
                file=sys.stderr,
            )
            raise
        finally:
            bar.close()
        frames = sum(entry["frames"] for entry in entries)
        if frames == 0:
            raise VideoError(f"{source}: no frames were decoded in the requested range")
        joined = folder.path / f"joined{target.suffix}"
        end = None if entries[-1]["end"] is None else Fraction(entries[-1]["end"])
        with ffmpeg_errors(f"{target}: joining the segments failed"):
            written = join_segments(
                source, joined, info, video.plan, [folder.path / entry["file"] for entry in entries], shift, end
            )
        if written != frames:
            raise VideoError(
                f"{target}: the join wrote {written} video frames where the segments hold {frames}; "
                f"nothing was written: pass --overwrite to redo the run"
            )
        manifest["joined"] = file_sha256(joined)
        folder.save(manifest)
        publish_durably(joined, target, overwrite)
        folder.remove()
    seconds = time.perf_counter() - began
    return VideoSummary(
        frames,
        tally.corrupt,
        seconds,
        tally.busy / seconds if seconds else 0.0,
        tally.repaired,
        tally.reused,
        segments=len(entries),
        kept_segments=kept,
        encoded_segments=tally.encoded,
        retried_segments=tally.retried,
    )
