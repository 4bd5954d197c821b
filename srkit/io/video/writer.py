"""Write one output: RGB frames encoded with the planned settings (or an encoded stream remuxed), the copied
streams' packets, chapters, metadata and colour tags, into a partial file published only on a clean close.

`VideoWriter` converts back with the input's matrix and range, tags primaries, transfer, matrix, range and
rotation, gives every packet its frame's duration, and renames its temporary file only on a clean close; it can
remux an encoded video stream instead (the join of a segmented run).
"""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
import av.codec.context
import av.container
import av.error
import av.stream
import av.video.stream
import numpy as np
from av.subtitles.subtitle import SubtitleSet
from av.video.stream import VideoStream

from ..atomic import discard, partial_path, publish
from ..images import codes_8bit
from .colour import RANGE_JPEG, RANGE_MPEG, TAGS, TO_YUV
from .errors import VideoError
from .output import OutputPlan, container_format
from .probe import VideoInfo
from .timestamps import shift_timecode

if TYPE_CHECKING:
    from av.container.core import Chapter  # a type of PyAV's stubs only

DTS_SKEW_SECONDS = 10  # no real encoder delays decoding by more than this behind presentation


class VideoWriter:
    """Context manager writing RGB frames (and copied packets) to a partial file, published as `path` when the
    block ends cleanly (an existing file replaced only with `overwrite`: io.atomic) and removed when it raises.

    `plan` is output.plan_output's for this path and input. With `video_from` (a stream of an already encoded
    file) the video is remuxed, packet by packet through `remux`, instead of encoded: the join of a segmented run.
    `start` is where in the source the output begins (the trim): the source's timecode moves with it. Files are
    written bit-exact (no random container UIDs), so the same packets always give the same bytes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        source: VideoInfo,
        width: int,
        height: int,
        plan: OutputPlan,
        copy_from: av.container.InputContainer | None = None,
        chapters: list[Chapter] | None = None,
        video_from: VideoStream | None = None,
        overwrite: bool = False,
        start: float | Fraction = 0.0,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.tmp = partial_path(self.path)
        try:
            self.container = av.open(
                str(self.tmp), "w", format=container_format(self.path), container_options={"fflags": "+bitexact"}
            )
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoError(f"{self.path}: cannot create output ({error})") from None
        self.source = source
        self.encoding = video_from is None
        self.stream: VideoStream
        if video_from is None:
            self.stream = self._encoder(plan, width, height)
        else:
            self.stream = self.container.add_stream_from_template(video_from)
            self.stream.time_base = source.time_base
        if source.rotation:
            self.stream.set_display_rotation(source.rotation)
        self.copied: dict[int, av.stream.Stream] = {}
        self.decoders: dict[int, Any] = {}  # text subtitle decoders (PyAV's stubs type no subtitle contexts)
        if copy_from is not None:
            for stream in copy_from.streams:
                if stream.index in plan.copied:
                    out = self.container.add_stream_from_template(stream)
                    out.metadata.update(stream.metadata)
                    out.disposition = stream.disposition
                    self.copied[stream.index] = out
                elif stream.index in plan.converted:
                    self.copied[stream.index] = self._text_subtitles(stream, plan.converted[stream.index])
                elif stream.index in plan.attached:
                    attachment: Any = stream  # PyAV's stubs type attachments as plain streams
                    self.container.add_attachment(attachment.name, attachment.mimetype, bytes(attachment.data))
            self.container.metadata.update(copy_from.metadata)
            if source.timecode:
                self.container.metadata.pop("timecode", None)  # the video stream's tag is the one kept
                self.stream.metadata["timecode"] = shift_timecode(source.timecode, source.average_rate, start)
                if source.average_rate:  # the timecode track's rate (a remuxed stream has none of its own)
                    self.stream.codec_context.framerate = source.average_rate
            chapters = copy_from.chapters() if chapters is None else chapters
        if chapters:
            self.container.set_chapters(chapters)
        self.out_format = "rgb48le" if source.deep and _is_deep(plan.pix_fmt) else "rgb24"
        self.last_dts: int | None = None
        self.max_skew = round(DTS_SKEW_SECONDS / source.time_base)
        self.durations: dict[int, int] = {}
        self.busy = threading.Lock()  # held while encoding or muxing

    def _encoder(self, plan: OutputPlan, width: int, height: int) -> VideoStream:
        """The output video stream, encoding as `plan` says and tagged with the input's colour."""
        source, settings = self.source, plan.settings
        stream = cast(VideoStream, self.container.add_stream(plan.codec, rate=source.average_rate or Fraction(25)))
        stream.width, stream.height = width, height
        stream.pix_fmt = plan.pix_fmt
        stream.time_base = source.time_base
        stream.codec_context.time_base = source.time_base  # else pts are rounded to 1/rate: VFR would be lost
        options: dict[str, object] = dict(settings.options or {})
        if settings.crf is not None and "crf" not in options:
            options["crf"] = str(settings.crf)
        if settings.preset and "preset" not in options:
            options["preset"] = settings.preset
        stream.options = options
        primaries, trc, matrix = TAGS[source.matrix]
        primaries = source.primaries if source.primaries != 2 else primaries  # the input's own tags win
        trc = source.transfer if source.transfer != 2 else trc
        context = stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace = primaries, trc, matrix
        context.color_range = RANGE_JPEG if source.full_range else RANGE_MPEG
        return stream

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, pixels: np.ndarray, pts: int | None, duration: int | None = None) -> None:
        """Encode one RGB frame with its timestamp and duration (uint16 pixels for 16-bit paths)."""
        with self.busy:
            self._write(pixels, pts, duration)

    def _write(self, pixels: np.ndarray, pts: int | None, duration: int | None) -> None:
        if self.out_format == "rgb24" and pixels.dtype == np.uint16:
            pixels = codes_8bit(pixels)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=self.out_format)
        dst_range = "JPEG" if self.source.full_range else "MPEG"
        frame = frame.reformat(
            format=self.stream.pix_fmt,
            src_colorspace=self.source.matrix,
            dst_colorspace=self.source.matrix,
            src_color_range="JPEG",
            dst_color_range=dst_range,
            interpolation=TO_YUV,
        )
        frame.pts = pts
        frame.time_base = self.source.time_base
        if duration and pts is not None:
            frame.duration = duration
            self.durations[pts] = duration
        self.container.mux(self._checked(self.stream.encode(frame)))

    def _checked(self, packets: list[av.Packet]) -> list[av.Packet]:
        """Give each packet its frame's duration and a valid decode timestamp.

        A dts must not exceed its pts, must increase, and stays within seconds of pts; one that breaks this (libx265
        leaves them uninitialised on streams shorter than its lookahead) is replaced by the smallest value that keeps
        the stream valid. Presentation timestamps are never touched.
        """
        for packet in packets:
            dts, pts = packet.dts, packet.pts
            if pts in self.durations:
                packet.duration = self.durations.pop(pts)
            broken = (
                dts is None
                or (pts is not None and (dts > pts or pts - dts > self.max_skew))
                or (self.last_dts is not None and dts <= self.last_dts)
            )
            if broken and pts is not None:
                packet.dts = pts if self.last_dts is None else min(pts, self.last_dts + 1)
            self.last_dts = packet.dts
        return packets

    def remux(self, packet: av.Packet) -> None:
        """Write one already encoded video packet (of the `video_from` stream's codec) unchanged."""
        if packet.size == 0:
            return
        packet.stream = self.stream
        with self.busy:
            self.container.mux(self._checked([packet]))

    def copy(self, packet: av.Packet, stream_index: int | None = None) -> None:
        """Remux an audio/subtitle packet of the input unchanged (flush packets without data are dropped).

        `stream_index` is the input stream's index, read when the packet was demuxed: a packet handed over from
        another thread may outlive its container, whose stream it can no longer name. Packets of streams the
        output leaves out are dropped.
        """
        if packet.size == 0:
            return
        index = packet.stream.index if stream_index is None else stream_index
        muxed = self._converted(packet, index) if index in self.decoders else packet
        if muxed is not None and index in self.copied:
            muxed.stream = self.copied[index]
            with self.busy:
                self.container.mux(muxed)

    def _text_subtitles(self, source: av.stream.Stream, encoder: str) -> av.stream.Stream:
        """An output stream re-encoding the text subtitles of `source` with `encoder` (their ASS form kept)."""
        decoder: Any = source.codec_context
        decoder.open()  # the decoder makes the ASS header the encoder needs
        out = self.container.add_stream(encoder)
        context: Any = out.codec_context
        out.time_base = context.time_base = source.time_base
        context.subtitle_header = decoder.subtitle_header
        out.metadata.update(source.metadata)
        out.disposition = source.disposition
        self.decoders[source.index] = decoder
        return out

    def _converted(self, packet: av.Packet, index: int) -> av.Packet | None:
        """One text subtitle packet decoded to its ASS events and encoded for the output stream (None: empty)."""
        encoder: Any = self.copied[index].codec_context
        events = b"".join(rect.ass for rect in self.decoders[index].decode(packet))
        if not events:
            return None
        made = encoder.encode_subtitle(SubtitleSet.create(events, 0, packet.duration or 0, packet.pts or 0))
        made.pts, made.dts, made.duration, made.time_base = packet.pts, packet.pts, packet.duration, packet.time_base
        return made

    def close(self) -> None:
        """Flush the encoder, finish the container and move it to its final name."""
        try:
            if self.encoding:
                self.container.mux(self._checked(self.stream.encode()))
            self.container.close()
        except av.error.FFmpegError as error:
            self.abort()
            raise VideoError(f"{self.path}: the encoder or muxer failed while finishing ({error})") from None
        try:
            publish(self.tmp, self.path, self.overwrite)
        finally:
            discard(self.tmp)

    def abort(self) -> None:
        """Drop everything written so far (no file under the final name).

        A worker thread still inside an encode call (one that outlived the run's bounded join) keeps the
        container: it is not closed under that thread's feet, only its file is removed.
        """
        if self.busy.acquire(timeout=0):
            try:
                self.container.close()
            except (av.error.FFmpegError, ValueError):
                pass
            finally:
                self.busy.release()
        discard(self.tmp)


def _is_deep(pix_fmt: str) -> bool:
    return any(tag in pix_fmt for tag in ("10", "12", "16"))
