"""Argument types of the command line: each checks one option's value where it enters and, when it is wrong,
exits 2 with one line naming the option and what it takes."""

from __future__ import annotations

import argparse
import math
import os

from ..defaults import DEFAULT_MAX_PIXELS, MAX_SEED, MIN_TILE

MAX_INT = 2**31 - 1  # the default upper bound of an integer option: what a C int (torch, FFmpeg, OpenCV) holds
MAX_OUTPUT_SCALE = 16.0  # -s: an output side 16x the input's is past any model srkit ships (x4) resized up
MAX_SECONDS = 1e7  # --start, --duration, --segment-seconds: about 116 days


def positive_number(kind: type, name: str, low: float, high: float | None = None):
    """An argparse type for a numeric option: a finite `kind` in [low, high] (ints: high defaults to MAX_INT), else
    exit 2 with one line naming the option and its range. Every numeric option of every subcommand uses it."""
    limit = MAX_INT if high is None and kind is int else high

    def text(number: float) -> str:
        return f"{number:g}" if isinstance(number, float) else str(number)

    def parse(value: str):
        try:
            number = kind(value)
        except (ValueError, OverflowError):
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {value!r}") from None
        if not math.isfinite(number) or number < low or (limit is not None and number > limit):
            bounds = (
                f"between {text(low)} and {text(high)}"
                if high is not None
                else f"at least {text(low)} (at most {limit})"
                if limit is not None
                else f"a finite number of at least {text(low)}"
            )
            raise argparse.ArgumentTypeError(f"{name} must be {bounds}, got {value}")
        return number

    return parse


seed = positive_number(int, "--seed", 0, MAX_SEED)  # every --seed: an integer from 0 to MAX_SEED


def reuse_threshold(value: str) -> int | None:
    """--reuse-frames: a threshold in 8-bit codes from 0 to 255, or None for 'off'."""
    if value.strip().lower() == "off":
        return None
    return positive_number(int, "--reuse-frames", 0, 255)(value)


def device(value: str) -> str:
    """--device: cpu or cuda[:index], a CUDA device only where one is available."""
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


def key_value(value: str) -> tuple[str, str]:
    """--encoder-opt: KEY=VALUE as (key, value)."""
    key, sep, setting = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--encoder-opt must look like key=value, got {value!r}")
    return key, setting


def suffix(value: str) -> str:
    """--suffix: text for the end of a file name, so no path separator or NUL that could lead out of -o."""
    if any(char in value for char in "/\0" + os.sep + (os.altsep or "")):
        raise argparse.ArgumentTypeError(
            f"--suffix must be part of a file name, without path separators, got {value!r}"
        )
    return value


def tile(value: str) -> int | None:
    """--tile: a size in input pixels, or None for 'auto' (chosen from free memory)."""
    if value == "auto":
        return None
    if value.isdigit() and MIN_TILE <= int(value) <= MAX_INT:
        return int(value)
    raise argparse.ArgumentTypeError(f"--tile must be 'auto' or an integer from {MIN_TILE} to {MAX_INT}, got {value!r}")


def add_max_pixels(parser: argparse.ArgumentParser, what: str = "images") -> None:
    """--max-pixels: the decompression-bomb guard of every command that reads images (the limit its error names)."""
    parser.add_argument(
        "--max-pixels",
        type=positive_number(int, "--max-pixels", 1),
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse {what} with more pixels (decompression-bomb guard, {DEFAULT_MAX_PIXELS})",
    )
