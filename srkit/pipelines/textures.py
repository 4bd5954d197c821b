"""Write a texture pack: generated textures (or a user's images, `convert`) as PNG or DDS maps, manifest, preview.

A pack holds, per texture, its maps (albedo alone; with normal maps; or the PBR set: albedo, normal, height,
roughness, ao; srkit/synth/maps.py says how each is derived), each written by srkit/io/texture_files.py as PNG
or DDS with an optional mip chain; `manifest.json` lists every map with its format, colour space, size, mip levels
and checksum; `preview.png` shows each texture tiled 2x2 beside its lit material on a sphere.
Everything is written into a temporary folder beside the pack and renamed into place (or zipped into a
temporary file and renamed) only when complete, so an error or Ctrl-C leaves nothing under the pack's name.
An existing non-empty pack is refused unless `overwrite`; it is then replaced only once the new one is done.
Texture i uses seed `seed + i`, so any texture can be made again alone with its seed from the manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .. import __version__
from ..defaults import DEFAULT_MAX_PIXELS, MAX_SEED
from ..errors import SrkitError
from ..io.atomic import atomic_path, discard, partial_path, publish
from ..io.formats import IMAGE_EXTENSIONS
from ..io.images import codes_8bit, open_image, read_picture
from ..io.paths import special_file_reason
from ..io.sheets import material_sheet
from ..io.texture_files import KINDS, MapFormat, check_map, write_map
from ..synth.maps import PBR_MAPS, pbr_maps
from ..synth.measures import seam_score
from ..synth.shading import render_sphere
from ..texture_generator import TextureGenerator

PREVIEW_CELL = 256  # pixels per cell in preview.png (a texture tiled 2x2, resized; its lit sphere)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
MAP_SUFFIXES = {f"_{name}": name for name in KINDS if name != "albedo"}  # how `convert` tells a map's kind
EXISTS_HINT = "pass --overwrite to replace it, or choose another -o"


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
    format: str = "png"
    compression: str = "auto"
    pbr: bool = False

    @property
    def map_format(self) -> MapFormat:
        """How each map is written (format, compression, mip chain)."""
        return MapFormat(self.format, self.compression, self.mipmaps)

    def outputs(self, kind: str) -> tuple[str, ...]:
        """The maps written for an input of `kind`: the PBR set, albedo + normal, or the input alone."""
        if kind != "albedo":
            return (kind,)
        return PBR_MAPS if self.pbr else ("albedo", "normal") if self.normal_maps else ("albedo",)

    def check_seeds(self) -> None:
        """Refuse a seed range (texture i uses seed + i) that leaves the seeds every generator accepts."""
        if not 0 <= self.seed <= self.seed + self.count - 1 <= MAX_SEED:
            raise PackError(
                f"--seed {self.seed} with -n {self.count}: texture i uses seed + i, which must stay "
                f"between 0 and {MAX_SEED}; choose a smaller --seed"
            )

    def check(self, name: str, width: int, height: int, kind: str = "albedo") -> None:
        """Refuse, in one line naming `name`, options that cannot write a width x height input of `kind`."""
        self.map_format.check()
        for output in self.outputs(kind):
            check_map(name, width, height, KINDS[output], self.map_format)


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
            raise PackError(f"{target} exists and is not empty; {EXISTS_HINT}")
    if target.exists() and (target.is_dir() == options.zip):
        kind = "folder" if target.is_dir() else "file"
        raise PackError(f"{target} is a {kind}; choose another -o")
    if not target.parent.is_dir():
        raise PackError(f"{target.parent}: no such folder; create it first or choose another -o")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise PackError(f"{target.parent}: not writable; choose another -o")
    return target


def _write_material(
    folder: Path, stem: str, pixels: np.ndarray, kind: str, options: PackOptions
) -> tuple[dict, np.ndarray | None]:
    """Write one input's maps into `folder`; returns their manifest entries and the lit render (albedo only)."""
    if kind != "albedo":
        return {kind: write_map(folder, stem, pixels, KINDS[kind], options.map_format)}, None
    maps = pbr_maps(pixels)
    entries = {
        name: write_map(
            folder, stem if name == "albedo" else f"{stem}_{name}", maps[name], KINDS[name], options.map_format
        )
        for name in options.outputs(kind)
    }
    return entries, render_sphere(maps, PREVIEW_CELL)


def _finish(folder: Path, target: Path, options: PackOptions) -> None:
    """Move the complete pack into place: zip it beside the target, or rename the folder. Without --overwrite it
    never replaces a pack (another run's included: io.atomic), only an empty folder given as -o."""
    if options.zip:
        with atomic_path(target, options.overwrite, EXISTS_HINT) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(folder.iterdir()):  # fixed dates: the same pack gives the same archive bytes
                    info = zipfile.ZipInfo(f"{target.stem}/{path.name}", date_time=ZIP_DATE)
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        return
    if options.overwrite and target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(folder, target)
        shutil.rmtree(old)
        return
    if target.is_dir():
        with contextlib.suppress(OSError):
            target.rmdir()  # the empty folder -o named; one that another run filled meanwhile stays
    publish(folder, target, hint=EXISTS_HINT)


def _build(
    target: Path, options: PackOptions, inputs: Iterable[tuple[str, str, np.ndarray, dict]], manifest: dict
) -> None:
    """Write each (stem, kind, pixels, manifest fields) input's maps, the manifest and preview; move to `target`."""
    try:
        # named like the pack's partial (a dead run's is swept away); with --zip, named apart from the zip's own
        folder = partial_path(target.with_suffix("") if options.zip else target)
        discard(folder)  # this host and process name it: only a dead run with the same process id left it
        folder.mkdir()
    except OSError as error:
        raise PackError(f"{target.parent}: cannot write here ({error.strerror or error}); choose another -o") from None
    try:
        entries, textures, renders = [], [], []
        for stem, kind, pixels, fields in inputs:
            maps, render = _write_material(folder, stem, pixels, kind, options)
            entries.append(dict(fields, maps=maps))
            textures.append(pixels[..., :3] if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2))
            renders.append(render)
        Image.fromarray(material_sheet(textures, renders, PREVIEW_CELL)).save(folder / "preview.png", format="PNG")
        manifest = dict(manifest, srkit=__version__, format=options.format, preview="preview.png", textures=entries)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _finish(folder, target, options)
    except OSError as error:
        raise PackError(f"{target}: cannot write the pack ({error.strerror or error})") from None
    finally:
        discard(folder)


def _report(target: Path, count: int, what: str, start: float) -> PackSummary:
    summary = PackSummary(target, count, time.perf_counter() - start)
    print(f"srkit: wrote {count} {what} to {target} in {summary.seconds:.1f} s", file=sys.stderr)
    return summary


def write_pack(generator: TextureGenerator, output: str | os.PathLike, options: PackOptions) -> PackSummary:
    """Generate options.count textures with `generator` and write them as a pack at `output`."""
    start = time.perf_counter()
    if options.count < 1:
        raise PackError(f"-n {options.count}: a pack holds at least one texture")
    options.check_seeds()
    generator.check_size(options.size)
    options.check(f"--size {options.size}", options.size, options.size)
    target = pack_target(output, options)
    period = generator.seam_period(options.size)

    def generated() -> Iterator[tuple[str, str, np.ndarray, dict]]:
        for index in tqdm(range(options.count), unit="texture", dynamic_ncols=True, disable=None):
            seed = options.seed + index
            texture = generator.generate(options.size, seed)
            fields = dict(
                seed=seed,
                size=options.size,
                **generator.source,
                **generator.texture_fields(seed),
                seam_score=round(seam_score(texture, period), 4),
            )
            yield f"{generator.name}-{seed}", "albedo", texture, fields

    _build(
        target,
        options,
        generated(),
        dict(size=options.size, count=options.count, source=generator.source, seam_period=period),
    )
    return _report(target, options.count, f"textures of {options.size}x{options.size}", start)


def map_kind(path: Path, kind: str = "auto") -> str:
    """The kind of map an input holds: `kind`, or from its name (`_normal`, `_height`, ... ; else albedo)."""
    if kind != "auto":
        return kind
    return next((name for suffix, name in MAP_SUFFIXES.items() if path.stem.lower().endswith(suffix)), "albedo")


def _input_files(inputs: list[str]) -> list[Path]:
    """Image files named, and those directly inside folders named, in a stable order."""
    files = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        elif reason := special_file_reason(path):  # never opened: a FIFO would block, /dev/zero never ends
            raise PackError(f"{path}: {reason}")
        elif path.is_file():
            files.append(path)
        else:
            raise PackError(f"{path}: no such file or folder")
    if not files:
        raise PackError(f"{', '.join(inputs)}: no images to convert ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _image_size(path: Path, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image's header, before any decoding (a decompression bomb is refused here)."""
    with open_image(path, max_pixels) as image:
        return image.size


def _pixels_for(path: Path, kind: str, max_pixels: int) -> np.ndarray:
    """The image as uint8 a map of `kind` holds: RGB (RGBA for albedo with transparency), or one channel."""
    pixels = read_picture(path, max_pixels).pixels
    if pixels.dtype == np.uint16:
        pixels = codes_8bit(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        if (pixels[..., 3] == 255).all():
            pixels = pixels[..., :3]
        elif kind != "albedo":
            raise PackError(f"{path}: a {kind} map with transparent pixels; only albedo maps keep alpha")
    if KINDS[kind].channels == 1:
        return pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))
    return pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)


def convert_images(
    inputs: list[str],
    output: str | os.PathLike,
    options: PackOptions,
    kind: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> PackSummary:
    """Write existing images (a user's textures, SR outputs) as a pack at `output`, with the same map rules;
    images over `max_pixels` are refused from their header (the decompression-bomb guard `upscale` uses)."""
    start = time.perf_counter()
    options.map_format.check()
    files = _input_files(inputs)
    plan, names = [], {}
    for path in files:
        path_kind = map_kind(path, kind)
        options.check(str(path), *_image_size(path, max_pixels), path_kind)
        for name in options.outputs(path_kind):
            stem = path.stem if name == path_kind else f"{path.stem}_{name}"
            if stem in names:
                raise PackError(f"{path} and {names[stem]} would both write {stem}; rename one")
            names[stem] = path
        plan.append((path, path_kind))
    target = pack_target(output, options)
    inside = next((path for path in files if target.resolve() in path.resolve().parents), None)
    if inside is not None:
        raise PackError(f"{target} holds the input {inside}, which the pack would replace; choose another -o")

    def converted() -> Iterator[tuple[str, str, np.ndarray, dict]]:
        for path, path_kind in tqdm(plan, unit="image", dynamic_ncols=True, disable=None):
            pixels = _pixels_for(path, path_kind, max_pixels)
            if pixels.ndim == 3 and pixels.shape[2] == 4:
                check_map(str(path), pixels.shape[1], pixels.shape[0], KINDS[path_kind], options.map_format, True)
            fields = dict(source=path.name, kind=path_kind, width=pixels.shape[1], height=pixels.shape[0])
            if path_kind == "albedo" and min(pixels.shape[:2]) >= 2:
                fields["seam_score"] = round(seam_score(pixels), 4)
            yield path.stem, path_kind, pixels, fields

    _build(target, options, converted(), dict(count=len(plan)))
    return _report(target, len(plan), "images", start)
