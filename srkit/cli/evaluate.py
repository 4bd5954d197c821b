"""`srkit eval`: PSNR / SSIM of a model and of bicubic on high-resolution photos, as a table or JSON."""

from __future__ import annotations

import argparse

from ..defaults import DEFAULT_MODEL
from .tables import ScoreTable
from .upscale import add_model_options, upscale_request
from .values import MAX_OUTPUT_SCALE, add_max_pixels, positive_number


def _eval(args: argparse.Namespace) -> int:
    from ..pipelines.evaluate import evaluate, report_json
    from ..upscaler import Upscaler

    table = ScoreTable()
    on_image = None if args.json else table.add
    report = evaluate(
        args.hr, Upscaler.from_request(upscale_request(args)), args.max_side or None, on_image, args.max_pixels
    )
    if args.json:
        print(report_json(report))
    else:
        table.mean(report)
    return 0


def add_eval(commands) -> None:
    """`srkit eval`: PSNR / SSIM of a model and of bicubic on high-resolution photos."""
    from ..train.options import DEFAULT_MAX_SIDE

    evaluation = commands.add_parser("eval", help="PSNR/SSIM (Y channel) of a model vs bicubic on HR photos")
    evaluation.add_argument("hr", nargs="+", metavar="HR", help="high-resolution photos or folders")
    evaluation.add_argument(
        "-m", "--model", default=DEFAULT_MODEL, help=f"model name or weights file ({DEFAULT_MODEL})"
    )
    evaluation.add_argument(
        "-s",
        "--scale",
        dest="output_scale",
        metavar="SCALE",
        type=positive_number(int, "-s/--scale", 2, int(MAX_OUTPUT_SCALE)),
        help="scale if not the model's (the model's output is resized to it)",
    )
    evaluation.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of a table (strict "
        "JSON: a score that is not finite, as the PSNR of an exact output, is null)",
    )
    evaluation.add_argument(
        "--max-side",
        type=positive_number(int, "--max-side", 0),
        default=DEFAULT_MAX_SIDE,
        help=f"reduce lossy photos longer than this by area first, as training does; 0: never ({DEFAULT_MAX_SIDE})",
    )
    add_max_pixels(evaluation, "photos")
    add_model_options(evaluation)
    evaluation.set_defaults(run=_eval, batch=None)
