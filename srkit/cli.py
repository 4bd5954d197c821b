"""The `srkit` command line: parse and validate arguments, then hand over to a pipeline (no math here)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .errors import SrkitError


def _info(args: argparse.Namespace) -> int:
    from .environment import report

    rows = report()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every srkit subcommand."""
    parser = argparse.ArgumentParser(prog="srkit", description="Upscale photos and videos, synthesize textures.")
    parser.add_argument("--version", action="version", version=f"srkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info = commands.add_parser("info", help="print versions, devices and the active kernel backend")
    info.set_defaults(run=_info)
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
