"""Architectures srkit has not fused, through spandrel (the optional extra `srkit[spandrel]`): DAT, OmniSR,
RealPLKSR, HAT, SwinIR and the rest of spandrel's registry run eagerly through srkit's tiler, size rules and
I/O, flagged "not fused". spandrel's package import reaches torchvision for two unrelated architectures (LaMa,
RestoreFormer); where torchvision is not installed, an empty stand-in lets everything else load."""

from __future__ import annotations

import importlib
import sys
import types

from ..errors import ModelFormatError
from .arch import Arch, parameter_count
from .info import ALL_DTYPES, ModelInfo
from .lowering import EagerProgram
from .size_rules import SizeRules

EXTRA = "pip install 'srkit[spandrel]'"
# Receptive reach is not published by spandrel; transformer windows and attention reach further than this,
# so tile overlaps use it as a practical guard rather than an exact radius.
TILE_OVERLAP = 32


def _stand_in_torchvision() -> None:
    """Register an empty torchvision (and transforms.functional) whose names fail only when used."""

    def unavailable(*args, **kwargs):
        raise ModelFormatError("this architecture needs torchvision: pip install torchvision")

    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    for name in ("rotate", "normalize", "InterpolationMode"):
        setattr(functional, name, unavailable)
    vars(root)["transforms"], vars(transforms)["functional"] = transforms, functional
    sys.modules.update(
        {"torchvision": root, "torchvision.transforms": transforms, "torchvision.transforms.functional": functional}
    )


def import_spandrel() -> types.ModuleType | None:
    """The spandrel package, or None when it is not installed."""
    try:
        importlib.import_module("torchvision")
    except (ImportError, RuntimeError, OSError):  # missing, or built for another torch: the stand-in replaces it
        _stand_in_torchvision()
    try:
        return importlib.import_module("spandrel")
    except ModuleNotFoundError:
        return None


class SpandrelArch(Arch):
    """Whatever spandrel's own registry detects, run as spandrel's module (last in srkit's order)."""

    id = "spandrel"
    name = "spandrel (not fused)"
    blend_pixels = 0  # the guard radius below is all the context a window takes
    layouts = ()

    def detect(self, state_dict):
        spandrel = import_spandrel()
        if spandrel is None:
            return False
        state_dict = spandrel.canonicalize_state_dict(dict(state_dict))
        return any(support.detect(state_dict) for support in spandrel.MAIN_REGISTRY.architectures("detection"))

    def load(self, state_dict, hints):
        spandrel = import_spandrel()
        if spandrel is None:
            raise ValueError(f"this model needs spandrel: {EXTRA}")
        try:
            descriptor = spandrel.ModelLoader().load_from_state_dict(dict(state_dict))
        except spandrel.UnsupportedModelError:
            raise ValueError("spandrel does not know this architecture either") from None
        if not isinstance(descriptor, spandrel.ImageModelDescriptor):
            raise ValueError(f"{descriptor.architecture.name} is not an image-to-image model")
        size = descriptor.size_requirements
        dtypes = tuple(
            d for d, ok in zip(ALL_DTYPES, (True, descriptor.supports_half, descriptor.supports_bfloat16)) if ok
        )
        info = ModelInfo(
            f"{self.id}:{descriptor.architecture.id}",
            descriptor.scale,
            descriptor.input_channels,
            descriptor.output_channels,
            0,
            0,
            parameter_count(descriptor.model),
            variant=", ".join(descriptor.tags),
            dtypes=dtypes,
            size_rules=SizeRules(size.multiple_of, max(1, size.minimum), size.square),
            receptive_radius=TILE_OVERLAP,
            fused=False,
        )
        return descriptor.model.eval(), info

    def lower(self, module, info, device):
        return EagerProgram(module, info, device)


ARCH = SpandrelArch()
