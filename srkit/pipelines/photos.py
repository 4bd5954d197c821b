"""Upscale photos: files, directory trees and globs to mirrored outputs, nothing lost, nothing overwritten.

Planning maps every input image to one output path before any work starts (and refuses a plan that would
write over an input). The run decodes the next images on a background thread while the model works, and
encodes on another; one bad file is reported in one line and the run goes on with the rest.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import SrkitError
from ..defaults import DEFAULT_MAX_PIXELS
from ..io.images import (ALPHA_FORMATS, FORMAT_EXTENSIONS, IMAGE_EXTENSIONS, Picture, output_format, read_picture,
                         write_picture)
from ..upscaler import Upscaler

PREFETCH = 2  # images decoded ahead of the model
COMPARE_CROP = 256  # output pixels per side of the --compare crop


class PlanError(SrkitError):
    """The inputs and options cannot be mapped to outputs safely; nothing is written."""

    exit_code = 2


@dataclass(frozen=True)
class Job:
    """One input image and the path its upscaled copy goes to."""

    source: Path
    target: Path


@dataclass
class PhotoOptions:
    """How outputs are named and written."""

    format: str = "keep"
    quality: int = 95
    suffix: str = ""
    existing: str = "refuse"  # 'refuse', 'overwrite' or 'skip'
    recursive: bool = True
    compare: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass
class Summary:
    """What a run did, file by file."""

    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _target_name(source: Path, options: PhotoOptions) -> str:
    suffix = source.suffix if options.format == "keep" else FORMAT_EXTENSIONS[options.format]
    return f"{source.stem}{options.suffix}{suffix}"


def _walk(folder: Path, recursive: bool, skip: Path) -> list[Path]:
    """Files under `folder` in a stable order, leaving out the output tree if it lies inside."""
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if recursive and (root_path / d).resolve() != skip)
        found += [root_path / name for name in sorted(files)]
    return found


@dataclass
class Plan:
    """Every input mapped to its output, plus what was passed over and what does not exist."""

    jobs: list[Job]
    skipped: list[tuple[Path, str]]
    missing: list[tuple[Path, str]]


def plan_jobs(inputs: list[str], output: str | os.PathLike, options: PhotoOptions) -> Plan:
    """Map inputs to outputs before any work starts; raises PlanError if the plan would overwrite an input."""
    output = Path(output)
    out_resolved = output.resolve()
    single_file = (len(inputs) == 1 and not _is_glob(inputs[0]) and Path(inputs[0]).is_file()
                   and output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir())
    jobs: list[Job] = []
    skipped: list[tuple[Path, str]] = []
    missing: list[tuple[Path, str]] = []
    for text in inputs:
        paths = [Path(p) for p in sorted(glob.glob(text, recursive=True))] if _is_glob(text) else [Path(text)]
        if not paths or not all(p.exists() for p in paths):
            missing.append((Path(text), "no such file or directory" if not _is_glob(text) else "no match"))
            continue
        for path in paths:
            if path.resolve() == out_resolved:
                raise PlanError(f"{path}: -o is this input itself; choose another output")
            if path.is_dir():
                for file in _walk(path, options.recursive, out_resolved):
                    rel = file.relative_to(path)
                    _add(jobs, skipped, file, output / rel.parent / _target_name(file, options))
            elif single_file:
                _add(jobs, skipped, path, output)
            else:
                _add(jobs, skipped, path, output / _target_name(path, options))
    _check_no_collisions(jobs)
    return Plan(jobs, skipped, missing)


def _add(jobs: list[Job], skipped: list[tuple[Path, str]], source: Path, target: Path) -> None:
    if source.suffix.lower() in IMAGE_EXTENSIONS:
        job = Job(source, target)
        if job not in jobs:  # the same file named twice (a glob and its folder, say) is done once
            jobs.append(job)
    else:
        skipped.append((source, "not an image file"))


def _check_no_collisions(jobs: list[Job]) -> None:
    sources = {job.source.resolve(): job.source for job in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.target.resolve()
        if target in sources:
            raise PlanError(f"{job.target}: the output would overwrite the input {sources[target]}; "
                            "choose another -o or a --suffix")
        if target in seen:
            raise PlanError(f"{job.target}: both {seen[target]} and {job.source} would be written here; "
                            "upscale them into separate outputs")
        seen[target] = job.source


def _compare_image(picture: Picture, upscaled: np.ndarray, scale: float) -> Image.Image:
    """Side-by-side crop from the centre: nearest-upsampled input on the left, srkit's output on the right."""
    def rgb8(pixels: np.ndarray) -> Image.Image:
        if pixels.dtype == np.uint16:
            pixels = (pixels // 257).astype(np.uint8)
        return Image.fromarray(pixels).convert("RGB")

    after = rgb8(upscaled)
    crop = min(COMPARE_CROP, after.width, after.height)
    left, top = (after.width - crop) // 2, (after.height - crop) // 2
    after = after.crop((left, top, left + crop, top + crop))
    before = rgb8(picture.pixels).crop(tuple(round(v / scale) for v in (left, top, left + crop, top + crop)))
    sheet = Image.new("RGB", (2 * crop + 4, crop), (255, 255, 255))
    sheet.paste(before.resize((crop, crop), Image.NEAREST), (0, 0))
    sheet.paste(after, (crop + 4, 0))
    return sheet


class _Run:
    """One run over the jobs: decode ahead, upscale here, encode behind, collect the summary."""

    def __init__(self, upscaler: Upscaler, options: PhotoOptions, summary: Summary) -> None:
        self.upscaler = upscaler
        self.options = options
        self.summary = summary
        self.readers = ThreadPoolExecutor(1, thread_name_prefix="srkit-decode")
        self.writers = ThreadPoolExecutor(1, thread_name_prefix="srkit-encode")
        self.pending_writes: list[tuple[Job, Future]] = []

    def fail(self, path: Path, error: Exception | str) -> None:
        self.summary.failed.append((path, str(error)))
        tqdm.write(f"srkit: error: {error}", file=sys.stderr)

    def wanted(self, job: Job) -> bool:
        """Apply --skip-existing / --overwrite; a target that exists is otherwise an error."""
        if not job.target.exists():
            return True
        if self.options.existing == "skip":
            self.summary.skipped.append((job.source, f"{job.target} exists"))
            return False
        if self.options.existing == "overwrite":
            return True
        self.fail(job.source, f"{job.target} exists; pass --overwrite or --skip-existing")
        return False

    def write(self, job: Job, picture: Picture, pixels: np.ndarray) -> None:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        write_picture(pixels, job.target, picture, self.options.quality)
        if self.options.compare:
            sheet = _compare_image(picture, pixels, self.upscaler.scale)
            compare = job.target.with_name(f"{job.target.stem}_compare.png")
            write_picture(np.asarray(sheet), compare, Picture(np.asarray(sheet), "PNG", "RGB"))

    def collect_writes(self, wait: bool) -> None:
        still = []
        for job, future in self.pending_writes:
            if not wait and not future.done():
                still.append((job, future))
                continue
            try:
                future.result()
                self.summary.done.append(job.target)
            except (SrkitError, OSError) as error:
                self.fail(job.source, error if isinstance(error, SrkitError) else f"{job.target}: {error}")
        self.pending_writes = still

    def run(self, jobs: list[Job]) -> None:
        jobs = [job for job in jobs if self.wanted(job)]
        reads = {}
        bar = tqdm(total=len(jobs), unit="file", dynamic_ncols=True, disable=None)
        try:
            for index, job in enumerate(jobs):
                for ahead in jobs[index:index + PREFETCH + 1]:
                    if ahead not in reads:
                        reads[ahead] = self.readers.submit(read_picture, ahead.source, self.options.max_pixels)
                self.process(job, reads.pop(job))
                self.collect_writes(wait=False)
                bar.update(1)
            self.collect_writes(wait=True)
        finally:
            for future in reads.values():
                future.cancel()
            self.readers.shutdown(wait=True, cancel_futures=True)
            self.writers.shutdown(wait=True)  # a write in flight finishes (atomically) or leaves nothing
            bar.close()

    def process(self, job: Job, read: Future) -> None:
        try:
            picture = read.result()
            target_format = output_format(job.target)
            if picture.has_alpha and target_format not in ALPHA_FORMATS:
                raise SrkitError(f"{job.source}: has an alpha channel that {target_format} cannot store; "
                                 "use --format png, webp or tiff")
            tiles = tqdm(total=0, unit="tile", leave=False, disable=None)

            def progress(done: int, total: int) -> None:
                if total > 1:
                    tiles.total = total
                    tiles.n = done
                    tiles.refresh()

            try:
                pixels = self.upscaler.upscale(picture.pixels, on_progress=progress)
            finally:
                tiles.close()
        except SrkitError as error:
            self.fail(job.source, error)
            return
        self.pending_writes.append((job, self.writers.submit(self.write, job, picture, pixels)))


def run_plan(plan: Plan, upscaler: Upscaler, options: PhotoOptions) -> Summary:
    """Upscale a planned set of images; prints failures, skips and a final summary line."""
    start = time.perf_counter()
    summary = Summary(skipped=list(plan.skipped))
    for path, reason in plan.missing:
        summary.failed.append((path, f"{path}: {reason}"))
        print(f"srkit: error: {path}: {reason}", file=sys.stderr)
    for path, reason in plan.skipped:
        print(f"srkit: skipped {path}: {reason}", file=sys.stderr)
    _Run(upscaler, options, summary).run(plan.jobs)
    summary.seconds = time.perf_counter() - start
    print(f"srkit: done {len(summary.done)}, skipped {len(summary.skipped)}, failed {len(summary.failed)} "
          f"in {summary.seconds:.1f} s", file=sys.stderr)
    return summary


def upscale_photos(inputs: list[str], output: str | os.PathLike, upscaler: Upscaler,
                   options: PhotoOptions | None = None) -> Summary:
    """Upscale every image the inputs name (files, directories, globs) into `output`."""
    options = options or PhotoOptions()
    return run_plan(plan_jobs(inputs, output, options), upscaler, options)
