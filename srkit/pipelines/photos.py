"""Upscale planned photo jobs (see batch.py for planning): decode ahead, model here, encode behind.

The run decodes the next images on a background thread while the model works, and encodes on another, joined
by bounded queues (pipelines.threads), so at most PREFETCH decoded and WRITE_DEPTH finished images wait in
memory; one bad file is reported in one line and the run goes on with the rest. On many workers
(`--workers N`, `--backend ray`) each file is a unit of work instead (`upscale_photo` on a worker, see
pipelines.scaleout): the same read, upscale and write, so the bytes are the same as here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import SrkitError
from ..io.atomic import leftovers
from ..io.formats import alpha_outputs
from ..io.images import Picture, output_format, read_picture, write_picture
from ..io.paths import one_line
from ..request import UpscaleRequest
from ..upscaler import Upscaler
from .scaleout import run_units
from .threads import Pipe, Workers
from .types import Job, ScaleOut, Summary, WriteOptions

PREFETCH = 2  # images decoded ahead of the model
WRITE_DEPTH = 2  # finished images waiting for the encoder (full-size: this bounds memory)
COMPARE_CROP = 256  # output pixels per side of the --compare crop


def _compare_image(picture: Picture, upscaled: np.ndarray, output_scale: float) -> Image.Image:
    """Side-by-side crop from the centre: nearest-upsampled input on the left, srkit's output on the right."""

    def rgb8(pixels: np.ndarray) -> Image.Image:
        if pixels.dtype == np.uint16:
            pixels = (pixels // 257).astype(np.uint8)
        return Image.fromarray(pixels).convert("RGB")

    height, width = upscaled.shape[:2]
    crop = min(COMPARE_CROP, width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    after = rgb8(upscaled[top : top + crop, left : left + crop])  # cropped first: no copy of the whole output
    box = (
        round(left / output_scale),
        round(top / output_scale),
        round((left + crop) / output_scale),
        round((top + crop) / output_scale),
    )
    before = rgb8(picture.pixels).crop(box)
    sheet = Image.new("RGB", (2 * crop + 4, crop), (255, 255, 255))
    sheet.paste(before.resize((crop, crop), Image.Resampling.NEAREST), (0, 0))
    sheet.paste(after, (crop + 4, 0))
    return sheet


def _report(summary: Summary, path: Path, error: Exception | str) -> None:
    """Record a file that failed and say why in one line (above the progress bar)."""
    summary.failed.append((path, str(error)))
    tqdm.write(f"srkit: error: {one_line(str(error))}", file=sys.stderr)


def _upscaled(
    upscaler: Upscaler, job: Job, picture: Picture, on_progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """The upscaled pixels of one decoded photo; a SrkitError when its target format cannot hold them."""
    target_format = output_format(job.target)
    if picture.has_alpha and not target_format.stores_alpha:
        raise SrkitError(
            f"{job.source}: has an alpha channel that {target_format.pillow} cannot store; "
            f"use --format {alpha_outputs()}"
        )
    return upscaler.upscale(picture.pixels, on_progress=on_progress)


def _write(job: Job, picture: Picture, pixels: np.ndarray, options: WriteOptions, output_scale: float) -> None:
    """Write one upscaled photo (and its --compare sheet) beside nothing half-written, replacing a file there only
    with --overwrite (another run's output published meanwhile is an "exists" error: io.atomic)."""
    overwrite = options.overwrite
    write_picture(pixels, job.target, picture, options.quality, overwrite)
    if options.compare:
        sheet = _compare_image(picture, pixels, output_scale)
        write_picture(
            np.asarray(sheet), _compare_path(job), Picture(np.asarray(sheet), "PNG", "RGB"), overwrite=overwrite
        )


def _compare_path(job: Job) -> Path:
    """Where a job's --compare sheet goes: beside its target."""
    return job.target.with_name(f"{job.target.stem}_compare.png")


def _write_error(job: Job, error: SrkitError | OSError) -> SrkitError | str:
    """What a failed write is reported as: a SrkitError's own line, else the target and the OS error."""
    return error if isinstance(error, SrkitError) else f"{job.target}: {error}"


@dataclass(frozen=True)
class PhotoUnit:
    """One photo job and how to write it: the unit of work of a photo folder on many workers (it pickles)."""

    job: Job
    options: WriteOptions


def upscale_photo(upscaler: Upscaler, unit: PhotoUnit) -> str | None:
    """Read, upscale and write one photo exactly as the single-process run does; None when written, else the
    one-line error (reported by the driver; the run goes on)."""
    job = unit.job
    try:
        picture = read_picture(job.source, unit.options.max_pixels)
        pixels = _upscaled(upscaler, job, picture)
    except SrkitError as error:
        return str(error)
    try:
        _write(job, picture, pixels, unit.options, upscaler.output_scale)
    except (SrkitError, OSError) as error:
        return str(_write_error(job, error))
    return None


class _Run:
    """One run over the jobs: decode ahead, upscale here, encode behind (pipelines.threads), collect the summary."""

    def __init__(self, upscaler: Upscaler, options: WriteOptions, summary: Summary) -> None:
        self.upscaler = upscaler
        self.options = options
        self.summary = summary

    def fail(self, path: Path, error: Exception | str) -> None:
        _report(self.summary, path, error)

    def read_all(self, jobs: list[Job], out: Pipe) -> None:
        """Decode worker: each job with its picture, or with the one-line error that reading it gave."""
        for job in jobs:
            try:
                picture: Picture | SrkitError = read_picture(job.source, self.options.max_pixels)
            except SrkitError as error:
                picture = error
            out.put((job, picture))
        out.close()

    def write_all(self, inp: Pipe) -> None:
        """Encode worker: write each finished image; a file that cannot be written is reported, the run goes on."""
        for job, picture, pixels in inp:
            try:
                _write(job, picture, pixels, self.options, self.upscaler.output_scale)
                self.summary.done.append(job.target)
            except (SrkitError, OSError) as error:
                self.fail(job.source, _write_error(job, error))

    def run(self, jobs: list[Job]) -> None:
        bar = tqdm(total=len(jobs), unit="file", dynamic_ncols=True, disable=None)
        try:
            with Workers() as workers:
                decoded, finished = workers.pipe(PREFETCH), workers.pipe(WRITE_DEPTH)
                workers.start("srkit-decode", self.read_all, jobs, decoded)
                workers.start("srkit-encode", self.write_all, finished)
                for job, picture in decoded:
                    pixels = self.process(job, picture)
                    if pixels is not None:
                        finished.put((job, picture, pixels))
                    bar.update(1)
                finished.close()
                workers.join()
        finally:
            bar.close()

    def process(self, job: Job, picture: Picture | SrkitError) -> np.ndarray | None:
        """The upscaled pixels of one decoded job, or None after reporting why it cannot be done."""
        try:
            if isinstance(picture, SrkitError):
                raise picture
            tiles = tqdm(total=0, unit="tile", leave=False, disable=None)

            def progress(done: int, total: int) -> None:
                if total > 1:
                    tiles.total = total
                    tiles.n = done
                    tiles.refresh()

            try:
                return _upscaled(self.upscaler, job, picture, progress)
            finally:
                tiles.close()
        except SrkitError as error:
            self.fail(job.source, error)
            return None


def upscale_photo_jobs(
    jobs: list[Job], upscaler: Callable[[], Upscaler], options: WriteOptions, summary: Summary
) -> None:
    """Upscale planned photo jobs into their targets, recording each in `summary` (`upscaler` is asked for the
    model only when there are jobs)."""
    if jobs:
        _Run(upscaler(), options, summary).run(jobs)


def upscale_photo_units(
    jobs: list[Job], request: UpscaleRequest, scale_out: ScaleOut, options: WriteOptions, summary: Summary
) -> None:
    """Upscale planned photo jobs as units of work on the workers `scale_out` names, recording each in `summary`."""
    if not jobs:
        return
    bar = tqdm(total=len(jobs), unit="file", dynamic_ncols=True, disable=None)

    def done(index: int, error: str | None) -> None:
        if error is None:
            summary.done.append(jobs[index].target)
        else:
            _report(summary, jobs[index].source, error)
        bar.update(1)

    def retry(index: int, reason: str) -> None:
        """Count the retry, and remove what the lost worker was writing (its temporary files)."""
        summary.retried.append((jobs[index].source, reason))
        for target in (jobs[index].target, _compare_path(jobs[index])):
            for stale in leftovers(target):
                stale.unlink(missing_ok=True)

    output = Path(os.path.commonpath([job.target.parent.absolute() for job in jobs]))
    try:
        run_units(
            [PhotoUnit(job, options) for job in jobs],
            upscale_photo,
            request,
            scale_out,
            done,
            on_retry=retry,
            output=output,
        )
    finally:
        bar.close()
