"""Training run folders: the checkpoint (one safetensors file: module weights, optimizer state, random-generator
states and JSON metadata, written atomically, so an interrupted run resumes exactly where it left off), the
run's progress and its log; and a run's starting weights (--init)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from ..errors import SrkitError
from ..io.atomic import atomic_path, write_bytes

METADATA_KEY = "srkit_checkpoint"
CHECKPOINT = "checkpoint.safetensors"
LOG = "log.jsonl"


@dataclass
class RunState:
    """Where a run stands: steps done, training seconds over all sessions, and its logged records."""

    step: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


def start_from(model: nn.Module, weights: dict[str, torch.Tensor], init: str, options: str) -> None:
    """Load the `weights` that --init `init` names into `model`; a network of another shape is one line naming
    the `options` that shape it."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise SrkitError(
            f"--init {init}: not the network these options build ({str(error).splitlines()[0]}); "
            f"give the {options} it was trained with"
        ) from None


def checkpoint_path(run_dir: Path, resume: bool) -> Path:
    """The run's checkpoint file, after refusing a new run over an old one and a resume with nothing to resume."""
    checkpoint = run_dir / CHECKPOINT
    if resume and not checkpoint.is_file():
        raise SrkitError(f"{run_dir}: --resume, but there is no {CHECKPOINT} in it")
    if not resume and checkpoint.exists():
        raise SrkitError(f"{run_dir} holds a training run; pass --resume to continue it or choose another -o")
    if run_dir.exists() and not run_dir.is_dir():
        raise SrkitError(f"{run_dir} is a file; -o must be a folder")
    return checkpoint


def create_run_dir(run_dir: Path) -> None:
    """Make the run folder (once the run's inputs have been read), or say in one line why it cannot be made."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SrkitError(f"{run_dir}: cannot create the run folder ({error.strerror or error})") from None


def write_log(run_dir: Path, history: list[dict]) -> None:
    """Rewrite the run's log.jsonl from its history (one JSON object per line), atomically."""
    with atomic_path(run_dir / LOG, overwrite=True) as tmp:
        tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in history))


def save_checkpoint(
    path: str | os.PathLike,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    generators: dict[str, torch.Generator],
    metadata: dict,
) -> Path:
    """Write every module's state dict, every optimizer's per-parameter state and every generator's state (on
    disk before it replaces the previous checkpoint; a full disk is one line and leaves that one intact)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"module.{name}.{key}": value for key, value in module.state_dict().items()})
    groups = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for index, values in state["state"].items():
            tensors.update({f"optim.{name}.{index}.{key}": torch.as_tensor(value) for key, value in values.items()})
    tensors.update({f"rng.{name}": generator.get_state() for name, generator in generators.items()})
    header = {METADATA_KEY: json.dumps({"metadata": metadata, "param_groups": groups}, sort_keys=True)}
    data = safetensors_bytes({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=header)
    return write_bytes(path, data, overwrite=True)  # the previous checkpoint stays whole until this one is


def _read(path: str | os.PathLike, tensors: bool) -> tuple[dict, dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = json.loads((handle.metadata() or {})[METADATA_KEY])
            return header, {key: handle.get_tensor(key) for key in handle.keys()} if tensors else {}
    except Exception as error:  # safetensors raises its own error types; a missing header is a KeyError
        raise SrkitError(f"{path}: not a readable srkit checkpoint ({str(error).splitlines()[0]})") from None


def checkpoint_metadata(path: str | os.PathLike) -> dict:
    """The metadata a checkpoint was saved with, without loading its tensors (to check a resume first)."""
    return _read(path, tensors=False)[0]["metadata"]


def load_checkpoint(
    path: str | os.PathLike,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    generators: dict[str, torch.Generator],
) -> dict:
    """Restore what `save_checkpoint` wrote into the given objects (same names); returns the metadata."""
    header, tensors = _read(path, tensors=True)
    try:
        for name, module in modules.items():
            prefix = f"module.{name}."
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, optimizer in optimizers.items():
            prefix = f"optim.{name}."
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                if key.startswith(prefix):
                    index, field = key[len(prefix) :].split(".", 1)
                    state.setdefault(int(index), {})[field] = value
            optimizer.load_state_dict({"state": state, "param_groups": header["param_groups"][name]})
        for name, generator in generators.items():
            generator.set_state(tensors[f"rng.{name}"])
    except (KeyError, RuntimeError, ValueError) as error:
        raise SrkitError(
            f"{path}: checkpoint does not fit this run ({str(error).splitlines()[0]}); "
            "resume with the options it was started with"
        ) from None
    return header["metadata"]
