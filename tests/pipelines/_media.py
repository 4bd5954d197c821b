"""Test clips made, and outputs read, by Debian's ffmpeg / ffprobe CLIs (independent of srkit's PyAV)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg CLI quietly with `args`; a failure raises."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True, timeout=120)


def make_video(path: Path, frames: int, size: str = "32x24", audio: bool = False) -> Path:
    """A testsrc2 clip (libx264; AAC audio in MP4, Vorbis-free MKV takes AAC too) made by the ffmpeg CLI."""
    sources = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10"]
    if audio:
        sources += ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    ffmpeg(
        *sources,
        "-frames:v",
        str(frames),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        *(["-c:a", "aac", "-shortest"] if audio else []),
        str(path),
    )
    return path


def video_stream(path: Path) -> dict:
    """ffprobe's view of the first video stream, with frames counted by decoding."""
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["streams"][0]


def decode_errors(path: Path) -> str:
    """What ffmpeg reports while decoding every stream of `path` (empty for a clean file)."""
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    ).stderr
