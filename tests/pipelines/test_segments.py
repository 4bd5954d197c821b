"""Segmented video runs (pipelines/segments.py): the same output as the streaming pipeline, and kill -9 + --resume.

Inputs are made by Debian's ffmpeg CLI and outputs judged by ffmpeg/ffprobe, independent of PyAV: frame count and
times, stream MD5s, chapters, clean decoding through the joins, PSNR against the unsegmented run. A 3.2 s clip
with a keyframe every 0.32 s and --segment-seconds 0.64 gives five segments.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srkit.cli import main
from srkit.io.video.demux import scan_packets
from srkit.io.video.output import EncodeSettings
from srkit.io.video.probe import probe
from srkit.io.video.reader import VideoReader
from srkit.pipelines import batch_plan, join, segment_unit, segments, video
from srkit.pipelines.segment_plan import plan_segments
from srkit.pipelines.video_types import Segment, VideoOptions

from ..io.video._clips import decodes_cleanly, ffmpeg, ffprobe, gray_frames, stream_md5

SEGMENTS = 5
SEGMENT_ARGS = ["--segment-seconds", "0.64"]
RUN_ARGS = ["-m", "tiny", "--preset", "ultrafast", "--crf", "10", "--reuse-frames", "off"]
MIN_PSNR = 45.0  # dB, every frame of the segmented run against the unsegmented one (the encoder restarts)
CHAPTERS = (
    ";FFMETADATA1\ntitle=Segments\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=one\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1500\nEND=3200\ntitle=two\n"
)
SUBTITLES = "1\n00:00:00,500 --> 00:00:01,300\nhello\n\n2\n00:00:02,350 --> 00:00:03,000\nworld\n"
# Runs srkit in a child that SIGKILLs itself at the n-th call of one function: a kill -9 at an exact point.
KILLER = """
import os, signal, sys
from srkit.io.video import writer
from srkit.pipelines import segments, workfolder
phase, count = sys.argv[1], int(sys.argv[2])
owner, name = {"segment": (writer.VideoWriter, "write"), "join": (writer.VideoWriter, "remux"),
               "rename-before": (segments, "publish_durably"), "rename-after": (workfolder.WorkFolder, "remove")}[phase]
real, calls = getattr(owner, name), [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == count:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(owner, name, dying)
from srkit.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture
def clip(tmp_path) -> Path:
    """3.2 s of 48x32 H.264 with B-frames and a keyframe every 8 frames, Opus audio, SRT subtitles, chapters."""
    meta, srt, path = tmp_path / "meta.txt", tmp_path / "subs.srt", tmp_path / "clip.mkv"
    meta.write_text(CHAPTERS)
    srt.write_text(SUBTITLES)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=48x32:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000",
        "-i",
        srt,
        "-i",
        meta,
        "-t",
        "3.2",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:s",
        "-map_metadata",
        "3",
        "-map_chapters",
        "3",
        "-c:v",
        "libx264",
        "-g",
        "8",
        "-bf",
        "3",
        "-c:a",
        "libopus",
        "-c:s",
        "srt",
        path,
    )
    return path


def timing(path: Path) -> list[tuple[str, str]]:
    """(pts_time, duration_time) of every video frame, as ffprobe reads them."""
    frames = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time,duration_time")["frames"]
    return [(frame["pts_time"], frame.get("duration_time")) for frame in frames]


def chapters(path: Path) -> list[tuple[str, str, str]]:
    return [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in ffprobe(path, "-show_chapters")["chapters"]]


def title(path: Path) -> str | None:
    return {k.lower(): v for k, v in ffprobe(path, "-show_format")["format"].get("tags", {}).items()}.get("title")


def min_psnr(a: Path, b: Path, width: int, height: int) -> float:
    """The lowest per-frame PSNR (dB) between two videos, on luma decoded by ffmpeg."""
    x, y = gray_frames(a, width, height), gray_frames(b, width, height)
    assert x.shape == y.shape
    mse = ((x - y) ** 2).reshape(len(x), -1).mean(1)
    return float((10 * np.log10(255.0**2 / np.maximum(mse, 1e-12))).min())


def upscale(*args: str | Path) -> int:
    return main(["upscale", *RUN_ARGS, *map(str, args)])  # later options win


def work_folder(out: Path) -> Path:
    return out.with_name(f".{out.name}.srkit")


def test_the_plan_cuts_at_keyframes_and_follows_the_trim(clip):
    info = probe(clip)
    times = scan_packets(info)
    plan = plan_segments(info, VideoOptions(EncodeSettings(), segment_seconds=0.64), times)
    assert len(plan) == SEGMENTS and plan[0].start == 0 and plan[-1].end is None
    keyframes = {
        float(p["pts_time"])
        for p in ffprobe(clip, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags")["packets"]
        if "K" in p["flags"]
    }
    assert {float(s.start) for s in plan[1:]} <= keyframes
    assert sum(s.frames for s in plan) == len(ffprobe(clip, "-show_frames", "-select_streams", "v:0")["frames"])
    assert len(plan_segments(info, VideoOptions(EncodeSettings(), segment_seconds=0), times)) == 1
    assert len(plan_segments(info, VideoOptions(EncodeSettings(), segment_seconds=30), times)) == 1
    trimmed = plan_segments(info, VideoOptions(EncodeSettings(), start=0.5, max_frames=40, segment_seconds=0.64), times)
    assert trimmed[0].start == 0.5 and sum(s.frames for s in trimmed) == 40 and len(trimmed) > 1
    assert {float(s.start) for s in trimmed[1:]} <= keyframes


def test_a_start_at_a_frame_time_counts_that_frame_as_the_reader_takes_it(tmp_path):
    clip = tmp_path / "video.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=25", "-t", "2", "-c:v", "libx264", "-g", "8", clip)
    times = [float(pts) for pts, _ in timing(clip)]
    assert 0.4 in times  # the float 0.4 lies just above 2/5, the frame's exact time
    info = probe(clip)
    plan = plan_segments(info, VideoOptions(EncodeSettings(), start=0.4, segment_seconds=0.64))
    with VideoReader(info, 0.4, copy=False) as reader:
        decoded = sum(1 for kind, _ in reader if kind == "frame")
    assert sum(segment.frames for segment in plan) == decoded == sum(1 for t in times if t >= 0.4) == 40


def test_a_streamed_video_is_a_run_of_one_segment_and_each_run_plans_its_output_once(models, clip, monkeypatch):
    """Streamed and segmented runs encode through the same segment step; the streamed one's only segment is the
    output itself (no work folder), and each run makes its output plan once (the batch planner's, which the video
    pipeline takes)."""
    units, plans = [], []
    real_encode, real_plan = segment_unit.encode_segment, video.plan_output

    def recording_encode(upscaler, unit, *args):
        units.append(unit)
        return real_encode(upscaler, unit, *args)

    def counting_plan(target, *args):
        plans.append(Path(target))
        return real_plan(target, *args)

    monkeypatch.setattr(video, "encode_segment", recording_encode)
    monkeypatch.setattr(segments, "encode_segment", recording_encode)
    monkeypatch.setattr(video, "plan_output", counting_plan)
    monkeypatch.setattr(batch_plan, "plan_output", counting_plan)
    streamed, joined = models / "streamed.mkv", models / "joined.mkv"
    assert upscale(clip, "-o", streamed, "--segment-seconds", "0") == 0
    assert [(unit.path, unit.whole) for unit in units] == [(streamed, True)] and plans == [streamed]
    units.clear()
    assert upscale(clip, "-o", joined, *SEGMENT_ARGS) == 0
    assert len(units) == SEGMENTS and not any(unit.whole for unit in units)
    assert {unit.path.parent for unit in units} == {work_folder(joined).absolute()}
    assert plans == [streamed, joined]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_segmented_output_matches_the_streaming_one(models, clip, suffix, capsys):
    joined, streamed = models / f"joined{suffix}", models / f"streamed{suffix}"
    assert upscale(clip, "-o", joined, *SEGMENT_ARGS) == 0
    assert f"segments: {SEGMENTS} encoded, 0 kept" in capsys.readouterr().err
    assert upscale(clip, "-o", streamed, "--segment-seconds", "0") == 0
    assert decodes_cleanly(joined), "the joins do not decode cleanly"
    assert timing(joined) == timing(streamed)
    assert [t for t, _ in timing(joined)] == [t for t, _ in timing(clip)]
    assert stream_md5(joined, "0:a:0") == stream_md5(streamed, "0:a:0") == stream_md5(clip, "0:a:0")
    assert stream_md5(joined, "0:s:0") == stream_md5(streamed, "0:s:0")
    assert chapters(joined) == chapters(streamed) == chapters(clip)
    assert title(joined) == title(streamed) == "Segments"
    assert min_psnr(joined, streamed, 144, 96) >= MIN_PSNR
    assert not work_folder(joined).exists()


def test_a_trimmed_range_is_segmented_alike(models, clip):
    trim = ["--start", "0.5", "--duration", "2.1"]
    joined, streamed = models / "joined.mkv", models / "streamed.mkv"
    assert upscale(clip, "-o", joined, *SEGMENT_ARGS, *trim) == 0
    assert upscale(clip, "-o", streamed, "--segment-seconds", "0", *trim) == 0
    assert decodes_cleanly(joined) and timing(joined) == timing(streamed)
    assert stream_md5(joined, "0:a:0") == stream_md5(streamed, "0:a:0")
    assert chapters(joined) == chapters(streamed)
    assert min_psnr(joined, streamed, 144, 96) >= MIN_PSNR


def _killed_run(phase: str, count: int, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", KILLER, phase, str(count), "upscale", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kill_9_anywhere_then_resume_gives_the_uninterrupted_bytes(models, clip, monkeypatch, capsys):
    reference = models / "reference.mkv"
    assert upscale(clip, "-o", reference, *SEGMENT_ARGS) == 0
    frames = len(timing(reference))  # also the join's video packets
    out = models / "out.mkv"
    args = [str(clip), "-o", str(out), *RUN_ARGS, *SEGMENT_ARGS]
    encoded = []
    real = segments.encode_segment
    monkeypatch.setattr(
        segments, "encode_segment", lambda upscaler, unit: encoded.append(unit.index) or real(upscaler, unit)
    )
    for phase, seed in [("segment", 1), ("segment", 2), ("join", 3), ("rename-before", 4), ("rename-after", 5)]:
        rng = random.Random(seed)
        # "segment": late enough in a segment that its encoder has written packets (x264's frame threads hold
        # some frames back); "join": any video packet of the join; "rename-*": the one call
        count = {
            "segment": frames // SEGMENTS * rng.randrange(SEGMENTS) + rng.randint(12, frames // SEGMENTS),
            "join": rng.randint(1, frames),
        }.get(phase, 1)
        killed = _killed_run(phase, count, args, models)
        assert killed.returncode == -signal.SIGKILL, (phase, killed.stderr)
        assert out.exists() == (phase == "rename-after")
        manifest = json.loads((work_folder(out) / "manifest.json").read_text())
        finished = [i for i, segment in enumerate(manifest["segments"]) if segment["sha256"]]
        if phase == "segment":
            assert len(finished) < SEGMENTS
            left = sorted(p.name for p in work_folder(out).iterdir())
            assert [name for name in left if name.startswith(".segment-")], f"no half-written segment: {left}"
        else:
            assert len(finished) == SEGMENTS
        encoded.clear()
        capsys.readouterr()
        assert main(["upscale", *args, "--resume"]) == 0, (phase, capsys.readouterr().err)
        assert sorted(encoded) == sorted(set(range(SEGMENTS)) - set(finished)), "finished segments were redone"
        assert out.read_bytes() == reference.read_bytes(), f"{phase} (seed {seed}): not the uninterrupted bytes"
        assert not work_folder(out).exists()
        out.unlink()


def test_a_work_folder_needs_resume_and_the_same_input_and_options(models, clip, monkeypatch, capsys):
    out = models / "out.mkv"
    real, calls = segments.encode_segment, []

    def interrupted_third(upscaler, unit):
        calls.append(unit.index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(upscaler, unit)

    monkeypatch.setattr(segments, "encode_segment", interrupted_third)
    assert upscale(clip, "-o", out, *SEGMENT_ARGS) == 130
    assert f"2 of {SEGMENTS} segments of {out} are kept in" in capsys.readouterr().err
    monkeypatch.setattr(segments, "encode_segment", real)
    assert not out.exists() and not list(work_folder(out).glob(".*partial~*"))

    def one_error(*args: str) -> str:
        assert upscale(clip, "-o", out, *SEGMENT_ARGS, *args) == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srkit: error:")]
        assert len(errors) == 1
        return errors[0]

    assert "pass --resume to continue it, or --overwrite to start over" in one_error()
    line = one_error("--resume", "--crf", "12", "--start", "0.1")
    assert "--crf 10 -> 12" in line and "--start 0.0 -> 0.1" in line
    clip.write_bytes(clip.read_bytes() + b"\0")
    line = one_error("--resume")
    assert "input size" in line and "input ends_sha256" in line
    assert work_folder(out).exists() and not out.exists()
    assert upscale(clip, "-o", out, *SEGMENT_ARGS, "--overwrite") == 0
    assert f"segments: {SEGMENTS} encoded, 0 kept" in capsys.readouterr().err
    assert decodes_cleanly(out) and not work_folder(out).exists()


def frame_count(path: Path) -> int:
    """Frames ffprobe decodes from the first video stream."""
    stream = ffprobe(path, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames")
    return int(stream["streams"][0]["nb_read_frames"])


@pytest.fixture(params=[(0, "vob"), (2, "vob"), (2, "mpegts")], ids=["ps", "ps-b-frames", "ts-b-frames"])
def mpeg2_clip(request, tmp_path) -> Path:
    """2.4 s of 64x36 MPEG-2 with MP2 audio, an I frame every 11, in a program (.mpg) or transport stream (.ts):
    containers without an index, where a seek lands on any packet near the time asked for."""
    bframes, muxer = request.param
    path = tmp_path / ("clip.mpg" if muxer == "vob" else "clip.ts")
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x36:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000",
        "-t",
        "2.4",
        "-c:v",
        "mpeg2video",
        "-bf",
        str(bframes),
        "-g",
        "11",
        "-c:a",
        "mp2",
        "-f",
        muxer,
        path,
    )
    return path


def test_mpeg2_program_and_transport_streams_keep_every_frame_at_the_cuts(models, mpeg2_clip, capsys):
    joined, streamed = models / "joined.mkv", models / "streamed.mkv"
    assert upscale(mpeg2_clip, "-o", joined, "--segment-seconds", "1") == 0
    assert "segments: 2 encoded, 0 kept" in capsys.readouterr().err
    assert upscale(mpeg2_clip, "-o", streamed, "--segment-seconds", "0") == 0
    assert frame_count(joined) == frame_count(streamed) == frame_count(mpeg2_clip) == 60
    assert decodes_cleanly(joined) and timing(joined) == timing(streamed)
    assert stream_md5(joined, "0:a:0") == stream_md5(streamed, "0:a:0")
    assert min_psnr(joined, streamed, 192, 108) >= MIN_PSNR


def test_a_segment_short_of_its_planned_frames_is_an_error_naming_it(models, clip, monkeypatch, capsys):
    def one_frame_more_in_segment_1(info, options, times=None):
        plan = plan_segments(info, options, times)
        plan[1] = Segment(plan[1].start, plan[1].end, plan[1].frames + 1)
        return plan

    monkeypatch.setattr(video, "plan_segments", one_frame_more_in_segment_1)
    out = models / "out.mkv"
    assert upscale(clip, "-o", out, *SEGMENT_ARGS) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srkit: error:")]
    assert len(errors) == 1 and "segment 1 (" in errors[0] and "where the input holds" in errors[0], errors
    assert not out.exists()


def test_a_join_short_of_the_segments_frames_is_an_error_and_writes_nothing(models, clip, monkeypatch, capsys):
    real = join._segment_packets

    def one_packet_lost(files):
        for position, item in enumerate(real(files)):
            if position != 30:
                yield item

    monkeypatch.setattr(join, "_segment_packets", one_packet_lost)
    out = models / "out.mkv"
    assert upscale(clip, "-o", out, *SEGMENT_ARGS) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srkit: error:")]
    assert len(errors) == 1 and "the join wrote 79 video frames where the segments hold 80" in errors[0], errors
    assert not out.exists()
