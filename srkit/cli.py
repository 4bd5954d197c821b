"""The `srkit` command line: parse and validate arguments, then hand over to a pipeline (no math here)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .defaults import DEFAULT_MAX_PIXELS, DEFAULT_MODEL
from .errors import SrkitError


def _info(args: argparse.Namespace) -> int:
    from .environment import report

    rows = report()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from .models.zoo import list_models, model_dir

    rows = list_models()
    print(f"{'name':<26} {'scale':>5} {'arch':<8} {'size':>9}  available")
    for row in rows:
        size = f"{row['size_mb']:.1f} MB" if row["size_mb"] is not None else "-"
        print(f"{row['name']:<26} {row['scale'] or '-':>5} {row['arch'] or '-':<8} {size:>9}  {row['available']}")
    print(f"user models: {model_dir()}")
    return 0


def _models_import(args: argparse.Namespace) -> int:
    from .models.zoo import import_model

    print(f"imported {args.path} as {args.name}: {import_model(args.path, args.name, args.force)}")
    return 0


def _upscale_video(args: argparse.Namespace) -> int:
    from .io.video import EncodeSettings
    from .pipelines.video import VideoOptions, upscale_video

    source = Path(args.inputs[0])
    target = Path(args.output)
    if target.is_dir():
        target = target / source.name
    encode = EncodeSettings(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt,
                            options=dict(args.encoder_opt))
    options = VideoOptions(encode, start=args.start, duration=args.duration, max_frames=args.frames)
    upscaler = _upscaler(args)
    summary = upscale_video(source, target, upscaler, options)
    print(f"srkit: {summary.frames} frames in {summary.seconds:.1f} s ({summary.frames / summary.seconds:.2f} fps), "
          f"model busy {100 * summary.model_busy:.0f} %, {summary.corrupt} corrupt packets skipped -> {target}",
          file=sys.stderr)
    return 0


def _upscale(args: argparse.Namespace) -> int:
    from .pipelines.photos import PhotoOptions, plan_jobs, run_plan
    from .pipelines.video import is_video

    if len(args.inputs) == 1 and is_video(Path(args.inputs[0])):
        return _upscale_video(args)
    existing = "overwrite" if args.overwrite else "skip" if args.skip_existing else "refuse"
    options = PhotoOptions(format=args.format, quality=args.quality, suffix=args.suffix, existing=existing,
                           recursive=args.recursive, compare=args.compare, max_pixels=args.max_pixels)
    plan = plan_jobs(args.inputs, args.output, options)  # an unsafe plan is refused before the model loads
    return run_plan(plan, _upscaler(args), options).exit_code


def _upscaler(args: argparse.Namespace):
    """The Upscaler the upscale options describe (batch: 4 on CUDA, 1 on CPU unless given)."""
    from .environment import default_device
    from .upscaler import Upscaler

    device = args.device or default_device()
    batch = args.batch or (4 if str(device).startswith("cuda") else 1)
    tile = args.tile if args.tile == "auto" else int(args.tile)
    return Upscaler(args.model, device=device, dtype=args.dtype, tile=tile, batch=batch, outscale=args.scale)


def _positive_number(kind: type, name: str, low: float, high: float | None = None):
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {value!r}") from None
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {bounds}, got {value}")
        return number

    return parse


def _device(value: str) -> str:
    import torch

    try:
        device = torch.device(value)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"--device must be cpu or cuda[:index], got {value!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"--device {value}: no CUDA device is available here (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"--device must be cpu or cuda[:index], got {value!r}")
    return value


def _key_value(value: str) -> tuple[str, str]:
    key, sep, setting = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--encoder-opt must look like key=value, got {value!r}")
    return key, setting


def _tile(value: str) -> str:
    if value == "auto" or (value.isdigit() and int(value) >= 32):
        return value
    raise argparse.ArgumentTypeError(f"--tile must be 'auto' or an integer >= 32, got {value!r}")


def _add_train_sr(train_commands) -> None:
    """`srkit train sr` (issue 6; placeholder being written)."""


def _add_eval(commands) -> None:
    """`srkit eval` (issue 6; placeholder being written)."""


def _add_train_gan(train_commands) -> None:
    """`srkit train gan` (issue 7; placeholder being written)."""


def _add_textures(commands) -> None:
    """`srkit textures` (issue 7; placeholder being written)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every srkit subcommand."""
    parser = argparse.ArgumentParser(prog="srkit", description="Upscale photos and videos, synthesize textures.")
    parser.add_argument("--version", action="version", version=f"srkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info = commands.add_parser("info", help="print versions, devices and the active kernel backend")
    info.set_defaults(run=_info)

    upscale = commands.add_parser("upscale", help="upscale photos: files, directories (recursively) or globs")
    upscale.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, directories or glob patterns")
    upscale.add_argument("-o", "--output", required=True, help="output file (one input file) or directory")
    upscale.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"model name or weights file ({DEFAULT_MODEL})")
    upscale.add_argument("-s", "--scale", type=_positive_number(float, "-s/--scale", 0.05),
                         help="output scale if not the model's (area / Lanczos resize after the model)")
    upscale.add_argument("--tile", type=_tile, default="auto", help="tile size in input pixels, or auto")
    upscale.add_argument("--device", type=_device, help="cpu or cuda[:i] (default: cuda if available)")
    upscale.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), help="precision (fp16 on CUDA, fp32 on CPU)")
    upscale.add_argument("--batch", type=_positive_number(int, "--batch", 1),
                         help="tiles or video frames per model call (4 on CUDA, 1 on CPU)")
    upscale.add_argument("--format", choices=("keep", "png", "jpg", "webp", "tiff", "bmp"), default="keep",
                         help="output format (keep: the input's)")
    upscale.add_argument("--quality", type=_positive_number(int, "--quality", 1, 100), default=95,
                         help="JPEG / WebP quality (95)")
    upscale.add_argument("--suffix", default="", help="added to each output file name before the extension")
    existing = upscale.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that exist (resume a run)")
    upscale.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                         help="descend into sub-directories of directory inputs (default: yes)")
    upscale.add_argument("--compare", action="store_true", help="also write a before/after crop beside each output")
    upscale.add_argument("--max-pixels", type=_positive_number(int, "--max-pixels", 1), default=DEFAULT_MAX_PIXELS,
                         help=f"refuse images with more pixels (decompression-bomb guard, {DEFAULT_MAX_PIXELS})")
    video = upscale.add_argument_group("video (when the input is a video file)")
    video.add_argument("--codec", default="libx264", help="video encoder (libx264, libx265, libsvtav1, ffv1, ...)")
    video.add_argument("--crf", type=_positive_number(int, "--crf", 0, 63), default=18, help="quality (18)")
    video.add_argument("--preset", help="encoder preset (e.g. slow, medium, veryfast)")
    video.add_argument("--pix-fmt", default="yuv420p", help="output pixel format (yuv420p; yuv420p10le for 10-bit)")
    video.add_argument("--encoder-opt", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="extra encoder option (repeatable)")
    video.add_argument("--start", type=_positive_number(float, "--start", 0.0), default=0.0,
                       help="seconds to skip at the start")
    video.add_argument("--duration", type=_positive_number(float, "--duration", 0.001), help="seconds to process")
    video.add_argument("--frames", type=_positive_number(int, "--frames", 1), help="process only this many frames")
    upscale.set_defaults(run=_upscale)

    models = commands.add_parser("models", help="list models, import weights")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_commands.add_parser("list", help="models usable here").set_defaults(run=_models_list)
    importer = models_commands.add_parser("import", help="convert .pth/.safetensors/ncnn .param to srkit format")
    importer.add_argument("path", help="weights file (.pth, .pt, .safetensors, or ncnn .param beside its .bin)")
    importer.add_argument("--name", required=True, help="name to use with -m")
    importer.add_argument("--force", action="store_true", help="replace a user model of that name")
    importer.set_defaults(run=_models_import)

    train = commands.add_parser("train", help="train an SR model on photos, or a texture generator")
    train_commands = train.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    _add_train_sr(train_commands)
    _add_train_gan(train_commands)
    _add_eval(commands)
    _add_textures(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run srkit with `argv` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SrkitError as error:
        print(f"srkit: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("srkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
