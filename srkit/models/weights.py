"""Reading and writing weights: restricted .pth/.pt unpickling, checkpoint unwrapping, srkit's safetensors.

This is the only module that opens weight files. `.pth` files are read with torch.load(weights_only=True),
so a checkpoint that needs code to unpickle is refused rather than executed.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from ..errors import ModelFormatError
from ..io.atomic import EXISTS_HINT, write_bytes

# Wrappers that training frameworks put around the state dict, most preferred first (EMA weights win).
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net_g")
METADATA_KEY = "srkit"
MAX_SCALE = 16  # no network srkit loads enlarges more (rrdb: 8); a larger scale in metadata is damage
METADATA_FIELDS = {
    "arch": ("a string", lambda value: isinstance(value, str)),
    "act": ("a string", lambda value: isinstance(value, str)),
    "scale": (
        f"an integer from 1 to {MAX_SCALE}",
        lambda value: isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SCALE,
    ),
    "output_resize": (
        "a number above 0 and at most 1",  # NaN and infinities fail the comparison
        lambda value: isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1,
    ),
}
"""Metadata fields that loading reads: (what they must be, the test). Others are provenance, shown as they are."""
REIMPORT = "; re-import the original weights with `srkit models import`"


def canonical_state_dict(checkpoint: object, source: str) -> dict[str, torch.Tensor]:
    """Unwrap params_ema / params / state_dict, strip DataParallel's 'module.' prefix, check every key and value."""
    seen: set[int] = set()
    while isinstance(checkpoint, dict):
        if id(checkpoint) in seen:  # a wrapper that holds itself would be unwrapped forever
            raise ModelFormatError(
                f"{source}: its wrappers ({', '.join(WRAPPER_KEYS)}) contain themselves, so no "
                "state dict is inside; re-save the model's state_dict()"
            )
        seen.add(id(checkpoint))
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if wrapper is None:
            break
        checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise ModelFormatError(
            f"{source}: no state dict found (expected a dict of tensors, optionally under {', '.join(WRAPPER_KEYS)})"
        )
    for key in checkpoint:
        if not isinstance(key, str):
            raise ModelFormatError(
                f"{source}: its state dict has the key {key!r} (a {type(key).__name__}), where "
                "parameter names are strings; re-save the model's state_dict()"
            )
    return checked_state_dict({key.removeprefix("module."): value for key, value in checkpoint.items()}, source)


def checked_state_dict(state: Mapping[str, object], source: str) -> dict[str, torch.Tensor]:
    """Every entry as a dense, finite float32 tensor with no empty dimension, else one line naming the entry.

    Checked before any network is built: an empty dimension is a layer without channels (sizes read from it would
    divide by zero), and NaN or infinite weights would turn every output black without another error."""
    return {key: _checked_tensor(key, value, source) for key, value in state.items()}


def _checked_tensor(key: str, value: object, source: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ModelFormatError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor")
    kind = (
        "sparse"
        if value.layout != torch.strided
        else "quantized"
        if value.is_quantized
        else "complex"
        if value.is_complex()
        else None
    )
    if kind:
        raise ModelFormatError(
            f"{source}: entry {key!r} is a {kind} tensor; srkit reads dense real weights "
            "(re-save the state dict with dense float tensors)"
        )
    if 0 in value.shape:
        raise ModelFormatError(
            f"{source}: entry {key!r} has shape {tuple(value.shape)}, a layer without channels; the file is damaged"
        )
    tensor = value.detach().float().contiguous()
    bad = tensor.numel() - int(torch.isfinite(tensor).sum())
    if bad:
        raise ModelFormatError(
            f"{source}: entry {key!r} holds {bad} NaN or infinite weights (damaged file or "
            "diverged training); use an earlier checkpoint"
        )
    return tensor


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_pth(path: Path) -> dict[str, torch.Tensor]:
    """State dict of a PyTorch checkpoint, loaded with weights_only=True (no arbitrary code)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():  # torch names the blocked class it would have had to import
            raise ModelFormatError(
                f"{path}: refused, the checkpoint holds objects that need code to unpickle; "
                "srkit only loads plain tensors (re-save it as a state dict)"
            ) from None
        raise ModelFormatError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from None
    except Exception as error:  # a damaged pickle or zip fails anywhere in torch.load (struct.error, KeyError, ...)
        raise ModelFormatError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from None
    return canonical_state_dict(checkpoint, str(path))


def _open_safetensors(path: Path, tensors: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors (none unless `tensors`) and srkit metadata of a .safetensors file."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()} if tensors else {}
    except Exception as error:  # safetensors raises its own error types for damaged headers
        raise ModelFormatError(f"{path}: not a readable safetensors file ({_first_line(error)})") from None
    return state, parse_metadata(metadata.get(METADATA_KEY, "{}"), str(path))


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict and srkit metadata (arch, scale, hyper-parameters, provenance) of a .safetensors file."""
    state, metadata = _open_safetensors(path, tensors=True)
    return canonical_state_dict(state, str(path)), metadata


def read_metadata(path: str | os.PathLike) -> dict:
    """The srkit metadata of a weights file from its header alone, without reading its tensors ({} for .pth,
    which carries none): a generator's material names and training data, asked for after it is loaded."""
    path = Path(path)
    return _open_safetensors(path, tensors=False)[1] if path.suffix.lower() == ".safetensors" else {}


def parse_metadata(text: str, source: str) -> dict:
    """srkit's metadata JSON as a dict, the fields loading reads (METADATA_FIELDS) checked for type and range."""
    try:
        metadata = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ModelFormatError(f"{source}: its srkit metadata is not valid JSON{REIMPORT}") from None
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{source}: its srkit metadata is {_shown(metadata)}, not a JSON object{REIMPORT}")
    for field, (wanted, fits) in METADATA_FIELDS.items():
        if field in metadata and not fits(metadata[field]):
            raise ModelFormatError(
                f"{source}: its srkit metadata has {field} {_shown(metadata[field])}, not {wanted}{REIMPORT}"
            )
    return metadata


def _shown(value: object) -> str:
    """`value` as JSON, cut to 40 characters (the error stays one short line)."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict and metadata (empty for .pth) of a weights file, chosen by its extension."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors(path)
    if suffix in (".pth", ".pt", ".ckpt"):
        return read_pth(path), {}
    raise ModelFormatError(
        f"{path}: unknown weights format {suffix!r} (use .safetensors, .pth or .pt; "
        "ncnn .param/.bin pairs go through `srkit models import`)"
    )


def write_safetensors(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    metadata: dict,
    overwrite: bool = False,
    hint: str = EXISTS_HINT,
) -> Path:
    """Write weights and srkit metadata through io.atomic: a partial file beside the target, published only when
    complete (an existing file replaced only with `overwrite`; disk full or a read-only folder is one line)."""
    tensors = {key: value.detach().contiguous().cpu() for key, value in state_dict.items()}
    data = safetensors_bytes(tensors, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return write_bytes(path, data, overwrite, hint)
