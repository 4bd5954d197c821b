"""srkit: super-resolution for videos, photo folders and seamless texture packs, on fused Triton kernels."""

from ._version import __version__
from .errors import SrkitError

__all__ = ["__version__", "SrkitError"]
