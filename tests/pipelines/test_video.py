"""srkit upscale on video files, end to end through the CLI, checked with PyAV as an independent prober."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from srkit.cli import main
from srkit.io.video.probe import probe
from srkit.io.video.reader import read_frames

from ..io.video._clips import BUNNY, COLOUR_TOLERANCE, PATCHES, centres, make_clip

VFR_PTS = [0, 40, 50, 130, 135, 300, 340, 380]
# Two H.264 generations at crf 10 (the test clip, then srkit's output), each within COLOUR_TOLERANCE.
TWO_GENERATIONS = 2 * COLOUR_TOLERANCE


def _video_pts_ms(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(round(float(f.pts * f.time_base) * 1000) for f in container.decode(stream))


def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        return [bytes(p) for p in container.demux(*streams) if p.size] if streams else []


def test_vfr_clip_keeps_every_timestamp_audio_subtitles_and_rotation(models, capsys):
    clip = models / "vfr.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=len(VFR_PTS), pts=VFR_PTS, rotation=90, audio=True, subtitle=True)
    out = models / "out.mkv"
    assert main(["upscale", str(clip), "-o", str(out), "-m", "tiny", "--preset", "ultrafast"]) == 0
    assert f"{len(VFR_PTS)} frames" in capsys.readouterr().err
    info = probe(out)
    assert (info.width, info.height, info.rotation, info.matrix) == (144, 96, 90, "itu601")
    assert _video_pts_ms(out) == VFR_PTS
    assert _packets(out, "audio") == _packets(clip, "audio") != []
    assert _packets(out, "subtitle") == _packets(clip, "subtitle") == [b"hello", b"world"]
    assert not [p for p in models.iterdir() if ".partial~" in p.name]


@pytest.mark.parametrize("height,width,matrix,tag", [(32, 48, "itu601", 5), (720, 1280, "itu709", 1)])
def test_flat_colours_survive_the_round_trip(models, height, width, matrix, tag):
    clip = models / "patches.mkv"
    make_clip(clip, height, width, matrix, tag, frames=2)
    out = models / "patches-x4.mkv"
    assert (
        main(["upscale", str(clip), "-o", str(out), "-m", "nearest", "--crf", "10", "--frames", "1", "--tile", "512"])
        == 0
    )
    frame = next(iter(read_frames(out, probe(out)))).pixels
    assert frame.shape == (height * 4, width * 4, 3)
    assert np.abs(centres(frame) - PATCHES).max() <= TWO_GENERATIONS
    with av.open(str(out)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.colorspace, ctx.color_primaries) == (tag, tag)


def test_real_clip_preview_and_trim(models):
    out = models / "bunny.mp4"
    assert (
        main(
            [
                "upscale",
                str(BUNNY),
                "-o",
                str(out),
                "-m",
                "nearest",
                "--frames",
                "3",
                "--preset",
                "ultrafast",
                "-s",
                "0.5",
            ]
        )
        == 0
    )
    info = probe(out)
    assert (info.width, info.height, len(_video_pts_ms(out))) == (640, 360, 3)
    assert _packets(out, "audio"), "the audio stream was dropped"
    clip = models / "long.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=25)  # 1 s at 25 fps
    trimmed = models / "trimmed.mkv"
    assert main(["upscale", str(clip), "-o", str(trimmed), "-m", "tiny", "--start", "0.4", "--duration", "0.4"]) == 0
    assert _video_pts_ms(trimmed) == [0, 40, 80, 120, 160, 200, 240, 280, 320, 360]


def test_truncated_file_is_an_error_unless_allowed(models, capsys):
    clip = models / "whole.mkv"
    rng = np.random.default_rng(0)
    make_clip(clip, 32, 48, "itu601", 5, frames=20, content=lambda i: rng.integers(0, 256, (32, 48, 3), np.uint8))
    cut = models / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    out = models / "cut-x3.mkv"
    assert main(["upscale", str(cut), "-o", str(out), "-m", "tiny"]) == 1
    assert "of about 20 frames decoded (the file is truncated)" in capsys.readouterr().err
    assert not out.exists() and not [p for p in models.iterdir() if ".partial~" in p.name]
    assert main(["upscale", str(cut), "-o", str(out), "-m", "tiny", "--allow-truncated"]) == 0
    assert "of about 20 frames decoded" in capsys.readouterr().err
    assert 0 < len(_video_pts_ms(out)) < 20


def test_bad_inputs_and_options_write_nothing(models, capsys):
    clip = models / "clip.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=2)
    out = models / "o.mkv"
    assert main(["upscale", str(clip), "-o", str(out), "-m", "tiny", "--codec", "no_such_codec"]) == 2
    assert "encoder 'no_such_codec' is not in this PyAV build; available:" in capsys.readouterr().err
    assert main(["upscale", str(clip), "-o", str(out), "-m", "tiny", "--start", "5"]) == 1
    assert "no frames were decoded in the requested range" in capsys.readouterr().err
    assert main(["upscale", str(clip), "-o", str(clip), "-m", "tiny"]) == 2
    assert "-o is this input itself" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["upscale", str(clip), "-o", str(out), "--encoder-opt", "novalue"])
    assert sorted(p.name for p in models.iterdir() if p.suffix == ".mkv") == ["clip.mkv"]


def test_an_interrupt_leaves_no_output(models, monkeypatch):
    clip = models / "clip.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=6)
    import srkit.upscaler

    calls = {"n": 0}
    real = srkit.upscaler.Upscaler.upscale

    def interrupt_on_third(self, image, on_progress=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, image, on_progress)

    monkeypatch.setattr(srkit.upscaler.Upscaler, "upscale", interrupt_on_third)
    # the clip's frames are all equal: without --reuse-frames off only the first would reach the model
    assert main(["upscale", str(clip), "-o", str(models / "o.mkv"), "-m", "tiny", "--reuse-frames", "off"]) == 130
    assert sorted(p.name for p in models.iterdir() if p.is_file()) == ["clip.mkv", "nearest.pth", "tiny.pth"]


def test_chapters_are_kept_and_trimmed_and_duration_matches(models):
    from fractions import Fraction

    clip = models / "chapters.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=25, audio=True)
    with_chapters = models / "with-chapters.mkv"
    with av.open(str(clip)) as src, av.open(str(with_chapters), "w") as dst:
        mapping = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        dst.set_chapters(
            [
                {"id": 1, "start": 0, "end": 500, "time_base": Fraction(1, 1000), "metadata": {"title": "a"}},
                {"id": 2, "start": 500, "end": 1000, "time_base": Fraction(1, 1000), "metadata": {"title": "b"}},
            ]
        )
        for packet in src.demux():
            if packet.size:
                packet.stream = mapping[packet.stream.index]
                dst.mux(packet)
    out = models / "out.mkv"
    assert main(["upscale", str(with_chapters), "-o", str(out), "-m", "tiny", "--batch", "3"]) == 0
    with av.open(str(with_chapters)) as a, av.open(str(out)) as b:
        assert [c["metadata"]["title"] for c in b.chapters()] == ["a", "b"]
        assert abs(a.duration - b.duration) / 1e6 <= 1 / 25, "output duration is off by more than one frame"
    trimmed = models / "trimmed.mkv"
    assert main(["upscale", str(with_chapters), "-o", str(trimmed), "-m", "tiny", "--start", "0.6"]) == 0
    with av.open(str(trimmed)) as container:
        chapters = container.chapters()
    assert [c["metadata"]["title"] for c in chapters] == ["b"]
    assert chapters[0]["start"] == 0 and abs(float(chapters[0]["end"] * chapters[0]["time_base"]) - 0.4) < 1e-6


def test_a_corrupt_packet_in_the_middle_is_reported_and_skipped_in_sync(models, capsys):
    rng = np.random.default_rng(5)
    clip = models / "noise.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=20, content=lambda i: rng.integers(0, 256, (32, 48, 3), np.uint8))
    bad = models / "bad.mkv"
    with av.open(str(clip)) as src, av.open(str(bad), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.size]
        for index, packet in enumerate(packets):
            if index == 8:  # an IDR slice header followed by garbage: the decoder rejects it
                garbage = av.Packet(bytes([0, 0, 0, 1, 0x65]) + rng.integers(0, 256, packet.size, np.uint8).tobytes())
                garbage.pts, garbage.dts, garbage.time_base = packet.pts, packet.dts, packet.time_base
                packet = garbage
            packet.stream = out
            dst.mux(packet)
    target = models / "bad-x3.mkv"
    assert main(["upscale", str(bad), "-o", str(target), "-m", "tiny"]) == 0
    err = capsys.readouterr().err
    # With frame-threaded decoding the error surfaces a packet or two later, so only "near" a pts is claimed.
    assert "skipped a corrupt video packet near pts" in err and "1 corrupt packets skipped" in err
    kept = _video_pts_ms(target)
    assert len(kept) == 19 and set(kept) < set(range(0, 800, 40)), "frames lost sync with their timestamps"


def test_ten_bit_video_goes_through_the_16_bit_path(models):
    clip = models / "deep.mkv"
    make_clip(clip, 64, 96, "itu709", 1, frames=2, pix_fmt="yuv420p10le")  # x265 aborts on frames below 64 px
    out = models / "deep-x4.mkv"
    assert (
        main(
            [
                "upscale",
                str(clip),
                "-o",
                str(out),
                "-m",
                "nearest",
                "--codec",
                "libx265",
                "--crf",
                "8",
                "--pix-fmt",
                "yuv420p10le",
                "--encoder-opt",
                "x265-params=log-level=error",
            ]
        )
        == 0
    )
    info = probe(out)
    assert info.deep and info.pix_fmt == "yuv420p10le" and (info.width, info.height) == (384, 256)
    frame = next(iter(read_frames(out, info))).pixels
    assert frame.dtype == np.uint16 and np.abs(centres(frame) / 257 - PATCHES).max() <= TWO_GENERATIONS


def test_encoder_options_the_encoder_does_not_take_are_refused_before_any_work(models, capsys):
    clip = models / "clip.mkv"
    make_clip(clip, 32, 48, "itu601", 5, frames=2)
    out = models / "o.mkv"

    def refused(*options: str) -> str:
        args = [arg for option in options for arg in ("--encoder-opt", option)]
        assert main(["upscale", str(clip), "-o", str(out), "-m", "tiny", *args]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srkit: error:")]
        assert len(errors) == 1, errors
        return errors[0]

    line = refused("bogus=1", "g=5")
    assert "--encoder-opt bogus=1: libx264 has no such option" in line and "g=5" not in line
    assert "libx264 refuses these values" in refused("preset=nonsense")
    assert not out.exists()
    assert main(["upscale", str(clip), "-o", str(out), "-m", "tiny", "--encoder-opt", "g=5"]) == 0
    with av.open(str(out)) as container:
        assert sum(1 for frame in container.decode(video=0)) == 2
