"""The `srkit` command line: parse and validate arguments, then hand over to a pipeline (no math here)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .defaults import DEFAULT_MODEL
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


def _upscale(args: argparse.Namespace) -> int:
    from .pipelines.photos import upscale_files
    from .upscaler import Upscaler

    tile = args.tile if args.tile == "auto" else int(args.tile)
    upscaler = Upscaler(args.model, device=args.device, dtype=args.dtype, tile=tile, outscale=args.scale)
    return 1 if upscale_files(args.inputs, args.output, upscaler).failed else 0


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


def _tile(value: str) -> str:
    if value == "auto" or (value.isdigit() and int(value) >= 32):
        return value
    raise argparse.ArgumentTypeError(f"--tile must be 'auto' or an integer >= 32, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every srkit subcommand."""
    parser = argparse.ArgumentParser(prog="srkit", description="Upscale photos and videos, synthesize textures.")
    parser.add_argument("--version", action="version", version=f"srkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info = commands.add_parser("info", help="print versions, devices and the active kernel backend")
    info.set_defaults(run=_info)

    upscale = commands.add_parser("upscale", help="upscale image files")
    upscale.add_argument("inputs", nargs="+", metavar="INPUT", help="image files")
    upscale.add_argument("-o", "--output", required=True, help="output file (one input) or directory")
    upscale.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"model name or weights file ({DEFAULT_MODEL})")
    upscale.add_argument("-s", "--scale", type=float, help="output scale if not the model's (area/Lanczos resize)")
    upscale.add_argument("--tile", type=_tile, default="auto", help="tile size in input pixels, or auto")
    upscale.add_argument("--device", type=_device, help="cpu or cuda[:i] (default: cuda if available)")
    upscale.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), help="precision (fp16 on CUDA, fp32 on CPU)")
    upscale.set_defaults(run=_upscale)

    models = commands.add_parser("models", help="list models, import weights")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_commands.add_parser("list", help="models usable here").set_defaults(run=_models_list)
    importer = models_commands.add_parser("import", help="convert .pth/.safetensors/ncnn .param to srkit format")
    importer.add_argument("path", help="weights file (.pth, .pt, .safetensors, or ncnn .param beside its .bin)")
    importer.add_argument("--name", required=True, help="name to use with -m")
    importer.add_argument("--force", action="store_true", help="replace a user model of that name")
    importer.set_defaults(run=_models_import)
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
