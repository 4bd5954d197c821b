"""The models shipped inside the package: srkit's own SR models and the texture families, with where their
weights lie. Importable without torch, so the command line can name them without loading any of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent / "models" / "builtin"


@dataclass(frozen=True)
class PackagedModel:
    """A named model whose srkit safetensors file ships inside the package."""

    name: str
    scale: int
    """SR: output / input size; texture families: pixels per noise cell."""
    arch: str
    description: str

    @property
    def path(self) -> Path:
        """Where the weights file lies in the installed package."""
        return BUILTIN_DIR / f"{self.name}.safetensors"


PACKAGED = (
    PackagedModel("srkit-photo-x2", 2, "compact", "srkit fidelity model for photos (trained here, see metadata)"),
    PackagedModel("srkit-photo-x4", 4, "compact", "srkit fidelity model for photos (trained here, see metadata)"),
    PackagedModel("srkit-seednet-x2", 2, "seednet", "the brief's seednet, trained like srkit-photo-x2"),
)

FAMILIES = (
    PackagedModel("wood", 16, "dcgan", "weathered panels, golden grain, walnut (OpenArena, GIMP)"),
    PackagedModel("stone", 16, "dcgan", "granite, rock, slate, stone, cracked mud, gravel (GIMP, scikit-image)"),
    PackagedModel("fabric", 16, "dcgan", "woven burlap (GIMP Fabric pattern)"),
    PackagedModel("grass", 16, "dcgan", "dry grass, lush grass, grass over rock (OpenArena)"),
)
DEFAULT_FAMILY = "stone"
EXEMPLAR_METHOD = "quilt"  # `--method quilt --exemplar FILE` (or `--exemplar FILE` alone): image quilting
