"""Upscale a video file frame by frame: decode, model and encode on three threads joined by bounded queues.

The reader demuxes every stream once, decodes video frames to RGB and passes copied streams' packets along
in demux order; the model runs on the calling thread; the writer encodes frames with their source
timestamps and remuxes the packets. Nothing is reordered or dropped (a corrupt packet is reported and
skipped). Any failure, or Ctrl-C, stops all three and removes the temporary output.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from tqdm import tqdm

from ..errors import SrkitError
from ..io.video import (COPIED_STREAM_TYPES, EncodeSettings, RGBFrame, VideoError, VideoInfo, VideoWriter,
                        trim_chapters)
from ..io.video import probe as probe_file
from ..upscaler import Upscaler

QUEUE_DEPTH = 8
_DONE = object()


@dataclass
class VideoOptions:
    """Encoding and trimming choices for one video."""

    encode: EncodeSettings
    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None


@dataclass
class VideoSummary:
    """Frames written, corrupt packets skipped, seconds taken, and the busy share of the model thread."""

    frames: int
    corrupt: int
    seconds: float
    model_busy: float


class _Stop(Exception):
    """Raised inside a worker when another thread has failed or the run was interrupted."""


class _Pipe:
    """A bounded queue whose put/get give up when the run is stopping."""

    def __init__(self, stop: threading.Event) -> None:
        self.items: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self.stop = stop

    def put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stop

    def get(self):
        while not self.stop.is_set():
            try:
                return self.items.get(timeout=0.1)
            except queue.Empty:
                continue
        raise _Stop


def _window(info: VideoInfo, options: VideoOptions) -> tuple[int | None, int | None]:
    """[first, end) of the kept range in the video stream's time base (None: unbounded)."""
    first = round(options.start / info.time_base) if options.start else None
    end = round((options.start + options.duration) / info.time_base) if options.duration is not None else None
    return first, end


class _Reader(threading.Thread):
    """Demux once: decoded RGB frames of the video stream and raw packets of copied streams, in order."""

    def __init__(self, source: Path, info: VideoInfo, options: VideoOptions, out: _Pipe, report) -> None:
        super().__init__(name="srkit-video-decode", daemon=True)
        self.source, self.info, self.options, self.out, self.report = source, info, options, out, report
        self.error: BaseException | None = None
        self.corrupt = 0

    def run(self) -> None:
        try:
            self._run()
        except _Stop:
            pass
        except BaseException as error:  # handed to the main thread, which stops the run
            self.error = error
        finally:
            try:
                self.out.put(_DONE)
            except _Stop:
                pass

    def _run(self) -> None:
        info, options = self.info, self.options
        first, end = _window(info, options)
        fmt = "rgb48le" if info.deep else "rgb24"
        src_range = "JPEG" if info.full_range else "MPEG"
        frames = 0
        with av.open(str(self.source)) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            if options.start:
                container.seek(first, stream=video, backward=True)
            wanted = [video] + [s for s in container.streams if s.type in COPIED_STREAM_TYPES]
            for packet in container.demux(*wanted):
                if packet.stream.type != "video":
                    if _in_window(packet, packet.stream.time_base, options):
                        self.out.put(("packet", (packet.stream.index, packet)))
                    continue
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as error:
                    self.corrupt += 1
                    self.report(f"{self.source}: skipped a corrupt video packet near pts {packet.pts} ({error})")
                    continue
                for frame in decoded:
                    if first is not None and frame.pts is not None and frame.pts < first:
                        continue
                    if end is not None and frame.pts is not None and frame.pts >= end:
                        return
                    rgb = frame.reformat(format=fmt, src_colorspace=info.matrix, dst_colorspace=info.matrix,
                                         src_color_range=src_range, dst_color_range="JPEG")
                    self.out.put(("frame", RGBFrame(rgb.to_ndarray(), frame.pts, frame.time_base)))
                    frames += 1
                    if options.max_frames is not None and frames >= options.max_frames:
                        return


def _in_window(packet: av.Packet, time_base: Fraction, options: VideoOptions) -> bool:
    if packet.pts is None:
        return True
    seconds = float(packet.pts * time_base)
    if options.start and seconds < options.start:  # without a trim, priming packets (negative pts) are kept
        return False
    return options.duration is None or seconds < options.start + options.duration


class _Writer(threading.Thread):
    """Encode frames and remux packets in the order they arrive, shifting timestamps by the trim start."""

    def __init__(self, writer: VideoWriter, source: VideoInfo, options: VideoOptions, inp: _Pipe) -> None:
        super().__init__(name="srkit-video-encode", daemon=True)
        self.writer, self.inp = writer, inp
        self.shift = Fraction(options.start)
        self.video_shift = round(self.shift / source.time_base)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (item := self.inp.get()) is not _DONE:
                kind, payload = item
                if kind == "frame":
                    pixels, pts = payload
                    self.writer.write(pixels, None if pts is None else pts - self.video_shift)
                else:
                    index, packet = payload
                    shift = round(self.shift / packet.time_base)
                    if packet.pts is not None:
                        packet.pts -= shift
                    if packet.dts is not None:
                        packet.dts -= shift
                    self.writer.copy(packet, index)
        except _Stop:
            pass
        except BaseException as error:
            self.error = error


def _expected_frames(info: VideoInfo, options: VideoOptions) -> int | None:
    """Frames the run should produce (for the progress bar): the smallest known bound, or None."""
    bounds = [info.frames, options.max_frames]
    if options.duration is not None and info.average_rate:
        bounds.append(round(options.duration * float(info.average_rate)))
    known = [bound for bound in bounds if bound]
    return min(known) if known else None


def _even(value: int) -> int:
    return value - value % 2


def upscale_video(source: str | Path, target: str | Path, upscaler: Upscaler, options: VideoOptions,
                  probe: VideoInfo | None = None) -> VideoSummary:
    """Upscale `source` into `target` (written to a temporary file, renamed when complete); `probe`: its probe
    if the caller made one already."""
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise VideoError(f"{target}: refusing to overwrite the input video; choose another -o")
    info = probe or probe_file(source)
    if info.frames == 0:
        raise VideoError(f"{source}: the video stream has no frames")
    width, height = round(info.width * upscaler.scale), round(info.height * upscaler.scale)
    subsampled = "420" in options.encode.pix_fmt or "422" in options.encode.pix_fmt
    out_w, out_h = (_even(width), _even(height)) if subsampled else (width, height)
    total = _expected_frames(info, options)
    stop = threading.Event()
    decoded, encoded = _Pipe(stop), _Pipe(stop)
    with av.open(str(source)) as template:
        chapters = trim_chapters(template.chapters(), options.start, options.duration)
        writer = VideoWriter(target, info, out_w, out_h, options.encode, copy_from=template, chapters=chapters)
    reader = _Reader(source, info, options, decoded, lambda message: tqdm.write(f"srkit: warning: {message}",
                                                                                   file=sys.stderr))
    encoder = _Writer(writer, info, options, encoded)
    frames, busy, start = 0, 0.0, time.perf_counter()
    bar = tqdm(total=total, unit="frame", dynamic_ncols=True, disable=None)
    pending: list[RGBFrame] = []

    def upscale_pending() -> None:
        nonlocal frames, busy
        began = time.perf_counter()
        results = upscaler.upscale_frames([frame.pixels for frame in pending])
        busy += time.perf_counter() - began
        for frame, pixels in zip(pending, results):
            encoded.put(("frame", (pixels[:out_h, :out_w], frame.pts)))
        frames += len(pending)
        bar.update(len(pending))
        pending.clear()

    reader.start()
    encoder.start()
    try:
        while (item := decoded.get()) is not _DONE:
            if item[0] == "frame":
                pending.append(item[1])
                if len(pending) >= upscaler.batch:
                    upscale_pending()
            else:
                encoded.put(item)  # copied streams' packets; the muxer interleaves them by timestamp
            _raise_from(reader, encoder)
        if pending:
            upscale_pending()
        encoded.put(_DONE)
        encoder.join()
        _raise_from(reader, encoder)
        if frames == 0:
            raise VideoError(f"{source}: no frames were decoded in the requested range")
        writer.close()
    except BaseException:
        stop.set()
        reader.join()
        encoder.join()
        writer.abort()
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return VideoSummary(frames, reader.corrupt, seconds, busy / seconds if seconds else 0.0)


def _raise_from(*threads) -> None:
    for thread in threads:
        if thread.error is not None:
            error = thread.error
            if isinstance(error, (av.error.FFmpegError, OSError)) and not isinstance(error, SrkitError):
                raise VideoError(f"{error}") from error
            raise error
