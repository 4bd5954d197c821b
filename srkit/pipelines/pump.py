"""Decode, upscale and encode one range of a video on three workers joined by bounded queues.

The reader (io.video.reader.VideoReader) hands over RGB frames in presentation order with repaired timestamps,
plus the copied streams' packets; the model runs on the calling thread, skipping held frames (pipelines/reuse.py);
the writer encodes frames with their timestamps and durations and remuxes the packets. Any failure stops all
three (pipelines/threads.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..io.video.reader import VideoReader
from ..io.video.timestamps import shift_packet
from ..io.video.writer import VideoWriter
from ..upscaler import Upscaler
from .reuse import HeldFrames
from .threads import Pipe, Workers

QUEUE_DEPTH = 8


@dataclass
class Pumped:
    """What one pass of decode -> model -> encode did: frames, seconds the model was busy, frames reused."""

    frames: int
    busy: float
    reused: int


def _decode(reader: VideoReader, out: Pipe) -> None:
    for item in reader:
        out.put(item)
    out.close()


def _encode(writer: VideoWriter, inp: Pipe, start: Fraction, time_base: Fraction) -> None:
    """Encode frames and remux packets in arrival order, shifting timestamps by the trim start."""
    video_shift = round(start / time_base)
    for kind, payload in inp:
        if kind == "frame":
            pixels, pts, duration = payload
            writer.write(pixels, None if pts is None else pts - video_shift, duration)
        else:
            index, packet = payload
            writer.copy(shift_packet(packet, start), index)


def pump(
    reader: VideoReader,
    writer: VideoWriter,
    upscaler: Upscaler,
    reuse_threshold: int | None,
    start: Fraction,
    size: tuple[int, int],
    on_frames: Callable[[int], object] | None = None,
) -> Pumped:
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
