"""Reading and writing still images with Pillow (format chosen from the output file's extension)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import SrkitError
from .atomic import atomic_path


class ImageReadError(SrkitError):
    """An input image that cannot be decoded."""


def read_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image fully (so truncation shows here), with its EXIF orientation applied."""
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"{path}: cannot read image ({error})") from None


def write_image(image: Image.Image, path: str | os.PathLike) -> None:
    """Encode `image` to `path` atomically; the extension picks the format."""
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            image.save(tmp, format=Image.registered_extensions().get(path.suffix.lower()))
        except (KeyError, ValueError, OSError) as error:
            raise SrkitError(f"{path}: cannot write image ({error})") from None
