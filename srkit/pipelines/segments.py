"""Upscale a long video in segments cut at keyframes, each a unit of work that survives a crash, then join them.

The plan (`plan_segments`) cuts the requested range at keyframes about `--segment-seconds` apart; it depends only
on the input and the trim and segment options. Each segment is a self-contained, picklable `SegmentUnit` that
`encode_segment` (a module-level function, so any worker process or Ray actor can run it) decodes from its
keyframe, upscales and encodes into its own video-only file in the work folder (pipelines/workfolder.py); the
driver records each finished segment's checksum in the manifest. Every segment is encoded with the same settings
and a pinned encoder thread count, so it starts with a closed GOP, carries identical codec parameters and does
not depend on the worker that made it. The join remuxes the segments' packets, without re-encoding, with the
source's audio, subtitles, chapters and metadata into the final file (a temporary name, then renamed), and the
work folder is removed.
"""

from __future__ import annotations

import bisect
import heapq
import json
import sys
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av
from tqdm import tqdm

from ..engine import cpu_backend
from ..errors import SrkitError
from ..io.video import (OutputPlan, PacketTimes, VideoError, VideoInfo, VideoReader, VideoWriter, copied_packets,
                        plan_output, pts_window, scan_packets, trim_chapters)
from ..io.video import probe as probe_file
from ..upscaler import Upscaler
from .scaleout import ScaleOut, UpscalerSpec, run_units
from .video import (VideoOptions, VideoSummary, check_complete, deinterlace_mode, output_size, pump, shift_packet,
                    warn)
from .workers import signals_interrupt
from .workfolder import WorkFolder, WorkFolderError, differences, file_sha256, input_identity, publish_durably, \
    work_folder_for

# Encoder threads of every segment: x264's (and VP9's) output depends on its thread count, which by default
# follows the worker's CPU count, so it is pinned to make a segment's bytes the same on any worker.
# --encoder-opt threads=N overrides it (for every segment alike).
SEGMENT_THREADS = 8
SHORTEST_LAST = Fraction(1, 2)  # a last segment shorter than this share of --segment-seconds joins the one before


@dataclass(frozen=True)
class Segment:
    """A piece of the requested range: [start, end) in seconds of the source, and the frames it holds."""

    start: Fraction
    """The first segment's is the trim start (0: from the first frame); the others start at a keyframe."""
    end: Fraction | None
    """Where the next segment starts; for the last, the end of the range (None: the end of the video)."""
    frames: int


def plan_segments(info: VideoInfo, options: VideoOptions, times: PacketTimes | None = None) -> list[Segment]:
    """Cut the range the trim options select at keyframes about `options.segment_seconds` apart.

    One segment (the streaming pipeline's case) when segmenting is off, the range is short, or the packets'
    timestamps are missing or repeated (the reader must repair them, which needs the whole stream).
    """
    seconds = Fraction(str(options.segment_seconds))  # as typed: 0.8 is 4/5, not the float above it
    start = Fraction(options.start)
    end = start + Fraction(options.duration) if options.duration is not None else None
    whole = [Segment(start, end, info.frames or 0)]
    length = (Fraction(options.duration) if options.duration is not None
              else info.duration - start if info.duration is not None else None)
    if seconds <= 0 or (length is not None and length <= seconds):
        return whole
    times = times or scan_packets(info)
    if not times.usable:
        return whole
    tb = info.time_base
    first, stop = pts_window(info, options.start, options.duration)  # as the reader selects frames
    inside = [pts for pts in times.frames if (first is None or pts >= first) and (stop is None or pts < stop)]
    if options.max_frames is not None and len(inside) > options.max_frames:
        end, inside = inside[options.max_frames] * tb, inside[:options.max_frames]
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
    return [Segment(low, high, last - first)
            for low, high, first, last in zip([start, *cuts], [*cuts, end], edges, edges[1:])]


@dataclass(frozen=True)
class SegmentUnit:
    """One segment's work, self-contained and picklable: input, range, output file and encoder settings."""

    index: int
    info: VideoInfo
    path: Path
    start: Fraction
    end: Fraction | None
    shift: Fraction
    """The trim start, taken off every timestamp (as the streaming pipeline does)."""
    plan: OutputPlan
    deinterlace: str | None
    reuse_threshold: int | None
    last: bool
    allow_truncated: bool
    planned: int | None = None
    """Frames the plan counted in [start, end) from the packets (None: not counted, a one-segment plan)."""


@dataclass(frozen=True)
class SegmentResult:
    """What a worker reports for a finished segment: counts and the checksum of its file."""

    index: int
    frames: int
    corrupt: int
    repaired: int
    busy: float
    reused: int
    sha256: str


def encode_segment(upscaler: Upscaler, unit: SegmentUnit) -> SegmentResult:
    """Decode one segment from its keyframe (frames before its start dropped), upscale it and encode it into its
    own video-only file, written under a temporary name and renamed when complete."""
    size = output_size(unit.info, upscaler.scale, unit.plan.settings.pix_fmt)
    duration = None if unit.end is None else unit.end - unit.start
    try:
        with VideoReader(unit.info, unit.start, duration, None, unit.deinterlace, copy=False,
                         on_warning=warn) as reader, \
                VideoWriter(unit.path, unit.info, *size, unit.plan, chapters=[], overwrite=True) as writer:
            done = pump(reader, writer, upscaler, unit.reuse_threshold, unit.shift, size)
            if unit.last:
                check_complete(reader, done.frames, unit.allow_truncated)
            _check_planned(unit, done.frames, reader.corrupt)
    except (av.error.FFmpegError, OSError) as error:
        if isinstance(error, SrkitError):
            raise
        raise VideoError(f"{unit.info.path} -> {unit.path}: {error}") from error
    return SegmentResult(unit.index, done.frames, reader.corrupt, reader.repaired, done.busy, done.reused,
                         file_sha256(unit.path))


def _check_planned(unit: SegmentUnit, frames: int, corrupt: int) -> None:
    """Raise VideoError if the segment gave other than the frames its plan counted (corrupt packets excepted)."""
    if unit.planned is None or unit.planned - corrupt <= frames <= unit.planned:
        return
    end = "the end" if unit.end is None else f"{float(unit.end):.3f} s"
    raise VideoError(f"{unit.info.path}: segment {unit.index} ({float(unit.start):.3f} s to {end}) gave {frames} "
                     f"frames where the input holds {unit.planned}; nothing was written: pass --segment-seconds 0 "
                     "to upscale it as one stream")


def _segment_plan(plan: OutputPlan) -> OutputPlan:
    """The output plan with the encoder thread count pinned (unless --encoder-opt sets it)."""
    options = {"threads": str(SEGMENT_THREADS), **(plan.settings.options or {})}
    return replace(plan, settings=replace(plan.settings, options=options))


def options_record(spec: UpscalerSpec, options: VideoOptions, plan: OutputPlan) -> dict[str, Any]:
    """The options that shape the output, by flag: a resumed run must use the same."""
    encode = plan.settings
    record = {"--model": spec.model, "--scale": spec.outscale, "--tile": spec.tile, "--dtype": spec.dtype,
              "--codec": encode.codec, "--crf": encode.crf, "--preset": encode.preset, "--pix-fmt": encode.pix_fmt,
              "--encoder-opt": sorted(f"{key}={value}" for key, value in (encode.options or {}).items()),
              "--start": options.start, "--duration": options.duration, "--frames": options.max_frames,
              "--deinterlace": options.deinterlace, "--reuse-frames": options.reuse_threshold,
              "--segment-seconds": options.segment_seconds}
    return json.loads(json.dumps(record))


def _segment_file(target: Path, index: int) -> str:
    return f"segment-{index:04d}{target.suffix}"


def _begin(folder: WorkFolder, target: Path, record: dict[str, Any], options: VideoOptions, overwrite: bool,
           segments: list[Segment]) -> dict[str, Any]:
    """The manifest to work on: the earlier run's (with --resume, checked against this one) or a new one.

    An earlier run that finished no segment left nothing to keep: it is started over without a word.
    """
    manifest = folder.load() if folder.has_manifest() else None
    if manifest and any(segment["sha256"] for segment in manifest["segments"]):
        if options.resume:
            changed = [f"input {line}" for line in differences(manifest["input"], record["input"])]
            changed += differences(manifest["options"], record["options"])
            if changed:
                raise WorkFolderError(f"{target}: cannot resume the run in {folder.path}, made with other input or "
                                      f"options: {', '.join(changed)}; rerun as it was, or --overwrite without "
                                      "--resume to start over")
            return manifest
        if not overwrite:
            finished = sum(1 for segment in manifest["segments"] if segment["sha256"])
            raise WorkFolderError(f"{target}: an interrupted run left {finished} of {len(manifest['segments'])} "
                                  f"segments in {folder.path}: pass --resume to continue it, or --overwrite to start "
                                  "over")
    folder.clear_except(set())
    manifest = {**record, "joined": None, "segments": [
        {"start": str(segment.start), "end": None if segment.end is None else str(segment.end),
         "frames": segment.frames, "file": _segment_file(target, index), "sha256": None}
        for index, segment in enumerate(segments)]}
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


def _segment_packets(files: list[Path]) -> Iterator[tuple[None, av.Packet]]:
    """The segments' video packets, in order."""
    for file in files:
        with av.open(str(file)) as container:
            for packet in container.demux(container.streams.video[0]):
                if packet.size:
                    yield None, packet


def _keyed(packets: Iterator[tuple[int | None, av.Packet]],
           rank: int) -> Iterator[tuple[Fraction, int, int, int | None, av.Packet]]:
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
            return context.name, context.width, context.height, context.format.name, bytes(context.extradata or b"")

    first = parameters(files[0])
    for index, path in enumerate(files[1:], 1):
        if parameters(path) != first:
            raise VideoError(f"{path}: segment {index} was encoded with other codec parameters than segment 0; "
                             "pass --overwrite to redo the run")


def join_segments(source: Path, joined: Path, info: VideoInfo, plan: OutputPlan, files: list[Path],
                  start: Fraction, end: Fraction | None) -> int:
    """Remux the segments' video with the source's audio, subtitles, chapters and metadata into `joined`;
    returns the video packets written."""
    written = 0
    _check_alike(files)
    duration = None if end is None else end - start
    with av.open(str(source)) as container, av.open(str(files[0])) as first:
        template = first.streams.video[0]
        chapters = trim_chapters(container.chapters(), float(start), None if duration is None else float(duration))
        with VideoWriter(joined, info, template.width, template.height, plan, copy_from=container,
                         chapters=chapters, video_from=template, overwrite=True, start=start) as writer:
            copied = ((index, shift_packet(packet, start)) for index, packet in copied_packets(container, start,
                                                                                               duration))
            for _, _, _, index, packet in heapq.merge(_keyed(_segment_packets(files), 0), _keyed(copied, 1)):
                if index is None:
                    writer.remux(packet)
                    written += 1
                else:
                    writer.copy(packet, index)
    return written


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


def upscale_video_segments(source: str | Path, target: str | Path, spec: UpscalerSpec, options: VideoOptions,
                           scale_out: ScaleOut = ScaleOut(), probe: VideoInfo | None = None,
                           overwrite: bool = False, segments: list[Segment] | None = None,
                           upscaler: Upscaler | None = None) -> VideoSummary:
    """Upscale `source` into `target` segment by segment (on the workers `scale_out` names), then join them.

    The segments and a manifest live in `.<target name>.srkit/` beside the target until the join succeeds.
    `options.resume` continues an interrupted run; a work folder found without it is an error (with the hint),
    unless `overwrite` (start over). `segments` is `plan_segments(probe, options)` when the caller has it;
    `upscaler`, one built from `spec` in this process, runs the segments when they run here (not rebuilt).
    """
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise VideoError(f"{target}: refusing to overwrite the input video; choose another -o")
    info = probe or probe_file(source)
    plan = plan_output(target, info, options.encode)
    for line in plan.warnings:
        warn(line)
    deinterlace = deinterlace_mode(info, options.deinterlace)
    segments = segments or plan_segments(info, options)
    folder = WorkFolder(work_folder_for(target))
    record = {"input": input_identity(source), "options": options_record(spec, options, plan)}
    began = time.perf_counter()
    with signals_interrupt(), folder.locked():
        if target.exists() and not overwrite and not (options.resume and folder.has_manifest()):
            raise VideoError(f"{target} exists; pass --overwrite")
        manifest = _begin(folder, target, record, options, overwrite, segments)
        if "cpu_backend" not in manifest:  # the backend its segments were made with; a resumed run keeps it
            manifest["cpu_backend"] = cpu_backend.run_backend(spec.model, spec.dtype, spec.device)
        if manifest["cpu_backend"]:
            cpu_backend.pin(manifest["cpu_backend"])
            if upscaler is not None and upscaler.cpu_choice and upscaler.cpu_choice.backend != manifest["cpu_backend"]:
                upscaler = None  # made for another backend than the run's: the segments build their own
        entries = manifest["segments"]
        if target.exists() and manifest["joined"] and file_sha256(target) == manifest["joined"]:
            folder.remove()  # the run was killed after its output was in place: only the tidying was left
            return VideoSummary(sum(entry["frames"] for entry in entries), 0, time.perf_counter() - began, 0.0,
                                kept_segments=len(entries))
        if target.exists() and not overwrite:
            raise VideoError(f"{target} exists and is not the output of the run in {folder.path}; pass --overwrite")
        kept = _keep_finished(folder, manifest)
        shift = Fraction(options.start)
        # absolute paths: a worker process or Ray actor may run in another working directory
        anywhere = replace(info, path=info.path.absolute())
        units = [SegmentUnit(index, anywhere, (folder.path / entry["file"]).absolute(), Fraction(entry["start"]),
                             None if entry["end"] is None else Fraction(entry["end"]), shift, _segment_plan(plan),
                             deinterlace, options.reuse_threshold, index == len(entries) - 1,
                             options.allow_truncated, entry["frames"] if len(entries) > 1 else None)
                 for index, entry in enumerate(entries) if not entry["sha256"]]
        tally = _Tally()
        bar = tqdm(total=sum(entry["frames"] for entry in entries), unit="frame", dynamic_ncols=True, disable=None,
                   initial=sum(entry["frames"] for entry in entries if entry["sha256"]))

        def finished(_: int, result: SegmentResult) -> None:
            entries[result.index].update(sha256=result.sha256, frames=result.frames)
            folder.save(manifest)
            for name in ("frames", "corrupt", "repaired", "busy", "reused"):
                setattr(tally, name, getattr(tally, name) + getattr(result, name))
            tally.encoded += 1
            bar.update(result.frames)

        try:
            run_units(units, encode_segment, spec, scale_out, finished, upscaler=upscaler,
                      on_retry=lambda _, reason: tally.retried.append(reason), output=folder.path)
        except BaseException:
            bar.close()
            done = sum(1 for entry in entries if entry["sha256"])
            if not done:
                folder.remove()  # nothing to resume
                raise
            print(f"srkit: {done} of {len(entries)} segments of {target} are kept in {folder.path}: run the same "
                  "command with --resume to continue", file=sys.stderr)
            raise
        finally:
            bar.close()
        frames = sum(entry["frames"] for entry in entries)
        if frames == 0:
            raise VideoError(f"{source}: no frames were decoded in the requested range")
        joined = folder.path / f"joined{target.suffix}"
        end = None if entries[-1]["end"] is None else Fraction(entries[-1]["end"])
        try:
            written = join_segments(source, joined, info, plan, [folder.path / entry["file"] for entry in entries],
                                    shift, end)
        except (av.error.FFmpegError, OSError) as error:
            if isinstance(error, SrkitError):
                raise
            raise VideoError(f"{target}: joining the segments failed ({error})") from error
        if written != frames:
            raise VideoError(f"{target}: the join wrote {written} video frames where the segments hold {frames}; "
                             f"nothing was written: pass --overwrite to redo the run")
        manifest["joined"] = file_sha256(joined)
        folder.save(manifest)
        publish_durably(joined, target, overwrite)
        folder.remove()
    if tally.repaired:
        warn(f"{source}: repaired the timestamps of {tally.repaired} of {tally.frames} frames (out of order, "
              "duplicated or missing): frames are written in presentation order")
    seconds = time.perf_counter() - began
    return VideoSummary(frames, tally.corrupt, seconds, tally.busy / seconds if seconds else 0.0, tally.repaired,
                        tally.reused, kept_segments=kept, encoded_segments=tally.encoded,
                        retried_segments=tally.retried)

