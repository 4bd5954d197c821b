"""Reading and writing weights: restricted .pth/.pt unpickling, checkpoint unwrapping, srkit's safetensors.

This is the only module that opens weight files. `.pth` files are read with torch.load(weights_only=True),
so a checkpoint that needs code to unpickle is refused rather than executed.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from ..errors import ModelFormatError
from ..io.atomic import EXISTS_HINT, write_bytes

# Wrappers that training frameworks put around the state dict, most preferred first (EMA weights win).
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net_g")
METADATA_KEY = "srkit"


def canonical_state_dict(checkpoint: object, source: str) -> dict[str, torch.Tensor]:
    """Unwrap params_ema / params / state_dict, strip DataParallel's 'module.' prefix, check every value."""
    while isinstance(checkpoint, dict):
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if wrapper is None:
            break
        checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise ModelFormatError(f"{source}: no state dict found (expected a dict of tensors, "
                               f"optionally under {', '.join(WRAPPER_KEYS)})")
    state = {}
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise ModelFormatError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key.removeprefix("module.")] = value.detach().float().contiguous()
    return state


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_pth(path: Path) -> dict[str, torch.Tensor]:
    """State dict of a PyTorch checkpoint, loaded with weights_only=True (no arbitrary code)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():  # torch names the blocked class it would have had to import
            raise ModelFormatError(f"{path}: refused, the checkpoint holds objects that need code to unpickle; "
                                   "srkit only loads plain tensors (re-save it as a state dict)") from None
        raise ModelFormatError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelFormatError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from None
    return canonical_state_dict(checkpoint, str(path))


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict and srkit metadata (arch, scale, hyper-parameters, provenance) of a .safetensors file."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key).float() for key in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for damaged headers
        raise ModelFormatError(f"{path}: not a readable safetensors file ({_first_line(error)})") from None
    try:
        info = json.loads(metadata.get(METADATA_KEY, "{}"))
    except json.JSONDecodeError:
        raise ModelFormatError(f"{path}: its srkit metadata is not valid JSON") from None
    return canonical_state_dict(state, str(path)), info


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
    raise ModelFormatError(f"{path}: unknown weights format {suffix!r} (use .safetensors, .pth or .pt; "
                           "ncnn .param/.bin pairs go through `srkit models import`)")


def write_safetensors(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], metadata: dict,
                      overwrite: bool = False, hint: str = EXISTS_HINT) -> Path:
    """Write weights and srkit metadata through io.atomic: a partial file beside the target, published only when
    complete (an existing file replaced only with `overwrite`; disk full or a read-only folder is one line)."""
    tensors = {key: value.detach().contiguous().cpu() for key, value in state_dict.items()}
    data = safetensors_bytes(tensors, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return write_bytes(path, data, overwrite, hint)
