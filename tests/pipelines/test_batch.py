"""srkit upscale on mixed batches through the CLI: what each input is, unusable inputs, videos in folders,
existing outputs, animated images; inputs made and outputs checked with the ffmpeg/ffprobe CLIs and Pillow."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from srkit.cli import main

from ._media import decode_errors, ffmpeg, make_video, video_stream

README = Path(__file__).resolve().parents[2] / "README.md"


def test_inputs_that_cannot_be_processed_are_one_line_each_and_exit_non_zero(models, capsys):
    good = make_video(models / "good.mp4", 10)
    whole = good.read_bytes()
    moov = whole.index(b"moov") - 4
    assert moov > whole.index(b"mdat"), "the test clip must have its index at the end, as a recording does"
    (models / "cut.mp4").write_bytes(whole[:moov])  # the index lost, as when a recording is cut off
    (models / "zero.mp4").write_bytes(b"")
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(models / "audio.m4a"))
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(models / "cover.png")
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=duration=0.5",
        "-i",
        str(models / "cover.png"),
        "-map",
        "0",
        "-map",
        "1",
        "-c:a",
        "aac",
        "-c:v",
        "png",
        "-disposition:v",
        "attached_pic",
        str(models / "cover.m4a"),
    )  # a song with its album cover: still no video
    (models / "notes.txt").write_text("not a picture")
    named = ["cut.mp4", "zero.mp4", "audio.m4a", "cover.m4a", "notes.txt"]
    out = models / "out"
    # -m names no model: nothing is usable, so the model is never loaded (else the exit status would be 2)
    assert main(["upscale", *(str(models / name) for name in named), "-o", str(out), "-m", "not-loaded"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("srkit: error: ")]
    assert len(errors) == 5 and lines[-1].startswith("srkit: done 0, skipped 0, failed 5"), lines
    reasons = {Path(line.split(": ")[2]).name: line for line in errors}
    assert "'moov' atom" in reasons["cut.mp4"] and "cut off" in reasons["cut.mp4"]
    assert "is empty (0 bytes)" in reasons["zero.mp4"]
    assert "has no video stream" in reasons["audio.m4a"]
    assert "has no video stream (only a cover picture)" in reasons["cover.m4a"]
    assert "notes.txt" in reasons and "Traceback" not in "\n".join(lines)
    assert not out.exists()


def test_a_one_frame_video_is_a_video_and_a_still_is_an_image(models):
    one = make_video(models / "one.mp4", 1)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24", "-frames:v", "1", str(models / "still.png"))
    assert main(["upscale", str(one), "-o", str(models / "one-x3.mp4"), "-m", "tiny"]) == 0
    stream = video_stream(models / "one-x3.mp4")
    assert (stream["codec_name"], stream["width"], stream["height"], stream["nb_read_frames"]) == ("h264", 96, 72, "1")
    assert decode_errors(models / "one-x3.mp4") == ""
    assert main(["upscale", str(models / "still.png"), "-o", str(models / "still-x3.png"), "-m", "tiny"]) == 0
    with Image.open(models / "still-x3.png") as image:
        assert (image.format, image.size) == ("PNG", (96, 72))


def test_a_folder_of_photos_and_videos_is_mirrored_and_existing_outputs_follow_the_photo_rules(models, capsys):
    tree = models / "in"
    (tree / "clips").mkdir(parents=True)
    make_video(tree / "clips" / "a.mp4", 5, audio=True)
    make_video(tree / "b.mkv", 3, size="30x20")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (9, 11, 3), np.uint8)).save(tree / "photo.png")
    (tree / "clips" / "song.mp3").write_bytes(b"ID3")  # no image or video: skipped
    (tree / "gone.mp4").symlink_to(tree / "moved-away.mp4")  # a dangling link: one line, the rest goes on
    out = models / "out"
    assert main(["upscale", str(tree), "-o", str(out), "-m", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "done 3, skipped 1, failed 1" in err and "song.mp3: not an image or video file" in err
    assert "gone.mp4: cannot be read (No such file or directory)" in err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "b.mkv",
        "clips/a.mp4",
        "photo.png",
    ]
    for name, size, frames in (("clips/a.mp4", (96, 72), "5"), ("b.mkv", (90, 60), "3")):
        stream = video_stream(out / name)
        assert ((stream["width"], stream["height"]), stream["nb_read_frames"]) == (size, frames)
        assert decode_errors(out / name) == ""
    audio = [
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy", "-f", "md5", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for path in (tree / "clips" / "a.mp4", out / "clips" / "a.mp4")
    ]
    assert audio[0] == audio[1] != ""
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    # A video named alone onto an existing output: refused, then skipped, then replaced, as photos are.
    target = out / "b.mkv"
    assert main(["upscale", str(tree / "b.mkv"), "-o", str(target), "-m", "tiny"]) == 1
    assert f"{target} exists; pass --overwrite or --skip-existing" in capsys.readouterr().err
    (tree / "gone.mp4").unlink()
    assert main(["upscale", str(tree), "-o", str(out), "-m", "tiny", "--skip-existing"]) == 0
    assert "done 0, skipped 4, failed 0" in capsys.readouterr().err
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert (
        main(
            ["upscale", str(tree / "b.mkv"), str(tree / "clips" / "a.mp4"), "-o", str(out), "-m", "tiny", "--overwrite"]
        )
        == 0
    )
    assert target.stat().st_mtime_ns != stamps[target] and video_stream(target)["nb_read_frames"] == "3"
    assert not [p for p in models.rglob("*") if ".partial~" in p.name]


def _animation(path: Path, fmt: str, lossless: bool = True) -> tuple[list[np.ndarray], list[int]]:
    """Four 7x9 frames of six colours with a transparent corner, shown 100/50/200/30 ms, looping 3 times."""
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, (6, 3), np.uint8)
    frames = []
    for _ in range(4):
        rgba = np.concatenate([palette[rng.integers(0, 6, (7, 9))], np.full((7, 9, 1), 255, np.uint8)], axis=2)
        rgba[:2, :3] = 0
        frames.append(rgba)
    images = [Image.fromarray(frame) for frame in frames]
    durations = [100, 50, 200, 30]
    extra = {"GIF": {"disposal": 2}, "WEBP": {"lossless": lossless, "quality": 90}, "PNG": {}}[fmt]
    images[0].save(path, format=fmt, save_all=True, append_images=images[1:], duration=durations, loop=3, **extra)
    return frames, durations


@pytest.mark.parametrize(
    "name,fmt,lossless,tolerance",
    [
        ("a.gif", "GIF", True, 0),
        ("a.png", "PNG", True, 0),
        ("a.webp", "WEBP", True, 0),
        ("a.webp", "WEBP", False, 12),  # lossy in, lossy out: mean error per opaque pixel, in codes
    ],
)
def test_animated_images_stay_animated_with_timing_loop_and_transparency(models, name, fmt, lossless, tolerance):
    source = models / name
    _, durations = _animation(source, fmt, lossless)
    with Image.open(source) as image:  # what the input decodes to (lossy WebP changed its colours already)
        frames = [np.asarray(frame.convert("RGBA")) for frame in ImageSequence.Iterator(image)]
    out = models / "out"
    assert main(["upscale", str(source), "-o", str(out), "-m", "nearest"]) == 0
    with Image.open(out / name) as image:
        assert (image.format, image.size, image.info.get("loop"), image.n_frames) == (fmt, (36, 28), 3, 4)
        for frame, want, duration in zip(ImageSequence.Iterator(image), frames, durations):
            got = np.asarray(frame.convert("RGBA")).astype(int)  # WebP sets a frame's duration when it loads
            assert frame.info["duration"] == duration
            expected = np.asarray(Image.fromarray(want).resize((36, 28), Image.NEAREST)).astype(int)
            opaque = expected[..., 3] == 255
            assert (got[..., 3][~opaque] == 0).all() and (got[..., 3][opaque] == 255).all()
            error = np.abs(got[opaque] - expected[opaque])
            assert (error.max() if lossless else error.mean()) <= tolerance
    if fmt == "GIF":  # FFmpeg's own GIF decoder agrees on the frames
        assert video_stream(out / name)["nb_read_frames"] == "4" and decode_errors(out / name) == ""


def test_an_animation_in_a_folder_is_upscaled_not_skipped(models, capsys):
    (models / "in").mkdir()
    _animation(models / "in" / "spin.gif", "GIF")
    assert main(["upscale", str(models / "in"), "-o", str(models / "out"), "-m", "nearest", "--format", "webp"]) == 0
    assert "done 1, skipped 0, failed 0" in capsys.readouterr().err
    with Image.open(models / "out" / "spin.webp") as image:
        assert image.format == "WEBP" and image.n_frames == 4


def test_readme_command_1_can_be_run_twice_and_the_summary_names_the_output_and_its_size(models, capsys, monkeypatch):
    command = re.search(r"^# 1\..*\n(.*)$", README.read_text(), re.MULTILINE).group(1)
    upscale = shlex.split(command.split("&&")[-1])
    assert upscale[:2] == ["srkit", "upscale"]
    monkeypatch.chdir(README.parent)
    out = models / "sample-x4.png"
    argv = [str(out) if arg == "sample-x4.png" else arg for arg in upscale[1:]] + ["-m", "nearest"]
    for _ in range(2):
        assert main(argv) == 0
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.endswith(f"-> {out} ({out.stat().st_size / 1024:.1f} kB)"), last


def test_a_video_srkit_cannot_write_in_its_container_goes_to_mkv_and_bad_video_options_stop_the_plan(models, capsys):
    tree = models / "in"
    tree.mkdir()
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=32x24:rate=10",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-frames:v",
        "4",
        "-c:v",
        "mpeg4",
        "-c:a",
        "ac3",
        "-shortest",
        str(tree / "old.avi"),
    )
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tree / "photo.png")
    out = models / "out"
    assert main(["upscale", str(tree), "-o", str(out), "-m", "tiny", "--codec", "no_such_codec"]) == 2
    assert "encoder 'no_such_codec' is not in this PyAV build" in capsys.readouterr().err
    assert not out.exists(), "a bad video option must stop the plan before any photo is written"
    assert main(["upscale", str(tree), "-o", str(out), "-m", "tiny"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["old.mkv", "photo.png"]
    assert video_stream(out / "old.mkv")["nb_read_frames"] == "4" and decode_errors(out / "old.mkv") == ""
    audio = [
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy", "-f", "md5", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for path in (tree / "old.avi", out / "old.mkv")
    ]
    assert audio[0] == audio[1] != ""


def test_several_inputs_onto_one_file_name_are_refused_before_any_work(models, capsys):
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(models / name)
    target = models / "out.png"
    assert main(["upscale", str(models / "a.png"), str(models / "b.png"), "-o", str(target), "-m", "tiny"]) == 2
    assert "names one file, but the inputs can give several outputs" in capsys.readouterr().err
    assert not target.exists()
    _animation(models / "spin.gif", "GIF")
    for source, wrong, kind in (("a.png", "out.mp4", "a photo"), ("spin.gif", "out.jpg", "an animated image")):
        assert main(["upscale", str(models / source), "-o", str(models / wrong), "-m", "tiny"]) == 2
        assert f"is {kind}, which cannot be written as {Path(wrong).suffix}" in capsys.readouterr().err
        assert not (models / wrong).exists()


def test_a_video_is_probed_once_and_the_probe_reaches_the_video_pipeline(models, monkeypatch):
    import srkit.io.video.probe
    import srkit.pipelines.batch_plan
    import srkit.pipelines.video

    clip = make_video(models / "clip.mkv", 2)
    probed = []

    def counting_probe(path):
        probed.append(Path(path))
        return srkit.io.video.probe.probe(path)

    for module, name in ((srkit.pipelines.batch_plan, "probe"), (srkit.pipelines.video, "probe_file")):
        monkeypatch.setattr(module, name, counting_probe)
    assert main(["upscale", str(clip), "-o", str(models / "clip-x3.mkv"), "-m", "tiny"]) == 0
    assert probed == [clip]


def test_a_videos_output_is_planned_once_and_the_plan_reaches_the_video_pipeline(models, monkeypatch):
    import srkit.io.video.output
    import srkit.pipelines.batch_plan
    import srkit.pipelines.video

    clip = make_video(models / "clip.mkv", 2)
    planned = []

    def counting_plan(*args, **kwargs):
        planned.append(args[0])
        return srkit.io.video.output.plan_output(*args, **kwargs)

    for module in (srkit.pipelines.batch_plan, srkit.pipelines.video):
        monkeypatch.setattr(module, "plan_output", counting_plan)
    assert main(["upscale", str(clip), "-o", str(models / "clip-x3.mkv"), "-m", "tiny"]) == 0
    assert planned == [models / "clip-x3.mkv"]


def test_sigterm_during_a_batch_stops_it_like_ctrl_c_and_leaves_nothing_half_written(models, monkeypatch):
    import os
    import signal

    import srkit.upscaler

    tree = models / "in"
    tree.mkdir()
    for index in range(3):
        Image.fromarray(np.full((5, 6, 3), 40 * index, np.uint8)).save(tree / f"p{index}.png")
    _animation(tree / "spin.gif", "GIF")
    real = srkit.upscaler.Upscaler.upscale
    calls = {"n": 0}

    def terminated_on_the_fifth_frame(self, image, on_progress=None):
        calls["n"] += 1
        if calls["n"] == 5:  # the photos are done; the GIF is on its second frame
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, image, on_progress)

    monkeypatch.setattr(srkit.upscaler.Upscaler, "upscale", terminated_on_the_fifth_frame)
    out = models / "out"
    assert main(["upscale", str(tree), "-o", str(out), "-m", "nearest"]) == 130
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler was not given back"


def test_an_image_too_large_for_pillow_to_open_is_one_line_not_a_traceback(models, capsys):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)  # 400 MP: over Pillow's own hard limit
    bomb = models / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    )
    assert main(["upscale", str(bomb), "-o", str(models / "out"), "-m", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "bomb.png: 20000x20000 is over the decompression-bomb limit" in err and "Traceback" not in err


def test_a_file_named_twice_is_done_once(models, capsys):
    (models / "in").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(models / "in" / "a.png")
    assert (
        main(["upscale", str(models / "in"), str(models / "in" / "*.png"), "-o", str(models / "out"), "-m", "tiny"])
        == 0
    )
    assert "done 1, skipped 0, failed 0" in capsys.readouterr().err


def test_soft_alpha_edges_in_a_gif_are_cut_at_half_not_made_opaque(tmp_path):
    from srkit.io.animated import Animation, write_animation

    frame = np.zeros((2, 4, 4), np.uint8)
    frame[..., 0] = 200
    frame[..., 3] = [[0, 100, 127, 128], [200, 255, 255, 1]]
    second = frame.copy()
    second[..., 1] = 90  # a different frame: Pillow merges identical neighbours (same playback)
    write_animation(iter([frame, second]), tmp_path / "soft.gif", Animation([frame, second], [40, 40], 0, "GIF"))
    with Image.open(tmp_path / "soft.gif") as image:
        assert image.n_frames == 2
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
    assert alpha.tolist() == [[0, 0, 0, 255], [255, 255, 255, 0]]


def _photo(path: Path, seed: int, size: tuple[int, int] = (5, 4)) -> Path:
    """A small seeded random RGB photo (width x height `size`), written by Pillow."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize("name, output", [("shot[1].png", "out"), ("what?.png", "x.png"), ("*.png", "star.png")])
def test_a_file_whose_name_holds_glob_characters_is_that_file(models, capsys, name, output):
    (models / "in").mkdir()
    source = _photo(models / "in" / name, seed=7)
    _photo(models / "in" / "other.png", seed=8)  # what the name would match as a pattern
    assert main(["upscale", str(source), "-o", str(models / output), "-m", "tiny"]) == 0
    written = models / output / name if output == "out" else models / output
    with Image.open(written) as image:
        assert image.size == (15, 12)  # tiny is x3
    assert "done 1, skipped 0, failed 0" in capsys.readouterr().err
    assert not (models / "out" / "other.png").exists()


def test_a_name_that_exists_as_nothing_is_still_a_pattern_and_the_help_says_so(models, capsys):
    (models / "in").mkdir()
    for index in range(2):
        _photo(models / "in" / f"p{index}.png", seed=index)
    assert main(["upscale", str(models / "in" / "p[01].png"), "-o", str(models / "out"), "-m", "tiny"]) == 0
    assert sorted(p.name for p in (models / "out").iterdir()) == ["p0.png", "p1.png"]
    with pytest.raises(SystemExit):
        main(["upscale", "--help"])
    assert "only a name that exists as nothing is expanded as a pattern" in " ".join(capsys.readouterr().out.split())


def test_a_missing_input_with_a_file_output_says_the_input_does_not_exist(models, capsys):
    assert main(["upscale", str(models / "nonexist.png"), "-o", str(models / "y.png"), "-m", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "nonexist.png: no such file or directory" in err and "names one file" not in err
    assert not (models / "y.png").exists()


def test_a_suffix_cannot_lead_out_of_the_output_folder(models, capsys):
    from srkit.pipelines.batch_plan import PlanError, plan_jobs
    from srkit.pipelines.types import BatchOptions

    (models / "in" / "deep").mkdir(parents=True)
    _photo(models / "in" / "deep" / "a.png", seed=3)
    (models / "out" / "x").mkdir(parents=True)
    with pytest.raises(SystemExit) as stopped:
        main(
            ["upscale", str(models / "in"), "-o", str(models / "out" / "x"), "--suffix", "/../../escape", "-m", "tiny"]
        )
    assert stopped.value.code == 2 and "--suffix must be part of a file name" in capsys.readouterr().err
    for suffix in ("/../../escape", "_x4/../../../up"):  # the plan refuses it for API callers too
        with pytest.raises(PlanError, match="would leave -o"):
            plan_jobs([str(models / "in")], models / "out" / "x", BatchOptions(suffix=suffix))
    assert [p for p in models.rglob("*escape*")] == [] and [p for p in models.rglob("*up*")] == []


def _upscale_in_thread(argv: list[str]) -> int | None:
    """main(argv) on a thread given 60 s: None if it is still blocked then (a reader waiting on a FIFO)."""
    import threading

    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    thread.start()
    thread.join(60)
    return result[0] if result else None


@pytest.mark.parametrize("output", ["out", "y.png"])
def test_a_fifo_or_device_named_as_input_is_one_line_saying_what_it_is_and_never_blocks(models, capsys, output):
    fifo = models / "pipe.png"
    os.mkfifo(fifo)
    assert _upscale_in_thread(["upscale", str(fifo), "/dev/zero", "-o", str(models / "out"), "-m", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "pipe.png: is a FIFO (named pipe), not a regular file" in err
    assert "/dev/zero: is a character device, not a regular file" in err and "empty" not in err
    assert _upscale_in_thread(["upscale", "/dev/zero", "-o", str(models / output), "-m", "tiny"]) == 1
    assert "/dev/zero: is a character device" in capsys.readouterr().err


def test_a_newline_in_a_file_name_does_not_split_a_message_line(models, capsys):
    (models / "in").mkdir()
    source = _photo(models / "in" / "two\nlines.png", seed=5)
    assert main(["upscale", str(source), "-o", str(models / "out"), "-m", "tiny"]) == 0
    assert (models / "out" / "two\nlines.png").is_file()
    assert main(["upscale", str(source), "-o", str(models / "out"), "-m", "tiny"]) == 1  # exists: an error line
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("srkit: ") for line in lines), lines
    assert any("two\\nlines.png exists" in line for line in lines)
    assert any(line.startswith("srkit: done 1") and "two\\nlines.png (" in line for line in lines)


@pytest.mark.parametrize(
    "width, argv, limit, holding",
    [
        (5462, ["-o", "wide.webp"], "WEBP limit of 16383", "png, jpg, tiff, bmp, qoi"),  # tiny is x3: 16386 wide
        (1024, ["-o", "out", "--format", "webp", "-s", "16"], "WEBP limit of 16383", "png, jpg, tiff, bmp, qoi"),
        (21846, ["-o", "wide.jpg"], "JPEG limit of 65500", "png, tiff, bmp, qoi"),  # 65538 wide
    ],
)
def test_a_still_output_over_its_format_size_limit_is_refused_with_the_plan(
    models, capsys, monkeypatch, width, argv, limit, holding
):
    monkeypatch.setattr("srkit.upscaler.Upscaler.from_request", lambda *_: pytest.fail("the model was loaded"))
    source = _photo(models / "wide.png", seed=9, size=(width, 1))
    assert (
        main(
            [
                "upscale",
                str(source),
                *[str(models / a) if a.startswith(("wide", "out")) else a for a in argv],
                "-m",
                "tiny",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert limit in err and f"formats that can hold it: {holding} " in err and len(err.splitlines()) == 1
    assert [p.name for p in models.iterdir() if p.name.startswith(("wide.", "out"))] == ["wide.png"]


def test_an_animation_over_the_gif_size_limit_is_refused_with_the_plan(models, capsys, monkeypatch):
    monkeypatch.setattr("srkit.upscaler.Upscaler.from_request", lambda *_: pytest.fail("the model was loaded"))
    frames = [Image.fromarray(np.full((1, 21846, 3), level, np.uint8)) for level in (0, 255)]
    frames[0].save(models / "wide.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert main(["upscale", str(models / "wide.gif"), "-o", str(models / "out"), "-m", "tiny"]) == 2  # 65538 wide
    err = capsys.readouterr().err
    assert "65538x3, over the GIF limit of 65535 pixels a side; formats that can hold it: png (" in err
    assert not (models / "out").exists()
