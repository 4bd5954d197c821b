"""srkit: super-resolution for videos, photo folders and seamless texture packs, on fused Triton kernels."""

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import SrkitError

if TYPE_CHECKING:  # the names __getattr__ imports on first use, for type checkers and editors
    from .models.zoo import load_model
    from .texture_generator import TextureGenerator
    from .upscaler import Upscaler

__all__ = ["__version__", "SrkitError", "TextureGenerator", "Upscaler", "load_model"]


def __getattr__(name: str):
    """Import the heavy API (torch, the engine) only when it is used, so `srkit --version` stays instant."""
    if name == "Upscaler":
        from .upscaler import Upscaler

        return Upscaler
    if name == "TextureGenerator":
        from .texture_generator import TextureGenerator

        return TextureGenerator
    if name == "load_model":
        from .models.zoo import load_model

        return load_model
    raise AttributeError(f"module 'srkit' has no attribute {name!r}")
