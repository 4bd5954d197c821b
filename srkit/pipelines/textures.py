"""Write a texture pack: N seamless PNG textures, manifest.json, preview.png, optional normal maps, mipmaps, zip.

Everything is written into a temporary folder beside the pack and renamed into place (or zipped into a
temporary file and renamed) only when complete, so an error or Ctrl-C leaves nothing under the pack's name.
An existing non-empty pack is refused unless `overwrite`; it is then replaced only once the new one is done.
Texture i uses seed `seed + i`, so any texture can be made again alone with its seed from the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .. import __version__
from ..errors import SrkitError
from ..io.atomic import atomic_path
from ..io.sheets import contact_sheet
from ..synth.measures import seam_score
from ..texture_generator import TextureGenerator

PREVIEW_CELL = 256  # pixels per texture in preview.png (the texture tiled 2x2, resized)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
NORMAL_STRENGTH = 4.0  # height (luminance 0..1) difference per pixel that tilts a normal by 76 degrees


class PackError(SrkitError):
    """The pack cannot be written where asked; nothing is written."""

    exit_code = 2


@dataclass
class PackOptions:
    """What goes into a pack."""

    count: int = 8
    size: int = 512
    seed: int = 0
    normal_maps: bool = False
    mipmaps: bool = False
    zip: bool = False
    overwrite: bool = False


@dataclass
class PackSummary:
    """Where the pack went, how many textures, and how long it took."""

    path: Path
    count: int
    seconds: float


def pack_target(output: str | os.PathLike, options: PackOptions) -> Path:
    """The path the pack will have (PACK, or PACK.zip with --zip), checked before any work."""
    target = Path(output)
    if options.zip and target.suffix.lower() != ".zip":
        target = target.with_name(target.name + ".zip")
    if target.exists() and not options.overwrite:
        if options.zip or target.is_file() or any(target.iterdir()):
            raise PackError(f"{target} exists and is not empty; pass --overwrite to replace it, or choose another -o")
    if target.exists() and (target.is_dir() == options.zip):
        kind = "folder" if target.is_dir() else "file"
        raise PackError(f"{target} is a {kind}; choose another -o")
    if not target.parent.is_dir():
        raise PackError(f"{target.parent}: no such folder; create it first or choose another -o")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise PackError(f"{target.parent}: not writable; choose another -o")
    return target


def normal_map(texture: np.ndarray, strength: float = NORMAL_STRENGTH) -> np.ndarray:
    """Tangent-space normal map (OpenGL: green up) of a texture's luminance as height; gradients wrap around."""
    height = texture.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722]) / 255.0
    dx = (np.roll(height, -1, axis=1) - np.roll(height, 1, axis=1)) / 2.0
    dy = (np.roll(height, -1, axis=0) - np.roll(height, 1, axis=0)) / 2.0  # rows go down, the green axis up
    normal = np.stack([-strength * dx, strength * dy, np.ones_like(height)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    return np.floor((normal * 0.5 + 0.5) * 255.0 + 0.5).astype(np.uint8)


def mipmap_chain(texture: np.ndarray) -> list[np.ndarray]:
    """Levels 1.. of a power-of-two texture down to 1x1, each the 2x2 box average of the level above."""
    levels, current = [], texture.astype(np.float64)
    while current.shape[0] > 1:
        h, w = current.shape[:2]
        current = current.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
        levels.append(np.floor(current + 0.5).astype(np.uint8))
    return levels


def _write_png(pixels: np.ndarray, path: Path) -> dict:
    """Write an RGB PNG; returns its manifest entry (file name and checksum)."""
    Image.fromarray(pixels).save(path, format="PNG")
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _write_texture(folder: Path, stem: str, texture: np.ndarray, options: PackOptions, seam_period: int) -> dict:
    """The texture and its extras in `folder`; returns its manifest entry."""
    entry = _write_png(texture, folder / f"{stem}.png")
    entry["seam_score"] = round(seam_score(texture, seam_period), 4)
    if options.normal_maps:
        entry["normal_map"] = _write_png(normal_map(texture), folder / f"{stem}_normal.png")
    if options.mipmaps:
        entry["mipmaps"] = [dict(_write_png(level, folder / f"{stem}_mip{index}.png"), size=level.shape[0])
                            for index, level in enumerate(mipmap_chain(texture), start=1)]
    return entry


def _finish(folder: Path, target: Path, options: PackOptions) -> None:
    """Move the complete pack into place: zip it beside the target, or rename the folder (replacing an old one)."""
    if options.zip:
        with atomic_path(target) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(folder.iterdir()):  # fixed dates: the same pack gives the same archive bytes
                    info = zipfile.ZipInfo(f"{target.stem}/{path.name}", date_time=ZIP_DATE)
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        return
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(folder, target)
        shutil.rmtree(old)
    else:
        os.replace(folder, target)


def write_pack(generator: TextureGenerator, output: str | os.PathLike, options: PackOptions) -> PackSummary:
    """Generate options.count textures with `generator` and write them as a pack at `output`."""
    start = time.perf_counter()
    if options.count < 1:
        raise PackError(f"-n {options.count}: a pack holds at least one texture")
    generator.check_size(options.size)
    target = pack_target(output, options)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as error:
        raise PackError(f"{target.parent}: cannot write here ({error.strerror or error}); choose another -o") from None
    try:
        textures, entries, period = [], [], generator.seam_period(options.size)
        for index in tqdm(range(options.count), unit="texture", dynamic_ncols=True, disable=None):
            seed = options.seed + index
            texture = generator.generate(options.size, seed)
            entry = _write_texture(folder, f"{generator.name}-{seed}", texture, options, period)
            entries.append(dict(entry, seed=seed, size=options.size, **generator.source))
            textures.append(texture)
        Image.fromarray(contact_sheet(textures, PREVIEW_CELL)).save(folder / "preview.png", format="PNG")
        manifest = dict(srkit=__version__, size=options.size, count=options.count, preview="preview.png",
                        source=generator.source, seam_period=period, textures=entries)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _finish(folder, target, options)
    except OSError as error:
        raise PackError(f"{target}: cannot write the pack ({error.strerror or error})") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = PackSummary(target, options.count, time.perf_counter() - start)
    print(f"srkit: wrote {summary.count} textures of {options.size}x{options.size} to {target} "
          f"in {summary.seconds:.1f} s", file=sys.stderr)
    return summary
