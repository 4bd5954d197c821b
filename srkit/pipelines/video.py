"""Upscale a video file frame by frame: decode, model and encode on three workers joined by bounded queues.

The reader (io.video.VideoReader) demuxes every stream once and hands over RGB frames in presentation order with
repaired timestamps, plus the copied streams' packets; the model runs on the calling thread; the writer encodes
frames with their timestamps and durations and remuxes the packets. A corrupt packet is reported and skipped. Any
failure, Ctrl-C, SIGTERM or SIGHUP stops all three within seconds and removes the temporary output.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from tqdm import tqdm

from ..defaults import DEFAULT_SEGMENT_SECONDS
from ..errors import SrkitError
from ..io.video import (EncodeSettings, VideoError, VideoInfo, VideoReader, VideoWriter, plan_output,
                        trim_chapters)
from ..io.video import probe as probe_file
from ..upscaler import Upscaler
from .reuse import HeldFrames
from .threads import Pipe, Workers, signals_interrupt

QUEUE_DEPTH = 8
DEINTERLACE_CHOICES = ("auto", "on", "off")


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
    kept_segments: int = 0
    """Segments of an interrupted run kept by --resume (pipelines/segments.py)."""
    encoded_segments: int = 0
    retried_segments: list[str] = field(default_factory=list)
    """Why each segment that went to another worker was retried (its worker or node was lost)."""


def warn(message: str) -> None:
    """Print one warning line above the progress bar."""
    tqdm.write(f"srkit: warning: {message}", file=sys.stderr)


def _expected_frames(info: VideoInfo, options: VideoOptions) -> int | None:
    """Frames the run should produce (for the progress bar): the smallest known bound, or None."""
    bounds = [info.frames, options.max_frames]
    if options.duration is not None and info.average_rate:
        bounds.append(round(options.duration * float(info.average_rate)))
    known = [bound for bound in bounds if bound]
    return min(known) if known else None


def _even(value: int) -> int:
    return value - value % 2


def deinterlace_mode(info: VideoInfo, choice: str) -> str | None:
    """The reader's deinterlace mode for --deinterlace `choice`, announcing it in one line."""
    if choice not in DEINTERLACE_CHOICES:
        raise VideoError(f"--deinterlace must be one of {', '.join(DEINTERLACE_CHOICES)}, got {choice!r}")
    if choice == "off" or (choice == "auto" and info.field_order is None):
        return None
    what = f"interlaced ({info.field_order})" if info.field_order else "treated as interlaced (--deinterlace on)"
    warn(f"{info.path}: {what}; deinterlacing with FFmpeg's bwdif, one frame per frame so timing is kept "
          "(--deinterlace off to upscale the fields as they are)")
    return "all" if choice == "on" else "interlaced"


def _decode(reader: VideoReader, out: Pipe) -> None:
    for item in reader:
        out.put(item)
    out.close()


def shift_packet(packet: av.Packet, start: float) -> av.Packet:
    """A copied packet moved back by the trim start, so the output starts at 0 as the video does."""
    shift = round(Fraction(start) / packet.time_base)
    if packet.pts is not None:
        packet.pts -= shift
    if packet.dts is not None:
        packet.dts -= shift
    return packet


def _encode(writer: VideoWriter, inp: Pipe, start: float, time_base: Fraction) -> None:
    """Encode frames and remux packets in arrival order, shifting timestamps by the trim start."""
    video_shift = round(Fraction(start) / time_base)
    for kind, payload in inp:
        if kind == "frame":
            pixels, pts, duration = payload
            writer.write(pixels, None if pts is None else pts - video_shift, duration)
        else:
            index, packet = payload
            writer.copy(shift_packet(packet, start), index)


def output_size(info: VideoInfo, scale: float, pix_fmt: str) -> tuple[int, int]:
    """Width and height of the upscaled video (even where the pixel format subsamples chroma)."""
    width, height = round(info.width * scale), round(info.height * scale)
    if "420" in pix_fmt or "422" in pix_fmt:
        return _even(width), _even(height)
    return width, height


@dataclass
class Pumped:
    """What one pass of decode -> model -> encode did: frames, seconds the model was busy, frames reused."""

    frames: int
    busy: float
    reused: int


def pump(reader: VideoReader, writer: VideoWriter, upscaler: Upscaler, reuse_threshold: int | None,
         start: float, size: tuple[int, int], on_frames=None) -> Pumped:
    """Decode, upscale and encode everything `reader` gives, on three workers joined by bounded queues.

    Output timestamps are the input's less the trim `start`; frames are cropped to `size`; `on_frames(n)` is
    called as frames are encoded (a progress bar).
    """
    out_w, out_h = size
    done = Pumped(0, 0.0, 0)
    with Workers() as workers:
        decoded, encoded = workers.pipe(QUEUE_DEPTH), workers.pipe(QUEUE_DEPTH)
        workers.start("srkit-video-decode", _decode, reader, decoded)
        workers.start("srkit-video-encode", _encode, writer, encoded, start, reader.info.time_base)
        pending = []
        reuse = HeldFrames(reuse_threshold)

        def upscale_pending() -> None:
            began = time.perf_counter()
            # Frame reuse hook (pipelines/reuse.py): held frames skip the model and take the key frame's output.
            held = reuse.held([frame.pixels for frame in pending])
            fresh = [frame.pixels for frame, repeat in zip(pending, held) if not repeat]
            results = reuse.outputs(held, upscaler.upscale_frames(fresh) if fresh else [])
            done.busy += time.perf_counter() - began
            for frame, pixels in zip(pending, results):
                encoded.put(("frame", (pixels[:out_h, :out_w], frame.pts, frame.duration)))
            done.frames += len(pending)
            if on_frames:
                on_frames(len(pending))
            pending.clear()

        for kind, payload in decoded:
            if kind == "frame":
                pending.append(payload)
                if len(pending) >= upscaler.batch:
                    upscale_pending()
            else:
                encoded.put((kind, payload))  # copied streams' packets; the muxer interleaves them by time
        if pending:
            upscale_pending()
        encoded.close()
        workers.join()
    done.reused = reuse.reused
    return done


def check_complete(reader: VideoReader, frames: int, allow_truncated: bool) -> None:
    """Raise VideoError if the range gave no frames, or if the input ended early and that is not allowed."""
    if frames == 0:
        raise VideoError(f"{reader.info.path}: no frames were decoded in the requested range")
    missing = reader.truncated()
    if missing and not allow_truncated:
        raise VideoError(f"{missing}; nothing was written: pass --allow-truncated to keep the frames that decode")
    if missing:
        warn(missing)


def upscale_video(source: str | Path, target: str | Path, upscaler: Upscaler, options: VideoOptions,
                  probe: VideoInfo | None = None, overwrite: bool = False) -> VideoSummary:
    """Upscale `source` into `target` (written to a partial file, published when complete; a target that exists
    by then, another run's output included, is replaced only with `overwrite`).

    `probe` is `io.video.probe(source)` when the caller has it (the file is then not probed again); call
    `io.video.plan_output(target, probe, options.encode)` first to refuse an impossible codec/container before
    loading a model.
    """
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise VideoError(f"{target}: refusing to overwrite the input video; choose another -o")
    info = probe or probe_file(source)
    if info.frames == 0:
        raise VideoError(f"{source}: the video stream has no frames")
    plan = plan_output(target, info, options.encode)
    for line in plan.warnings:
        warn(line)
    deinterlace = deinterlace_mode(info, options.deinterlace)
    size = output_size(info, upscaler.output_scale, plan.settings.pix_fmt)
    start = time.perf_counter()
    bar = tqdm(total=_expected_frames(info, options), unit="frame", dynamic_ncols=True, disable=None)
    try:
        with signals_interrupt(), \
                VideoReader(info, options.start, options.duration, options.max_frames, deinterlace,
                            on_warning=warn) as reader, \
                VideoWriter(target, info, *size, plan, copy_from=reader.container,
                            chapters=trim_chapters(reader.container.chapters(), options.start,
                                                   options.duration), overwrite=overwrite,
                            start=options.start) as writer:
            done = pump(reader, writer, upscaler, options.reuse_threshold, options.start, size, bar.update)
            check_complete(reader, done.frames, options.allow_truncated)
            if reader.repaired:
                warn(f"{source}: repaired the timestamps of {reader.repaired} of {done.frames} frames (out of "
                      "order, duplicated or missing): frames are written in presentation order")
    except (av.error.FFmpegError, OSError) as error:
        if isinstance(error, SrkitError):
            raise
        raise VideoError(f"{source} -> {target}: {error}") from error
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return VideoSummary(done.frames, reader.corrupt, seconds, done.busy / seconds if seconds else 0.0,
                        reader.repaired, done.reused)
