"""Run a planned batch (pipelines/batch_plan.py): each job through its own pipeline, on the workers the run is
given (this process, worker processes or Ray). Existing outputs follow --overwrite / --skip-existing for every kind;
one bad file is reported in one line and the run goes on with the rest.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import SrkitError
from ..io.atomic import EXISTS_HINT
from ..io.paths import one_line, shown
from ..request import UpscaleRequest
from ..upscaler import Upscaler
from .animated import upscale_animation
from .batch_plan import BatchPlan, plan_jobs
from .photos import upscale_photo_jobs, upscale_photo_units
from .scaleout import retried_text
from .threads import signals_interrupt
from .types import ANIMATION, LOCAL, PHOTO, VIDEO, BatchOptions, Job, ScaleOut, Summary
from .video import upscale_video
from .video_types import VideoOptions
from .workfolder import WorkFolder, work_folder_for


def _wanted(job: Job, options: BatchOptions, summary: Summary, video: VideoOptions) -> bool:
    """Apply --skip-existing / --overwrite; a target that exists is otherwise an error, except for a segmented
    video whose interrupted run --resume continues (it may have been killed just after its output was in place)."""
    if not job.target.exists():
        return True
    if video.resume and job.kind == VIDEO and WorkFolder(work_folder_for(job.target)).has_manifest():
        return True
    if options.skip_existing:
        summary.skipped.append((job.source, f"{job.target} exists"))
        return False
    if options.write.overwrite:
        return True
    _fail(summary, job.source, f"{job.target} exists; {EXISTS_HINT}")
    return False


def _fail(summary: Summary, path: Path, message: str) -> None:
    summary.failed.append((path, message))
    print(f"srkit: error: {one_line(message)}", file=sys.stderr)


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MB" if nbytes >= 2**20 else f"{nbytes / 1024:.1f} kB"


def _outputs(done: list[Path], output: Path) -> str:
    """' -> FILE (SIZE)' for one output, ' -> FOLDER (N files, SIZE)' for several, '' for none."""
    sizes = [path.stat().st_size for path in done if path.exists()]
    if not done:
        return ""
    if len(done) == 1:
        return f" -> {shown(done[0])} ({_size(sum(sizes))})"
    return f" -> {shown(output)} ({len(done)} files, {_size(sum(sizes))})"


def run_plan(
    plan: BatchPlan, request: UpscaleRequest, where: ScaleOut = LOCAL, upscaler: Upscaler | None = None
) -> Summary:
    """Upscale a planned batch with the model and settings of `request` on the workers `where` names (the model
    is loaded only if there is work); prints one line per problem and a summary naming the output and its size.

    Videos longer than one segment go through the segmented pipeline; with a parallel `where`, photos and segments
    are units of work on its workers. `upscaler`, one already built from `request`, runs what runs here.
    """
    start = time.perf_counter()
    summary = Summary(skipped=list(plan.skipped))
    for path, message in plan.unusable:
        _fail(summary, path, message)
    for path, reason in plan.skipped:
        print(f"srkit: skipped {shown(path)}: {reason}", file=sys.stderr)
    jobs = [job for job in plan.jobs if _wanted(job, plan.options, summary, plan.video)]
    loaded = [upscaler] if upscaler is not None else []

    def model() -> Upscaler:
        """The Upscaler of this process, built when the first job that runs here needs it."""
        if not loaded:
            loaded.append(Upscaler.from_request(request.on(where.devices[0] if where.devices else None)))
            if loaded[0].runner.choice:  # which CPU runtime runs the model, and why
                print(f"srkit: {loaded[0].runner.name}: {loaded[0].runner.choice.reason()}", file=sys.stderr)
        return loaded[0]

    with signals_interrupt():  # SIGTERM / SIGHUP stop the run as Ctrl-C does: nothing half-written is left
        _run_jobs(jobs, model, plan, request, where, summary)
    summary.seconds = time.perf_counter() - start
    print(
        f"srkit: done {len(summary.done)}, skipped {len(summary.skipped)}, failed {len(summary.failed)}"
        f"{retried_text([reason for _, reason in summary.retried])} in {summary.seconds:.1f} s"
        f"{_outputs(summary.done, plan.output)}",
        file=sys.stderr,
    )
    return summary


def _run_jobs(
    jobs: list[Job],
    model: Callable[[], Upscaler],
    plan: BatchPlan,
    request: UpscaleRequest,
    where: ScaleOut,
    summary: Summary,
) -> None:
    """Each job through its pipeline: photos together (decode ahead, encode behind here, or one file per unit on
    the workers of a parallel `where`), then the others one by one."""
    write = plan.options.write
    photos = [job for job in jobs if job.kind == PHOTO]
    if where.parallel:
        upscale_photo_units(photos, request, where, write, summary)
    else:
        upscale_photo_jobs(photos, model, write, summary)
    for job in jobs:
        try:
            if job.kind != PHOTO:
                _make_folder(job.target)
            if job.kind == ANIMATION:
                upscale_animation(job.source, job.target, model(), write)
            elif job.kind == VIDEO:
                _video(job, model, plan.video, request, where, write.overwrite)
            else:
                continue
            summary.done.append(job.target)
        except SrkitError as error:
            if error.exit_code == 2:  # a bad option or plan: every other job would hit it too
                raise
            _fail(summary, job.source, str(error))


def _make_folder(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SrkitError(f"{target}: cannot create its folder ({error.strerror or error})") from None


def _video(
    job: Job,
    model: Callable[[], Upscaler],
    options: VideoOptions,
    spec: UpscaleRequest | None,
    scale_out: ScaleOut,
    overwrite: bool,
) -> None:
    """One video: in segments when a spec is given and the video is longer than one, else streamed."""
    made = upscale_video(job.source, job.target, options, model, spec, scale_out, job.info, overwrite, job.output)
    pieces = (
        (
            f", segments: {made.encoded_segments} encoded{retried_text(made.retried_segments)}, "
            f"{made.kept_segments} kept from the interrupted run"
        )
        if made.segments > 1
        else ""
    )
    rate = made.frames / made.seconds if made.seconds else 0.0
    print(
        f"srkit: {shown(job.source)}: {made.frames} frames in {made.seconds:.1f} s ({rate:.2f} fps), model busy "
        f"{100 * made.model_busy:.0f} %, {made.reused} held frames reused, {made.corrupt} corrupt packets "
        f"skipped{pieces} -> {shown(job.target)} ({_size(job.target.stat().st_size)})",
        file=sys.stderr,
    )


def upscale_batch(
    inputs: list[str],
    output: str | os.PathLike,
    upscaler: Upscaler,
    options: BatchOptions | None = None,
    video: VideoOptions | None = None,
) -> Summary:
    """Upscale every photo, animated image and video the inputs name (files, directories, globs) into `output`
    with an Upscaler already made (in this process)."""
    plan = plan_jobs(inputs, output, options or BatchOptions(), video, upscaler.request, upscaler.model_scale)
    return run_plan(plan, upscaler.request, upscaler=upscaler)
