"""Still images in and out: pixels as numpy arrays plus the metadata that must survive upscaling.

What each format holds and who reads and writes it is its entry in io.formats. Pillow decodes everything except
16-bit colour (48/64-bit PNG and TIFF), which Pillow would truncate to 8 bits: those are read by OpenCV. PNG is
written by srkit's strip encoder (io.png) straight from the array, so an output image costs its own bytes and no
encoder copy; other formats are encoded by Pillow (16-bit colour TIFF by OpenCV). EXIF orientation is applied
on read and the tag reset to 1 in the EXIF written back, whose image-size tags are set to the output's size; the
ICC profile is carried wherever the output format can store it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import SrkitError
from .atomic import atomic_path
from .formats import IMAGE_EXTENSIONS, ImageFormat, alpha_outputs, for_path, for_pillow
from .png import write_png

EXIF_ORIENTATION = 0x0112
EXIF_IFD = 0x8769
EXIF_SIZE_TAGS = ((None, 0x0100, 0x0101), (EXIF_IFD, 0xA002, 0xA003))
"""(IFD, width tag, height tag): IFD0's ImageWidth / ImageLength, the Exif IFD's PixelXDimension / PixelYDimension."""
GRAY_ALPHA_MODES = {"LA", "PA", "LA;16"}  # source modes read as RGBA and written back as gray+alpha
LUMA_WEIGHTS = (19595, 38470, 7471)  # ITU-R 601-2 luma in 16-bit fixed point, as Pillow converts RGB to L


READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError)
"""What Pillow raises for a file it cannot read: corrupt, truncated, unsupported."""


class ImageReadError(SrkitError):
    """An input image that cannot be decoded (corrupt, truncated, unsupported or too large)."""


class ImageWriteError(SrkitError):
    """An output image that cannot be written (unwritable directory, encoder refusal)."""


@dataclass
class Picture:
    """Decoded pixels (HxW, HxWx3 RGB or HxWx4 RGBA; uint8 or uint16), orientation applied, and metadata."""

    pixels: np.ndarray
    format: str
    mode: str
    """Pillow mode of the source ('L', 'LA', 'RGB', 'RGBA', 'P', 'I;16', ...; 'RGB;16' for 16-bit colour, 'LA;16'
    for 16-bit gray+alpha, which is read as RGBA with the gray repeated)."""
    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None

    @property
    def has_alpha(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] == 4

    @property
    def gray_alpha(self) -> bool:
        """Whether the source is gray+alpha (read as RGBA), so an RGBA output goes back to gray+alpha."""
        return self.mode in GRAY_ALPHA_MODES


def _deep_colour_mode(image: Image.Image, path: Path) -> str | None:
    """The source mode ('RGB;16', 'LA;16') of 16-bit-per-channel colour, which Pillow would silently reduce to
    8 bits; None for anything Pillow decodes as it is."""
    fmt = for_pillow(image.format)
    return fmt.deep_colour(image, path) if fmt is not None and fmt.deep_colour is not None else None


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an array, as ImageOps.exif_transpose does to an image."""
    steps = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(steps[orientation](pixels)) if orientation in steps else pixels


def _read_deep_colour(path: Path) -> np.ndarray:
    data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3:
        raise ImageReadError(f"{path}: cannot decode 16-bit colour image")
    return cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _pixels_of(image: Image.Image) -> np.ndarray:
    """Pixels of a Pillow image as an array srkit can upscale (1, 3 or 4 channels)."""
    mode = image.mode
    if mode in ("L", "RGB", "RGBA", "I;16"):
        return np.asarray(image)
    if mode == "P":
        return np.asarray(image.convert("RGBA" if "transparency" in image.info else "RGB"))
    if mode in ("LA", "PA") or "A" in image.getbands():
        return np.asarray(image.convert("RGBA"))
    if mode == "1":
        return np.asarray(image.convert("L"))
    if mode in ("I", "I;16B", "I;16L", "I;16N"):
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    return np.asarray(image.convert("RGB"))  # CMYK, YCbCr, HSV, F, ...


def check_pixel_limit(path: Path, image: Image.Image, max_pixels: int) -> None:
    """Refuse an image over srkit's decompression-bomb limit before its pixels are decoded."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageReadError(
            f"{path}: {width}x{height} is over the decompression-bomb limit of "
            f"{max_pixels} pixels (raise it with --max-pixels if the file is trusted)"
        )


_limit_lock = threading.Lock()
_readers = 0  # open_image calls under way; Pillow's own limit is lifted while there are any
_pillow_limit: int | None = None


@contextlib.contextmanager
def _pillow_limit_lifted() -> Iterator[None]:
    """Lift Pillow's global decompression-bomb limit (srkit applies its own, configurable one) while any srkit
    reader runs, on any thread, and put it back after the last."""
    global _readers, _pillow_limit
    with _limit_lock:
        if _readers == 0:
            _pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        _readers += 1
    try:
        yield
    finally:
        with _limit_lock:
            _readers -= 1
            if _readers == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_limit


@contextlib.contextmanager
def open_image(
    path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, what: str = "image"
) -> Iterator[Image.Image]:
    """Pillow's image of `path` behind srkit's one pixel-limit guard (checked on the header, before any pixels
    are decoded); everything that goes wrong while it is open and read is an ImageReadError naming the file.

    Every srkit reader opens images through here, so a decompression bomb is refused the same way everywhere."""
    path = Path(path)
    with _pillow_limit_lifted():
        try:
            with Image.open(path) as image:
                check_pixel_limit(path, image, max_pixels)
                yield image
        except READ_ERRORS as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ImageReadError(f"{path}: cannot read {what} ({reason})") from None


def read_picture(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an image fully (truncation shows here), apply its EXIF orientation, keep its metadata."""
    path = Path(path)
    with open_image(path, max_pixels) as image:
        exif = image.getexif()
        orientation = int(exif.get(EXIF_ORIENTATION, 1))
        icc, dpi = image.info.get("icc_profile"), image.info.get("dpi")
        deep_mode = _deep_colour_mode(image, path)  # 16-bit gray+alpha PNG too: Pillow opens it as 8-bit RGBA
        if deep_mode is not None:
            pixels, mode = _orient(_read_deep_colour(path), orientation), deep_mode
        else:
            image.load()
            mode = image.mode
            pixels = _pixels_of(ImageOps.exif_transpose(image))
        fmt = image.format or ""  # always set for an opened file
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1
    return Picture(pixels, fmt, mode, exif.tobytes() if len(exif) else None, icc, dpi)


def output_format(path: Path) -> ImageFormat:
    """The format an output path's extension names."""
    fmt = for_path(path)
    if fmt is None:
        raise ImageWriteError(f"{path}: unknown image extension; use one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return fmt


def codes_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint16 codes as the nearest uint8 codes (round(p / 257); no ties occur), with 16-bit temporaries only."""
    quotient, remainder = np.divmod(pixels, np.uint16(257))
    quotient += remainder >= 129
    return quotient.astype(np.uint8)


def _to_pil(pixels: np.ndarray, source: Picture, fmt: ImageFormat) -> Image.Image:
    """The Pillow image `fmt`'s writer gets: 16-bit gray where it is deep, else 8 bits; gray+alpha for LA
    sources; converted to RGB(A) where the writer takes only some modes."""
    if pixels.dtype == np.uint16:
        if pixels.ndim == 2 and fmt.deep:
            return Image.fromarray(pixels)
        pixels = codes_8bit(pixels)
    if source.gray_alpha and pixels.ndim == 3 and pixels.shape[2] == 4:
        image = Image.fromarray(_gray_alpha(pixels), "LA")
    else:
        image = Image.fromarray(pixels)
    if fmt.modes is not None and image.mode not in fmt.modes:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return image


def exif_sized(exif: bytes | None, width: int, height: int) -> bytes | None:
    """`exif` with the image-size tags it holds (EXIF_SIZE_TAGS) saying width x height, the pixels written with
    it; EXIF without them comes back as it is."""
    if not exif:
        return exif
    tags = Image.Exif()
    tags.load(exif)
    changed = False
    for ifd, width_tag, height_tag in EXIF_SIZE_TAGS:
        place = tags if ifd is None else tags.get_ifd(ifd)
        for tag, value in ((width_tag, width), (height_tag, height)):
            if tag in place and place[tag] != value:
                place[tag] = value
                changed = True
    return tags.tobytes() if changed else exif


def write_picture(
    pixels: np.ndarray, path: str | os.PathLike, source: Picture, quality: int = 95, overwrite: bool = False
) -> None:
    """Encode upscaled pixels to `path` atomically (an existing file only with `overwrite`: io.atomic), carrying
    the source's EXIF, ICC profile and DPI.

    PNG is encoded from the array in strips (8 or 16 bits, gray, gray+alpha for LA sources, RGB, RGBA); 16-bit
    colour TIFF is written by OpenCV; other formats get 8-bit pixels, and formats without alpha are refused
    for RGBA (the caller picks PNG instead).
    """
    path = Path(path)
    fmt = output_format(path)
    exif = exif_sized(source.exif, pixels.shape[1], pixels.shape[0])
    if pixels.ndim == 3 and pixels.shape[2] == 4 and not fmt.stores_alpha:
        raise ImageWriteError(f"{path}: {fmt.pillow} cannot store the alpha channel; choose {alpha_outputs()}")
    try:
        with atomic_path(path, overwrite) as tmp:
            if fmt.encoder == "png":
                _write_png(pixels, tmp, source, exif)
                return
            if pixels.dtype == np.uint16 and pixels.ndim == 3 and fmt.deep:
                code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
                ok, encoded = cv2.imencode(path.suffix.lower(), cv2.cvtColor(pixels, code))
                if not ok:
                    raise ImageWriteError(f"{path}: OpenCV could not encode the 16-bit image")
                tmp.write_bytes(encoded.tobytes())
                return
            options: dict = dict(fmt.save_options)
            if fmt.lossy:
                options["quality"] = quality
            if exif and "exif" in fmt.metadata:
                options["exif"] = exif
            if source.icc_profile and "icc" in fmt.metadata:
                options["icc_profile"] = source.icc_profile
            if source.dpi and "dpi" in fmt.metadata:
                options["dpi"] = source.dpi
            _to_pil(pixels, source, fmt).save(tmp, format=fmt.pillow, **options)
    except OSError as error:
        raise ImageWriteError(f"{path}: cannot write image ({error.strerror or error})") from None


def _gray_alpha(rgba: np.ndarray) -> np.ndarray:
    """A strip of uint8 or uint16 RGBA rows as gray+alpha of the same depth: gray is Pillow's luma of RGB
    (LUMA_WEIGHTS, rounded; for 8 bits exactly Pillow's RGBA -> LA), alpha is kept."""
    luma = np.zeros(rgba.shape[:-1], np.uint64)
    for channel, weight in enumerate(LUMA_WEIGHTS):
        luma += rgba[..., channel].astype(np.uint64) * weight
    gray = ((luma + 0x8000) >> 16).astype(rgba.dtype)
    return np.stack([gray, rgba[..., 3]], axis=2)


def _write_png(pixels: np.ndarray, tmp: Path, source: Picture, exif: bytes | None) -> None:
    """Write a PNG from the array itself with the source's metadata (`exif`: its EXIF for these pixels); an LA
    source's RGBA goes back to LA.

    16-bit colour is encoded as OpenCV's encoder that wrote it before did (every row Sub-filtered, zlib level 1
    with run-length matches only): the 8-bit settings take 2-3x its time there for 1 % less size (NOTES, issue 14)."""
    to_gray_alpha = source.gray_alpha and pixels.ndim == 3 and pixels.shape[2] == 4
    deep_colour = pixels.dtype == np.uint16 and pixels.ndim == 3
    settings: dict[str, Any] = dict(compress_level=1, strategy=zlib.Z_RLE, sub_only=True) if deep_colour else {}
    with open(tmp, "wb") as file:
        write_png(
            file,
            pixels,
            channels_of=_gray_alpha if to_gray_alpha else None,
            icc_profile=source.icc_profile,
            exif=exif,
            dpi=source.dpi,
            **settings,
        )
