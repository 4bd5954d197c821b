"""Copy a `srkit train gan` run's generator into srkit/models/builtin/<family>.safetensors, naming its training data
as srkit/train/exemplar_sources.py's `portable` does (registry exemplars by their record paths, OpenArena's as
archive members; scikit-image's data folder as $SKIMAGE_DATA; `locate` finds them again), so the shipped file names
no machine-specific path.

    python benchmarks/ship_texture_family.py runs/stone/generator.safetensors stone
    python benchmarks/ship_texture_family.py runs/stone-tuned/generator.safetensors stone \
        --init-was "srkit's built-in stone of issue 20 (git 70aee98)"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import skimage

from srkit.catalog import FAMILIES
from srkit.models.weights import read_weights, write_safetensors
from srkit.train.exemplar_sources import SKIMAGE_DATA, portable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generator", type=Path, help="a run's generator.safetensors")
    parser.add_argument("family", choices=[f.name for f in FAMILIES])
    parser.add_argument(
        "--init-was",
        help="what the run's --init named, recorded instead of its path or family name (which the copy replaces)",
    )
    args = parser.parse_args(argv)
    state, metadata = read_weights(args.generator)
    training = metadata["training"]
    training["data"] = [portable(Path(p)) for p in training["data"]]
    if any(SKIMAGE_DATA in p for p in training["data"]):
        training["paths"] = {
            SKIMAGE_DATA: f"the data folder of the installed scikit-image package ({skimage.__version__})"
        }
    if "init" in training:
        if not args.init_was:
            parser.error(f"the run started from --init {training['init']}: say what that was with --init-was")
        training["init"] = args.init_was
    target = next(f.path for f in FAMILIES if f.name == args.family)
    write_safetensors(target, state, dict(metadata, family=args.family), overwrite=True)
    print(f"{target}: {target.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
