"""One texture map on disk: PNG (plus `_mipN.png` levels) or DDS (its mip chain inside), and its manifest entry.

Each kind of map has a colour space and a default DDS codec (`--compression auto`): albedo is sRGB colour ->
BC7 flagged sRGB; normal -> BC5 (x and y; engines rebuild z); height, roughness and ao are one linear channel ->
BC4. A named codec applies to every map it can hold: bc1, bc3, bc7 and none hold any map (sRGB-flagged for
albedo, grey maps repeated into R, G and B), bc5 only normal maps, bc4 only one-channel maps. An albedo map
may carry alpha (a 4th channel), which bc1 cannot keep. KTX2 is not
offered: no maintained Python KTX2 writer exists on PyPI.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SrkitError
from ..synth.mipmaps import mip_chain
from .dds import CODECS, Codec, dds_bytes
from .png import write_png

FORMATS = ("png", "dds")
COMPRESSIONS = ("auto", *CODECS)


class TextureFileError(SrkitError):
    """A map the chosen format, compression or mip chain cannot store; nothing is written."""

    exit_code = 2


@dataclass(frozen=True)
class MapKind:
    """What a map holds: its colour space (sRGB colour, normal vectors, linear data) and default DDS codec."""

    name: str
    space: str
    channels: int
    codec: str


KINDS = {
    k.name: k
    for k in (
        MapKind("albedo", "srgb", 3, "bc7"),
        MapKind("normal", "normal", 3, "bc5"),
        MapKind("height", "linear", 1, "bc4"),
        MapKind("roughness", "linear", 1, "bc4"),
        MapKind("ao", "linear", 1, "bc4"),
    )
}


@dataclass(frozen=True)
class MapFormat:
    """How maps are written: png or dds, the DDS compression, and whether the mip chain goes with them."""

    format: str = "png"
    compression: str = "auto"
    mipmaps: bool = False

    def check(self) -> None:
        """Refuse an unknown format or compression, or a compression without DDS, in one line."""
        if self.format not in FORMATS:
            raise TextureFileError(
                f"--format {self.format}: choose png or dds (KTX2 is not written: no "
                "maintained Python KTX2 writer exists)"
            )
        if self.compression not in COMPRESSIONS:
            raise TextureFileError(f"--compression {self.compression}: choose one of {', '.join(COMPRESSIONS)}")
        if self.format != "dds" and self.compression != "auto":
            raise TextureFileError(f"--compression {self.compression} needs --format dds; PNG is lossless")


def codec_for(kind: MapKind, compression: str) -> Codec:
    """The DDS codec a map of `kind` gets; refuses a named codec that cannot hold it."""
    codec = CODECS[kind.codec if compression == "auto" else compression]
    if codec.channels == 2 and kind.space != "normal" or codec.channels == 1 and kind.channels != 1:
        holds = "normal maps" if codec.channels == 2 else "one-channel maps (height, roughness, ao)"
        raise TextureFileError(
            f"--compression {codec.name} holds only {holds}, not {kind.name} maps; use bc1, "
            "bc3, bc7 or none, or leave --compression out for per-map defaults"
        )
    return codec


def check_map(name: str, width: int, height: int, kind: MapKind, fmt: MapFormat, alpha: bool = False) -> None:
    """Refuse, in one line naming `name`, a map of this size (with alpha or not) that `fmt` cannot store."""
    if fmt.format == "dds":
        codec = codec_for(kind, fmt.compression)
        if alpha and codec.name == "bc1":
            raise TextureFileError(
                f"{name}: has transparent pixels, which bc1 cannot keep (1-bit alpha at best); use bc3 or bc7"
            )
        if codec.blocks and (width % 4 or height % 4):
            raise TextureFileError(
                f"{name}: {width}x{height} cannot be stored as {codec.name} (4x4 blocks: width "
                "and height must be multiples of 4); resize it or use --compression none"
            )
    if fmt.mipmaps and (width & (width - 1) or height & (height - 1)):
        raise TextureFileError(
            f"{name}: {width}x{height} has no mip chain (sides must be powers of two); resize it or leave out --mipmaps"
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _describe(path: Path, kind: MapKind, pixels: np.ndarray, levels: int, compression: str | None) -> dict:
    return dict(
        file=path.name,
        format=path.suffix[1:],
        compression=compression,
        colour_space="srgb" if kind.space == "srgb" else "linear",
        width=pixels.shape[1],
        height=pixels.shape[0],
        alpha=pixels.ndim == 3 and pixels.shape[2] == 4,
        mip_levels=levels,
        sha256=_sha256(path),
    )


def _png(pixels: np.ndarray, path: Path) -> Path:
    """Write a map as PNG from the array itself (srkit.io.png: no encoder copy of a 16384-pixel texture)."""
    with open(path, "wb") as file:
        write_png(file, pixels)
    return path


def write_map(folder: Path, stem: str, pixels: np.ndarray, kind: MapKind, fmt: MapFormat) -> dict:
    """Write (H, W), (H, W, 3) or (albedo) (H, W, 4) uint8 `pixels` as `folder/stem.png|dds`; returns its entry."""
    alpha = pixels.ndim == 3 and pixels.shape[2] == 4
    check_map(stem, pixels.shape[1], pixels.shape[0], kind, fmt, alpha)
    levels = mip_chain(pixels, kind.space) if fmt.mipmaps else [pixels]
    if fmt.format == "dds":
        codec = codec_for(kind, fmt.compression)
        path = folder / f"{stem}.dds"
        path.write_bytes(dds_bytes(levels, codec, srgb=kind.space == "srgb" and codec.dxgi_srgb is not None))
        return _describe(path, kind, pixels, len(levels), codec.name)
    entry = _describe(_png(pixels, folder / f"{stem}.png"), kind, pixels, len(levels), None)
    if fmt.mipmaps:
        entry["mipmaps"] = []
        for index, level in enumerate(levels[1:], start=1):
            path = _png(level, folder / f"{stem}_mip{index}.png")
            entry["mipmaps"].append(
                dict(file=path.name, width=level.shape[1], height=level.shape[0], sha256=_sha256(path))
            )
    return entry
