"""`srkit upscale`: its options, and the one UpscaleRequest, batch, write, video and scale-out options they make
(checked here, before any model loads), handed to the batch pipeline."""

from __future__ import annotations

import argparse

from ..defaults import DEFAULT_MODEL, DEFAULT_SEGMENT_SECONDS, DTYPE_NAMES
from ..io.formats import PHOTO_OUTPUTS
from ..request import UpscaleRequest
from .values import (
    MAX_OUTPUT_SCALE,
    MAX_SECONDS,
    add_max_pixels,
    device,
    key_value,
    positive_number,
    reuse_threshold,
    suffix,
    tile,
)


def upscale_request(args: argparse.Namespace) -> UpscaleRequest:
    """The request the model options describe (`srkit upscale`, `srkit eval`): --device, else the first of
    --devices, else the default device."""
    devices = getattr(args, "devices", None)
    chosen = args.device or (devices.split(",")[0].strip() if devices else None)
    return UpscaleRequest(
        str(args.model),
        device=chosen,
        dtype=args.dtype,
        batch=args.batch,
        tile=args.tile,
        output_scale=args.output_scale,
    )


def _video_options(args: argparse.Namespace):
    """The VideoOptions the video options describe."""
    from ..io.video.output import EncodeSettings
    from ..pipelines.video_types import VideoOptions

    encode = EncodeSettings(
        codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt, options=dict(args.encoder_opt)
    )
    return VideoOptions(
        encode,
        start=args.start,
        duration=args.duration,
        max_frames=args.frames,
        deinterlace=args.deinterlace,
        allow_truncated=args.allow_truncated,
        reuse_threshold=args.reuse_frames,
        segment_seconds=args.segment_seconds,
        resume=args.resume,
    )


def _upscale(args: argparse.Namespace) -> int:
    from ..pipelines.batch import run_plan
    from ..pipelines.batch_plan import plan_jobs
    from ..pipelines.scaleout import scale_out_options
    from ..pipelines.types import BatchOptions, WriteOptions

    if args.threads:  # every CPU backend runs on torch's thread count (engine/cpu_support.py)
        import torch

        torch.set_num_threads(args.threads)
    write = WriteOptions(
        quality=args.quality, compare=args.compare, overwrite=args.overwrite, max_pixels=args.max_pixels
    )
    options = BatchOptions(
        format=args.format, suffix=args.suffix, skip_existing=args.skip_existing, recursive=args.recursive, write=write
    )
    where = scale_out_options(args.backend, args.workers, args.devices, args.ray_address, args.device)
    request = upscale_request(args)
    plan = plan_jobs(args.inputs, args.output, options, _video_options(args), request)  # refused before any load
    return run_plan(plan, request, where).exit_code


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--tile, --device and --dtype, shared by `srkit upscale` and `srkit eval`."""
    parser.add_argument("--tile", type=tile, default="auto", help="tile size in input pixels, or auto")
    parser.add_argument("--device", type=device, help="cpu or cuda[:i] (default: cuda if available)")
    parser.add_argument(
        "--dtype",
        choices=DTYPE_NAMES,
        help="precision (fp16 on CUDA; on CPU the backend's best; int8: CPU only, OpenVINO NNCF "
        "quantization, lower quality: see the README)",
    )


def add_upscale(commands) -> None:
    """`srkit upscale INPUT... -o OUT`."""
    upscale = commands.add_parser(
        "upscale", help="upscale photos, animated images and videos: files, directories (recursively) or globs"
    )
    upscale.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image or video files, directories or globs; a name that exists is that file or "
        "directory even if it holds *, ? or [ ]; only a name that exists as nothing is "
        "expanded as a pattern",
    )
    upscale.add_argument("-o", "--output", required=True, help="output file (one input file) or directory")
    upscale.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"model name or weights file ({DEFAULT_MODEL})")
    upscale.add_argument(
        "-s",
        "--scale",
        dest="output_scale",
        metavar="SCALE",
        type=positive_number(float, "-s/--scale", 0.05, MAX_OUTPUT_SCALE),
        help="output scale if not the model's (area / Lanczos resize after the model)",
    )
    add_model_options(upscale)
    upscale.add_argument(
        "--batch",
        type=positive_number(int, "--batch", 1),
        help="tiles or video frames per model call (4 on CUDA, 1 on CPU)",
    )
    upscale.add_argument(
        "--threads",
        type=positive_number(int, "--threads", 1),
        help="CPU threads for the network, whichever CPU backend runs it (default: the physical "
        "cores; with --workers N each worker takes its share of the cores instead)",
    )
    upscale.add_argument(
        "--format", choices=("keep", *PHOTO_OUTPUTS), default="keep", help="output format (keep: the input's)"
    )
    upscale.add_argument(
        "--quality", type=positive_number(int, "--quality", 1, 100), default=95, help="JPEG / WebP quality (95)"
    )
    upscale.add_argument(
        "--suffix",
        type=suffix,
        default="",
        help="added to each output file name before the extension (no path separators)",
    )
    existing = upscale.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that exist (resume a run)")
    upscale.add_argument(
        "--recursive",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="descend into sub-directories of directory inputs (default: yes)",
    )
    upscale.add_argument("--compare", action="store_true", help="also write a before/after crop beside each output")
    add_max_pixels(upscale)
    video = upscale.add_argument_group("video (for inputs that are videos)")
    video.add_argument(
        "--codec",
        help="video encoder (libx264, libx265, libsvtav1, ffv1, ...; default: the "
        "container's own, libvpx-vp9 for .webm, else libx264)",
    )
    video.add_argument("--crf", type=positive_number(int, "--crf", 0, 63), default=18, help="quality (18)")
    video.add_argument("--preset", help="encoder preset (e.g. slow, medium, veryfast)")
    video.add_argument(
        "--pix-fmt",
        help="output pixel format (default: the input's bit depth and chroma where "
        "the codec takes them, e.g. yuv420p or yuv420p10le)",
    )
    video.add_argument(
        "--deinterlace",
        choices=("auto", "on", "off"),
        default="auto",
        help="deinterlace with FFmpeg's bwdif (auto: input flagged interlaced)",
    )
    video.add_argument(
        "--allow-truncated",
        action="store_true",
        help="keep the output of a video that ends before its container says (else an error)",
    )
    video.add_argument(
        "--encoder-opt",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra encoder option (repeatable)",
    )
    video.add_argument(
        "--start",
        type=positive_number(float, "--start", 0.0, MAX_SECONDS),
        default=0.0,
        help="seconds to skip at the start",
    )
    video.add_argument(
        "--duration", type=positive_number(float, "--duration", 0.001, MAX_SECONDS), help="seconds to process"
    )
    video.add_argument("--frames", type=positive_number(int, "--frames", 1), help="process only this many frames")
    video.add_argument(
        "--reuse-frames",
        type=reuse_threshold,
        default=0,
        metavar="THRESHOLD",
        help="reuse the last output for a frame whose every pixel is within THRESHOLD 8-bit codes of "
        "the frame that made it (held frames; 0: exactly equal, the default; off: never)",
    )
    video.add_argument(
        "--segment-seconds",
        type=positive_number(float, "--segment-seconds", 0.0, MAX_SECONDS),
        default=DEFAULT_SEGMENT_SECONDS,
        metavar="SECONDS",
        help="cut longer videos at keyframes into segments of about this length, kept in "
        f".<output name>.srkit/ until joined, so a crash loses one segment; 0: off "
        f"({DEFAULT_SEGMENT_SECONDS:g})",
    )
    video.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted segmented run from its finished segments (same input and options)",
    )
    workers = upscale.add_argument_group("many workers (units of work: photo files, video segments)")
    workers.add_argument(
        "--workers",
        type=positive_number(int, "--workers", 1),
        help="worker processes (local) or Ray actors, each with its own model; CPU workers split the "
        "cores (default: 1; with --devices one per device; Ray on CUDA: one per GPU)",
    )
    workers.add_argument("--devices", metavar="cuda:0,cuda:1,...", help="one local worker per CUDA device")
    workers.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local processes, or Ray actors (pip install 'srkit[ray]') (local)",
    )
    workers.add_argument(
        "--ray-address", metavar="ADDR", help="the Ray cluster to join (default: start a local Ray instance)"
    )
    upscale.set_defaults(run=_upscale)
