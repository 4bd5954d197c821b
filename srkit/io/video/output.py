"""The output policy: which codec, pixel format and streams an output gets, checked before any work.

`plan_output` checks that the output container can hold the chosen codec, its options and the input's other
streams (text subtitles it cannot hold are re-encoded to its own, mov_text for MP4, or left out; attachments
kept in MKV), and picks the container's natural codec and the deepest pixel format the codec takes. The
`OutputPlan` it returns is made once per video and handed to the writer.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.error
from av.video.codeccontext import VideoCodecContext

from .colour import HDR_TRANSFERS
from .errors import OutputPlanError
from .probe import VideoInfo

ATTACHING_CONTAINERS = {"matroska"}  # containers that hold attachments (fonts, cover files)
TIMECODE_TRACKS = {"mp4", "mov"}  # containers whose muxer writes a timecode track (tmcd) from the video's tag
TEXT_SUBTITLES = {"srt", "subrip", "ass", "ssa", "webvtt", "mov_text", "text"}  # decoders giving ASS events
CONTAINER_SUBTITLES = {"mp4": "mov_text", "mov": "mov_text"}  # the text subtitle codec of a container
CHROMA_DETAIL = {"444": 4, "422": 2, "440": 2, "420": 1, "411": 1, "410": 0}  # chroma samples per 4 pixels
CONTAINERS = {".mkv": "matroska", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}
NATURAL_CODECS = {"webm": "libvpx-vp9"}  # every other container: libx264
NATURAL_OPTIONS = {"libvpx-vp9": {"b": "0", "row-mt": "1"}}  # crf alone is constant quality only with b=0
TRIAL_SIZE = 64  # pixels: the picture an encoder is test-opened with to learn which options it takes


@dataclass
class EncodeSettings:
    """Output video stream settings (codec and pix_fmt None: chosen by plan_output)."""

    codec: str | None = None
    crf: int | None = 18
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict[str, str] | None = None


@dataclass
class OutputPlan:
    """What the output will hold: resolved encode settings, the input streams copied, lines to warn with."""

    settings: EncodeSettings
    copied: tuple[int, ...]
    warnings: list[str] = field(default_factory=list)
    converted: dict[int, str] = field(default_factory=dict)
    """Text subtitle streams re-encoded to the container's own subtitle codec: input index -> encoder."""
    attached: tuple[int, ...] = ()
    """Attachment streams of the input, embedded in the output's header."""

    @property
    def codec(self) -> str:
        """The encoder's name (plan_output resolves it)."""
        return cast(str, self.settings.codec)

    @property
    def pix_fmt(self) -> str:
        """The output's pixel format (plan_output resolves it)."""
        return cast(str, self.settings.pix_fmt)


def available_encoders() -> list[str]:
    """Video encoders this PyAV build carries."""
    names = []
    for name in sorted(av.codecs_available):
        try:
            codec = av.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        if codec.type == "video":
            names.append(name)
    return names


def container_format(path: Path) -> str:
    """The FFmpeg format that writes `path`, from its extension; an OutputPlanError for one srkit does not write."""
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise OutputPlanError(
            f"{path}: srkit writes video as {', '.join(sorted(CONTAINERS))}; choose one of those extensions for -o"
        ) from None


def _pixel_format(info: VideoInfo, codec: av.Codec) -> str:
    """The input's chroma and bit depth where the codec takes them, else the nearest it does (8-bit 4:2:0 last)."""
    offered = {fmt.name for fmt in codec.video_formats or ()}
    depths = [""] if not info.deep else (["12le", "10le", ""] if info.bits >= 12 else ["10le", ""])
    for depth in depths:
        for chroma in dict.fromkeys([info.chroma, "420"]):
            if f"yuv{chroma}p{depth}" in offered:
                return f"yuv{chroma}p{depth}"
    return "yuv420p" if "yuv420p" in offered or not offered else sorted(offered)[0]


def _reductions(info: VideoInfo, pix_fmt: str) -> list[str]:
    """What an output in `pix_fmt` loses of the input: bit depth, HDR transfer, chroma resolution."""
    depth = re.search(r"p(\d+)(le|be)?$", pix_fmt)
    bits = int(depth.group(1)) if depth else 8
    chroma = re.search(r"4[0-4][0-4]", pix_fmt)
    chroma = chroma.group(0) if chroma else "444"
    reduced = []
    if bits < info.bits:
        reduced.append(f"{info.bits}-bit to {bits}-bit")
    if info.transfer in HDR_TRANSFERS and bits < 10:
        reduced.append(f"HDR ({HDR_TRANSFERS[info.transfer]}) to 8 bits")
    if CHROMA_DETAIL.get(chroma, 0) < CHROMA_DETAIL.get(info.chroma, 0):
        reduced.append(f"chroma {info.chroma} to {chroma}")
    return reduced


def plan_output(target: str | os.PathLike, info: VideoInfo, settings: EncodeSettings) -> OutputPlan:
    """Check before any work that `target` can hold the video and the input's streams; raises VideoError if not."""
    target = Path(target)
    fmt = container_format(target)
    name = settings.codec or NATURAL_CODECS.get(fmt, "libx264")
    try:
        codec = av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        raise OutputPlanError(
            f"encoder {name!r} is not in this PyAV build; available: {', '.join(available_encoders())}"
        ) from None
    if codec.type != "video":
        raise OutputPlanError(f"--codec {name}: is a {codec.type} encoder; choose a video encoder")
    with av.open(io.BytesIO(), "w", format=fmt) as container:
        supported = container.supported_codecs
    suffix = target.suffix.lower()
    if name not in supported:
        raise OutputPlanError(
            f"{target}: a {suffix} file cannot hold {name} video; choose --codec "
            f"{NATURAL_CODECS.get(fmt, 'libx264')} or an .mkv output"
        )
    pix_fmt = settings.pix_fmt or _pixel_format(info, codec)
    offered = {f.name for f in codec.video_formats or ()}
    if offered and pix_fmt not in offered:
        raise OutputPlanError(f"--pix-fmt {pix_fmt}: {name} does not take it; it takes {', '.join(sorted(offered))}")
    _check_encoder_options(name, pix_fmt, settings.options or {})
    warnings, copied, converted, attached = [], [], {}, []
    for stream in info.streams:
        if stream.type == "attachment" and fmt in ATTACHING_CONTAINERS:
            attached.append(stream.index)
        elif stream.type == "attachment":
            warnings.append(
                f"{info.path}: leaving out attachment #{stream.index} ({stream.codec}), which a "
                f"{suffix} file cannot hold; write .mkv to keep it"
            )
        elif stream.codec in supported:
            copied.append(stream.index)
        elif stream.type == "subtitle" and stream.codec in TEXT_SUBTITLES and fmt in CONTAINER_SUBTITLES:
            converted[stream.index] = CONTAINER_SUBTITLES[fmt]
            warnings.append(
                f"{info.path}: subtitle stream #{stream.index} ({stream.codec}) becomes "
                f"{CONTAINER_SUBTITLES[fmt]}, the text subtitles a {suffix} file holds"
            )
        elif stream.type == "subtitle":
            warnings.append(
                f"{info.path}: leaving out subtitle stream #{stream.index} ({stream.codec}), which a "
                f"{suffix} file cannot hold; write .mkv to keep it"
            )
        else:
            raise OutputPlanError(
                f"{target}: a {suffix} file cannot hold {stream.type} stream #{stream.index} "
                f"({stream.codec}) of {info.path}, which is copied unchanged; write .mkv instead"
            )
    if info.timecode and fmt not in TIMECODE_TRACKS:
        warnings.append(
            f"{info.path}: timecode {info.timecode} is kept as a tag of the video stream, as a "
            f"{suffix} file has no timecode track; write .mp4 or .mov to keep the track"
        )
    reduced = _reductions(info, pix_fmt)
    if reduced:
        warnings.append(
            f"{target}: {pix_fmt} output reduces {', '.join(reduced)} ({info.pix_fmt} input); "
            "pass --pix-fmt (and a --codec that takes it) to keep them"
        )
    options = {**NATURAL_OPTIONS.get(name, {}), **(settings.options or {})}
    return OutputPlan(
        replace(settings, codec=name, pix_fmt=pix_fmt, options=options),
        tuple(copied),
        warnings,
        converted,
        tuple(attached),
    )


def _trial_open(name: str, pix_fmt: str, options: dict[str, str]) -> dict[str, str]:
    """Open encoder `name` on a small picture with `options`; returns the options it did not take."""
    context = cast(VideoCodecContext, av.CodecContext.create(name, "w"))
    context.width = context.height = TRIAL_SIZE
    context.pix_fmt = pix_fmt
    context.time_base = Fraction(1, 25)
    context.options = dict(options)
    context.open()
    return dict(context.options or {})


def _check_encoder_options(name: str, pix_fmt: str, options: dict[str, str]) -> None:
    """Raise OutputPlanError if encoder `name` does not take or refuses an --encoder-opt (FFmpeg would otherwise
    drop an unknown option without a word)."""
    if not options:
        return
    given = " ".join(f"--encoder-opt {key}={value}" for key, value in options.items())
    try:
        untaken = _trial_open(name, pix_fmt, options)
    except av.error.FFmpegError as error:
        try:
            _trial_open(name, pix_fmt, {})
        except av.error.FFmpegError:
            return  # the encoder does not open on the trial picture at all: the options are not to blame
        raise OutputPlanError(
            f"{given}: {name} refuses these values ({error.strerror}); check them against `ffmpeg -h encoder={name}`"
        ) from None
    if untaken:
        names = ", ".join(f"{key}={value}" for key, value in untaken.items())
        raise OutputPlanError(
            f"--encoder-opt {names}: {name} has no such option; check the name against `ffmpeg -h encoder={name}`"
        )
