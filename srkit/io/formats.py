"""The one registry of still and animated image formats srkit reads and writes, and what each can hold.

An entry says how users name a format (`--format`, file extensions), who reads and writes it, its bit depths,
alpha, the metadata it carries, the largest side its encoder writes and whether (and how) it animates; the
readers and writers in io.images and io.animated, the CLI's choices, batch planning, the photo and texture
pipelines and the training data all look formats up here. Adding a format that Pillow reads and writes is one
entry. This module imports neither Pillow nor numpy, so building the CLI parser stays light.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from PIL import Image


def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR: colour type 4 is gray+alpha, 6 RGBA, 2 RGB, 0 gray."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    return (header[24], header[25]) if len(header) == 26 and header[12:16] == b"IHDR" else (8, 2)


def _png_deep_colour(image: Image.Image, path: Path) -> str | None:
    """'RGB;16' or 'LA;16' for a 16-bit colour or gray+alpha PNG, which Pillow opens as 8-bit RGB(A); else None."""
    if image.mode not in ("RGB", "RGBA"):
        return None
    depth, colour = _png_header(path)
    return None if depth != 16 else "LA;16" if colour == 4 else "RGB;16"


def _tiff_deep_colour(image: Image.Image, path: Path) -> str | None:
    """'RGB;16' for a TIFF of 16 bits per colour sample (BitsPerSample, tag 258), which Pillow opens as 8-bit."""
    bits = image.tag_v2.get(258, (8,))  # pyright: ignore[reportAttributeAccessIssue]  # a TiffImageFile
    deep = max(bits if isinstance(bits, tuple) else (bits,)) == 16
    return "RGB;16" if image.mode in ("RGB", "RGBA") and deep else None


def _webp_lossless(path: Path) -> bool:
    """Whether every frame of a WebP file is VP8L (lossless), read from its RIFF chunks."""
    data = path.read_bytes()
    kinds, offset = [], 12
    while offset + 8 <= len(data):
        kind, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if kind == b"ANMF":  # a frame: 16 bytes of position and timing, then its own chunks
            inner = offset + 24
            while inner + 8 <= offset + 8 + size:
                kinds.append(data[inner : inner + 4])
                length = int.from_bytes(data[inner + 4 : inner + 8], "little")
                inner += 8 + length + (length & 1)
        else:
            kinds.append(kind)
        offset += 8 + size + (size & 1)
    coded = [kind for kind in kinds if kind in (b"VP8 ", b"VP8L")]
    return bool(coded) and all(kind == b"VP8L" for kind in coded)


@dataclass(frozen=True)
class Animated:
    """How Pillow writes a format's animations (io.animated): every frame complete, with the source's timing."""

    options: tuple[tuple[str, object], ...] = ()
    """Pillow save options for every animation; a `loop` here is the count for a source without one."""
    streamed: bool = False
    """Pillow's writer takes the frames once, so they can be made while it encodes (else they are listed first)."""
    lossless: Callable[[Path], bool] | None = None
    """For a lossy format: whether a file is stored losslessly, so it is written back losslessly."""


@dataclass(frozen=True)
class ImageFormat:
    """One image format: its names, who reads and writes it, and what it can hold."""

    name: str
    """The `--format` name, and how messages list it."""
    pillow: str
    """Pillow's name (Image.format when read, save(format=...) when written), and how messages name it."""
    extensions: tuple[str, ...]
    """Lower-case file extensions; an output given this format gets the first."""
    encoder: Literal["pillow", "png"] = "pillow"
    """Who writes stills: Pillow, or srkit's strip encoder (io.png, straight from the array)."""
    deep_colour: Callable[[Image.Image, Path], str | None] | None = None
    """For a format that keeps 16 bits per channel: the source mode ('RGB;16', 'LA;16') of a 16-bit colour file,
    which Pillow would cut to 8 bits (OpenCV reads it, and writes it where Pillow encodes the format); 16-bit gray
    goes through Pillow. None: 8 bits per channel only."""
    alpha: Literal["none", "one-bit", "full"] = "none"
    """How much alpha it keeps; one-bit (GIF): a pixel is shown or cleared."""
    metadata: frozenset[Literal["exif", "icc", "dpi"]] = frozenset()
    """Which of the source's EXIF, ICC profile and DPI its writer carries."""
    lossy: bool = False
    """Takes --quality; training reduces large photos of it by area first (io.images, train.data)."""
    max_side: int | None = None
    """The longest side its encoder can write; None: any size srkit makes."""
    photo_output: bool = True
    """Offered by --format for photos."""
    modes: tuple[str, ...] | None = None
    """The Pillow modes its writer takes (others are converted to RGB or RGBA first); None: any srkit makes."""
    save_options: tuple[tuple[str, object], ...] = ()
    """Pillow save options for every still written."""
    animation: Animated | None = None
    """How it animates; None: stills only."""

    @property
    def stores_alpha(self) -> bool:
        """Whether it keeps an alpha channel at all (one bit or more)."""
        return self.alpha != "none"

    @property
    def deep(self) -> bool:
        """Whether it keeps 16 bits per channel."""
        return self.deep_colour is not None


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat(
        "png",
        "PNG",
        (".png", ".apng"),
        encoder="png",
        deep_colour=_png_deep_colour,
        alpha="full",
        metadata=frozenset({"exif", "icc", "dpi"}),
        animation=Animated((("disposal", 0), ("blend", 0), ("loop", 1))),
    ),
    ImageFormat(
        "jpg", "JPEG", (".jpg", ".jpeg"), metadata=frozenset({"exif", "icc", "dpi"}), lossy=True, max_side=65500
    ),  # libjpeg's largest side
    ImageFormat(
        "webp",
        "WEBP",
        (".webp",),
        alpha="full",
        metadata=frozenset({"exif", "icc"}),
        lossy=True,
        max_side=16383,  # libwebp's largest side
        animation=Animated((("loop", 1),), streamed=True, lossless=_webp_lossless),
    ),
    ImageFormat(
        "tiff",
        "TIFF",
        (".tif", ".tiff"),
        deep_colour=_tiff_deep_colour,
        alpha="full",
        metadata=frozenset({"icc", "dpi"}),
    ),
    ImageFormat("bmp", "BMP", (".bmp",)),
    ImageFormat(
        "gif",
        "GIF",
        (".gif",),
        alpha="one-bit",
        max_side=65535,  # GIF stores 16-bit sizes
        photo_output=False,
        animation=Animated((("disposal", 2), ("optimize", False))),
    ),
    ImageFormat(
        "qoi",
        "QOI",
        (".qoi",),
        alpha="full",
        modes=("RGB", "RGBA"),  # 32-bit sizes in its header
        save_options=(("colorspace", "sRGB"),),
    ),
)

_BY_EXTENSION = {extension: fmt for fmt in FORMATS for extension in fmt.extensions}
_NAMES = {fmt.name: fmt for fmt in FORMATS}
IMAGE_EXTENSIONS = frozenset(_BY_EXTENSION)
"""Every extension srkit reads as an image."""
ANIMATION_EXTENSIONS = frozenset(ext for fmt in FORMATS if fmt.animation is not None for ext in fmt.extensions)
"""Extensions of files that may hold an animation."""
PHOTO_OUTPUTS = tuple(fmt.name for fmt in FORMATS if fmt.photo_output)
"""The --format names for photos, in registry order."""


def for_path(path: str | os.PathLike) -> ImageFormat | None:
    """The format a file's extension names (any case), None for an extension that is no image format."""
    return _BY_EXTENSION.get(Path(path).suffix.lower())


def named(name: str) -> ImageFormat:
    """The format with this --format name (a KeyError for a name the CLI's choices do not offer)."""
    return _NAMES[name]


def for_pillow(pillow: str | None) -> ImageFormat | None:
    """The format Pillow names `pillow` (Image.format of an opened file), None for one srkit does not register."""
    return next((fmt for fmt in FORMATS if fmt.pillow == pillow), None)


def listed(names: Iterable[str]) -> str:
    """Names as a message lists them: 'a, b or c'."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def alpha_outputs() -> str:
    """The --format names that keep alpha, as a message lists them ('png, webp, tiff or qoi')."""
    return listed(fmt.name for fmt in FORMATS if fmt.photo_output and fmt.alpha == "full")


def holding(side: int, animated: bool) -> list[str]:
    """Names of the output formats (animated ones for an animation) that can write an image `side` pixels long."""
    offered = (fmt for fmt in FORMATS if (fmt.animation is not None if animated else fmt.photo_output))
    return [fmt.name for fmt in offered if fmt.max_side is None or side <= fmt.max_side]
