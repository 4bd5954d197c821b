"""Plan a batch: files, folder trees and globs of photos, animated images and videos, mapped to mirrored outputs.

Planning looks at every input once: a photo, an animated image (GIF/WebP/APNG), a video (probed here; the probe
goes on to the video pipeline) or something that cannot be processed (one line naming it and why). It maps
each job to one output path and checks the whole plan (no output over an input, no two inputs onto one output,
an output name each kind can be written to and that stays inside -o, an output size its format can hold) before
the model loads. A named input that exists is that file or folder whatever characters its name holds; only a
name that exists as nothing is expanded as a glob. FIFOs and devices are refused without being opened.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import SrkitError
from ..io.animated import pillow_frames
from ..io.formats import ANIMATION_EXTENSIONS, IMAGE_EXTENSIONS, holding, named
from ..io.images import ImageReadError, open_image, output_format
from ..io.paths import special_file_reason
from ..io.video.errors import VideoError
from ..io.video.output import CONTAINERS, EncodeSettings, plan_output
from ..io.video.probe import VideoInfo, probe
from ..models import zoo
from ..request import UpscaleRequest
from .types import ANIMATION, PHOTO, VIDEO, BatchOptions, Job
from .video_types import VideoOptions

VIDEO_EXTENSIONS = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".ts",
    ".mts",
    ".m2ts",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".ogv",
    ".3gp",
    ".y4m",
    ".mxf",
}
MP4_FAMILY = {".mp4", ".m4v", ".mov", ".3gp", ".m4a"}


class PlanError(SrkitError):
    """The inputs and options cannot be mapped to outputs safely; nothing is written."""

    exit_code = 2


@dataclass
class BatchPlan:
    """Every usable input mapped to its output; what was passed over; what cannot be processed, and why; and the
    options it was made with, which the run follows."""

    output: Path
    options: BatchOptions
    video: VideoOptions
    jobs: list[Job] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    unusable: list[tuple[Path, str]] = field(default_factory=list)
    """(input, one-line message naming it and the reason)."""


class UnusableInput(SrkitError):
    """An input that should be processed but cannot be (empty, no video stream, no index, ...); the message is
    the reason."""


def _is_pattern(text: str) -> bool:
    """Whether an input is expanded as a glob: it holds glob characters and names nothing that exists (a name
    that exists is that file or folder, whatever characters it holds: `shot[1].png`, `what?.png`)."""
    return any(ch in text for ch in "*?[") and not os.path.lexists(text)


def _walk(folder: Path, recursive: bool, skip: Path) -> list[Path]:
    """Files under `folder` in a stable order, leaving out the output tree if it lies inside."""
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if recursive and (root_path / d).resolve() != skip)
        found += [root_path / name for name in sorted(files)]
    return found


def _lacks_mp4_index(path: Path) -> bool:
    """Whether an MP4/MOV file has no top-level 'moov' atom (a recording cut off before it was finished)."""
    size, offset = path.stat().st_size, 0
    with open(path, "rb") as handle:
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if kind == b"moov":
                return False
            if length == 1 and len(header) == 16:
                length = int.from_bytes(header[8:16], "big")
            if length < 8:
                break
            offset += length
    return True


def _probe_video(path: Path) -> VideoInfo:
    try:
        return probe(path)
    except VideoError as error:
        if path.suffix.lower() in MP4_FAMILY and _lacks_mp4_index(path):
            raise UnusableInput(
                "has no 'moov' atom (the index MP4/MOV files get last): the file was cut off before "
                "it was finished and cannot be decoded as it is"
            ) from None
        reason = str(error).removeprefix(f"{path}: ")
        raise UnusableInput(reason) from None


def classify(path: Path, named: bool) -> tuple[str, VideoInfo | None] | None:
    """(kind, video probe) of one input file; None for a file in a folder that is no image or video.

    Raises UnusableInput for a file that should be processed but cannot. A still format is a photo even when
    FFmpeg could read it; a one-frame video is still a video.
    """
    suffix = path.suffix.lower()
    known = suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS
    if not known and not named:
        return None
    special = special_file_reason(path)
    if special is not None:  # never opened: a FIFO would block, /dev/zero never ends
        raise UnusableInput(special)
    if path.stat().st_size == 0:
        raise UnusableInput("is empty (0 bytes)")
    if suffix in IMAGE_EXTENSIONS or (named and suffix not in VIDEO_EXTENSIONS):
        frames = pillow_frames(path)
        if frames is not None or suffix in IMAGE_EXTENSIONS:  # a broken image fails, with its reason, when read
            return (ANIMATION if frames and frames > 1 and suffix in ANIMATION_EXTENSIONS else PHOTO), None
    return VIDEO, _probe_video(path)


def _target_name(source: Path, kind: str, options: BatchOptions) -> str:
    """Output file name: photos take --format; animations only png/webp (formats that animate); a video keeps its
    container where srkit writes it, else becomes .mkv (Matroska holds what .avi, .ts, ... hold)."""
    suffix = source.suffix
    if options.format != "keep" and (kind == PHOTO or (kind == ANIMATION and named(options.format).animation)):
        suffix = named(options.format).extensions[0]
    if kind == VIDEO and suffix.lower() not in CONTAINERS:
        suffix = ".mkv"
    return f"{source.stem}{options.suffix}{suffix}"


def _check_single_target(source: Path, kind: str, target: Path) -> None:
    suffix = target.suffix.lower()
    allowed = {PHOTO: IMAGE_EXTENSIONS, ANIMATION: ANIMATION_EXTENSIONS, VIDEO: VIDEO_EXTENSIONS}[kind]
    if suffix not in allowed:
        article = "an" if kind[0] in "aeiou" else "a"
        raise PlanError(
            f"{target}: {source} is {article} {kind}, which cannot be written as {suffix or 'that'}; "
            f"give an output name ending in {', '.join(sorted(allowed))}, or a folder"
        )


def plan_jobs(
    inputs: list[str],
    output: str | os.PathLike,
    options: BatchOptions,
    video: VideoOptions | None = None,
    request: UpscaleRequest | None = None,
    model_scale: int | None = None,
) -> BatchPlan:
    """Map inputs to outputs before any work starts; raises PlanError if the plan would overwrite an input, a
    video's output cannot be made with the `video` options, or (given the `request`) an image would come out
    larger than its format can hold. `model_scale`: the loaded model's, where the caller has one (else it is
    looked up, without loading the model where the catalog knows it, only when an output format has a limit)."""
    output = Path(output)
    out_resolved = output.resolve()
    # one named input that is no folder goes to -o itself when -o names a file (a missing one is reported as such)
    single_file = (
        len(inputs) == 1
        and not _is_pattern(inputs[0])
        and not Path(inputs[0]).is_dir()
        and output.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
        and not output.is_dir()
    )
    if not single_file and output.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS and not output.is_dir():
        raise PlanError(
            f"{output}: names one file, but the inputs can give several outputs; give a folder for -o "
            "(or one input file)"
        )
    video = video or VideoOptions(EncodeSettings())
    plan = BatchPlan(output, options, video)
    for text in inputs:
        globbed = _is_pattern(text)
        paths = [Path(p) for p in sorted(glob.glob(text, recursive=True))] if globbed else [Path(text)]
        if not paths or not all(p.exists() for p in paths):
            plan.unusable.append((Path(text), f"{text}: {'no match' if globbed else 'no such file or directory'}"))
            continue
        for path in paths:
            if path.resolve() == out_resolved:
                raise PlanError(f"{path}: -o is this input itself; choose another output")
            if path.is_dir():
                for file in _walk(path, options.recursive, out_resolved):
                    _add(plan, file, output / file.relative_to(path).parent, options, False, output)
            else:
                _add(plan, path, output, options, not globbed, output, single=single_file)
    plan.jobs = list(dict.fromkeys(plan.jobs))  # the same file named twice (a glob and its folder) is done once
    _check_no_collisions(plan.jobs)
    for index, job in enumerate(plan.jobs):
        if job.info is not None:  # a video, with its probe: its output planned now, so an impossible --codec or
            try:  # container is refused before any work, and the video pipeline takes this plan
                plan.jobs[index] = replace(job, output=plan_output(job.target, job.info, video.encode))
            except VideoError as error:
                raise PlanError(str(error)) from None
    if request is not None:
        _check_output_sizes(plan.jobs, request, model_scale, options.write.max_pixels)
    return plan


def _check_output_sizes(jobs: list[Job], request: UpscaleRequest, model_scale: int | None, max_pixels: int) -> None:
    """Refuse an image or animation whose upscaled size is over its output format's limit (io.formats), naming the
    limit and the formats that can hold that size; sizes come from the headers, the network's scale is looked up
    once when needed."""
    limited = [job for job in jobs if job.kind != VIDEO and output_format(job.target).max_side is not None]
    if limited and model_scale is None and not request.output_scale:
        model_scale = zoo.model_scale(request.model)
    for job in limited:
        try:
            with open_image(job.source, max_pixels) as image:
                height, width = request.output_size(image.height, image.width, model_scale or 1)
        except ImageReadError:
            continue  # reported when the file is read, as any unreadable input
        fmt, side = output_format(job.target), max(width, height)
        if fmt.max_side is not None and side > fmt.max_side:
            fits = holding(side, animated=job.kind == ANIMATION)
            raise PlanError(
                f"{job.target}: the output would be {width}x{height}, over the {fmt.pillow} limit of "
                f"{fmt.max_side} pixels a side; formats that can hold it: {', '.join(fits)} "
                "(--format, or another -o name), or a smaller -s"
            )


def _add(
    plan: BatchPlan, source: Path, place: Path, options: BatchOptions, named: bool, output: Path, single: bool = False
) -> None:
    """Classify `source` and add its job (to `place`, a folder inside `output`, or the output file itself when
    `single`)."""
    try:
        found = classify(source, named)
    except UnusableInput as reason:
        plan.unusable.append((source, f"{source}: {reason}"))
        return
    except OSError as error:  # a dangling link, a file that vanished or cannot be opened
        plan.unusable.append((source, f"{source}: cannot be read ({error.strerror or error})"))
        return
    if found is None:
        plan.skipped.append((source, "not an image or video file"))
        return
    kind, info = found
    if single:
        _check_single_target(source, kind, place)
    target = place if single else _inside(place, _target_name(source, kind, options), output)
    plan.jobs.append(Job(source, target, kind, info))


def _inside(place: Path, name: str, output: Path) -> Path:
    """`place / name`, refused unless it stays inside the output folder (a --suffix or other part of a derived
    name with a separator or `..` would write elsewhere)."""
    target = place / name
    root = os.path.normpath(os.path.abspath(output))
    if Path(name).name != name or os.path.commonpath([root, os.path.normpath(os.path.abspath(target))]) != root:
        raise PlanError(
            f"{target}: the output name would leave -o {output}; use a --suffix without path separators or '..'"
        )
    return target


def _check_no_collisions(jobs: list[Job]) -> None:
    sources = {job.source.resolve(): job.source for job in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.target.resolve()
        if target in sources:
            raise PlanError(
                f"{job.target}: the output would overwrite the input {sources[target]}; choose another -o or a --suffix"
            )
        if target in seen:
            raise PlanError(
                f"{job.target}: both {seen[target]} and {job.source} would be written here; "
                "upscale them into separate outputs"
            )
        seen[target] = job.source
