"""srkit: super-resolution for videos, photo folders and seamless texture packs, on fused Triton kernels."""

from ._version import __version__

__all__ = ["__version__"]
