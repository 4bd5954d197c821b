"""Texture generators: the built-in families shipped with srkit, and generator files from `srkit train gan`.

A family's weights are `srkit/models/builtin/<family>.safetensors`, trained by `srkit train gan` on the
exemplars named in their metadata (with the command, steps and time); any `generator.safetensors` a training
run writes loads the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..catalog import FAMILIES
from ..errors import ModelFormatError, ModelNotFoundError
from .registry import GENERATOR_ARCHES, load_as
from .weights import read_metadata, read_weights
from .zoo import LoadedModel


def available_families() -> list[str]:
    """Names of the built-in families whose weights are installed."""
    return [family.name for family in FAMILIES if family.path.is_file()]


def read_generator(path: str | os.PathLike, name: str | None = None) -> LoadedModel:
    """Load a texture generator from a weights file (.safetensors written by `srkit train gan`, or .pth)."""
    path = Path(path)
    state, _ = read_weights(path)
    arch = next((arch for arch in GENERATOR_ARCHES if arch.detect(state)), None)
    if arch is None:
        raise ModelFormatError(
            f"{path}: not a texture generator; pass the generator.safetensors that "
            "`srkit train gan` writes in its run folder"
        )
    module, info = load_as(arch, state, {}, str(path))
    return LoadedModel(name or path.stem, module, info, str(path), arch)


def load_family(name: str) -> LoadedModel:
    """Load a built-in texture family by name."""
    family = next((f for f in FAMILIES if f.name == name), None)
    if family is None:
        raise ModelNotFoundError(
            f"no texture family named {name!r}; choose one of "
            f"{', '.join(f.name for f in FAMILIES)}, or pass --model / --method"
        )
    if not family.path.is_file():
        raise ModelNotFoundError(
            f"texture family {name!r}: its weights {family.path} are not installed; reinstall srkit"
        )
    return read_generator(family.path, name)


def material_names(generator: LoadedModel) -> list[str]:
    """Names of a generator's materials (material m was trained on the m-th exemplar its metadata names; the
    exemplar's file stem, or its file name where two share a stem), or `material m` where the file does not say;
    [] without materials."""
    count = len(getattr(generator.module, "materials", ()))
    if not count:
        return []
    training = read_metadata(generator.source).get("training")
    data = training.get("data") if isinstance(training, dict) else None
    if isinstance(data, list) and len(data) == count and all(isinstance(path, str) for path in data):
        stems = [Path(path).stem for path in data]
        return [Path(path).name if stems.count(stem) > 1 else stem for path, stem in zip(data, stems, strict=True)]
    return [f"material {index}" for index in range(count)]
