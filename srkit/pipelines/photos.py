"""Upscale planned photo jobs (see batch.py for planning): decode ahead, model here, encode behind.

The run decodes the next images on a background thread while the model works, and encodes on another; one
bad file is reported in one line and the run goes on with the rest.
"""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import SrkitError
from ..defaults import DEFAULT_MAX_PIXELS
from ..io.images import ALPHA_FORMATS, Picture, output_format, read_picture, write_picture
from ..upscaler import Upscaler

if TYPE_CHECKING:
    from .batch import Job

PREFETCH = 2  # images decoded ahead of the model
COMPARE_CROP = 256  # output pixels per side of the --compare crop


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


def upscale_photo_jobs(jobs: list[Job], upscaler: Upscaler | None, options: PhotoOptions, summary: Summary) -> None:
    """Upscale planned photo jobs into their targets, recording each in `summary` (no upscaler needed for none)."""
    if jobs:
        _Run(upscaler, options, summary).run(jobs)
