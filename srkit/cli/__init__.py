"""The `srkit` command line: parse and check the arguments (one module per subcommand), then hand over to a
pipeline (no math here). Building the parser imports no torch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import SrkitError
from ..io.paths import one_line
from .evaluate import add_eval
from .models import add_info, add_models
from .textures import add_textures
from .train import add_train
from .upscale import add_upscale


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every srkit subcommand."""
    parser = argparse.ArgumentParser(prog="srkit", description="Upscale photos and videos, synthesize textures.")
    parser.add_argument("--version", action="version", version=f"srkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_info(commands)
    add_upscale(commands)
    add_models(commands)
    add_train(commands)
    add_eval(commands)
    add_textures(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run srkit with `argv` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SrkitError as error:
        print(f"srkit: error: {one_line(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("srkit: interrupted", file=sys.stderr)
        return 130
