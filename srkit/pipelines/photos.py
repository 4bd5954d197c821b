"""Upscale image files: decode, upscale with one Upscaler, write atomically; one bad file never stops the run."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..errors import SrkitError
from ..io.images import read_image, write_image
from ..upscaler import Upscaler


@dataclass
class Summary:
    """What a run did: files written and files that failed (with their one-line reasons)."""

    done: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def output_paths(inputs: list[Path], output: Path) -> list[Path]:
    """Target of each input: `output` itself for one input with an image extension, else output/<name>."""
    if len(inputs) == 1 and output.suffix.lower() in Image.registered_extensions() and not output.is_dir():
        return [output]
    return [output / path.name for path in inputs]


def upscale_files(inputs: list[str | os.PathLike], output: str | os.PathLike, upscaler: Upscaler) -> Summary:
    """Upscale each input image to its output path; print one line per failure and a final summary."""
    sources = [Path(p) for p in inputs]
    targets = output_paths(sources, Path(output))
    resolved_inputs = {p.resolve() for p in sources}
    summary = Summary()
    start = time.perf_counter()
    for source, target in tqdm(list(zip(sources, targets)), unit="file", disable=len(sources) < 2):
        try:
            if target.resolve() in resolved_inputs:
                raise SrkitError(f"{target}: refusing to overwrite an input; choose another -o")
            image = read_image(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_image(upscaler.upscale(image), target)
            summary.done.append(target)
        except SrkitError as error:
            summary.failed.append((source, str(error)))
            print(f"srkit: error: {error}", file=sys.stderr)
    summary.seconds = time.perf_counter() - start
    print(f"done {len(summary.done)}, failed {len(summary.failed)}, {summary.seconds:.1f} s", file=sys.stderr)
    return summary
