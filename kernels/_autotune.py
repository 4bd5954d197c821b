"""Launch settings chosen by timing, once per shape: the winner is kept in a JSON file so later runs skip the timing.

SRKIT_AUTOTUNE=0 turns timing off (callers then use their static rule). SRKIT_CACHE names srkit's cache folder
(default: $XDG_CACHE_HOME/srkit, else ~/.cache/srkit); the winners live in `autotune.json` there, keyed by op,
device name, dtype and shape, so one file serves several GPUs. A file that cannot be read is reported once and
replaced on the next write; writes go to a temporary file that is renamed over the old one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

AUTOTUNE_ENV = "SRKIT_AUTOTUNE"
CACHE_ENV = "SRKIT_CACHE"
CACHE_FILE = "autotune.json"
# Bumped when stored entries change meaning; a file of another format is treated as unreadable.
FORMAT = 1

Config = TypeVar("Config", bound="DataclassInstance")

_files: dict[Path, dict[str, dict]] = {}  # entries read from each cache file, loaded once per process
_chosen: dict[tuple[str, ...], object] = {}  # key -> winner, so a hit costs one dict lookup per launch


def enabled() -> bool:
    """Whether SRKIT_AUTOTUNE allows timing candidates (default: yes)."""
    return os.environ.get(AUTOTUNE_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def cache_path() -> Path:
    """The autotune cache file: $SRKIT_CACHE/autotune.json, else under $XDG_CACHE_HOME or ~/.cache."""
    folder = os.environ.get(CACHE_ENV)
    if not folder:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "srkit"
    return Path(folder) / CACHE_FILE


def make_key(op: str, device: str, dtype: str, **shape: int) -> tuple[str, ...]:
    """Cache key: op, device name, dtype and the shape fields that change the best launch settings."""
    return (op, device, dtype.removeprefix("torch."), *(f"{name}={value}" for name, value in shape.items()))


def _read(path: Path) -> dict[str, dict]:
    """Entries stored in `path`; {} for a missing file, {} with a warning for an unreadable one."""
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        warnings.warn(
            f"{path}: unreadable autotune cache ({error}); it will be rewritten", RuntimeWarning, stacklevel=4
        )
        return {}
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("entries"), dict):
        warnings.warn(
            f"{path}: autotune cache is not format {FORMAT}; it will be rewritten", RuntimeWarning, stacklevel=4
        )
        return {}
    return payload["entries"]


def _entries(path: Path) -> dict[str, dict]:
    if path not in _files:
        _files[path] = _read(path)
    return _files[path]


def _store(path: Path, key: str, entry: dict) -> None:
    """Add one entry, keeping what other processes wrote meanwhile; atomic replace of the file."""
    entries = _entries(path)
    entries[key] = entry
    if path.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already reported when first read
            entries.update({k: v for k, v in _read(path).items() if k not in entries})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        warnings.warn(
            f"{path}: cannot write the autotune cache ({error}); settings are kept for this process only",
            RuntimeWarning,
            stacklevel=4,
        )
        return
    try:
        with os.fdopen(fd, "w") as file:
            json.dump({"format": FORMAT, "entries": entries}, file, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def choose(
    key: tuple[str, ...],
    candidates: Callable[[], Sequence[Config]],
    trial: Callable[[Config], object],
    timer: Callable[[Callable[[], object]], float],
    skip: tuple[type[Exception], ...] = (),
) -> Config:
    """The stored winner for `key`, else the candidate (a dataclass) whose trial `timer` finds fastest, then stored.

    `candidates()` lists them (called only when `key` is not yet chosen in this process); `timer(fn)` returns
    milliseconds per call of fn; a candidate whose trial raises one of `skip` (say, out of shared memory on this
    GPU) is left out. A stored winner that is no longer a candidate is timed again.
    """
    memo = _chosen.get(key)
    if memo is not None:
        return cast(Config, memo)  # stored below for this key, from this key's candidates
    listed = candidates()
    path, name = cache_path(), "|".join(key)
    stored = _entries(path).get(name, {}).get("config")
    winner = next((c for c in listed if dataclasses.asdict(c) == stored), None)
    if winner is None:
        times: dict[int, float] = {}
        failures = []
        for index, candidate in enumerate(listed):
            try:
                times[index] = timer(lambda candidate=candidate: trial(candidate))
            except skip as error:
                failures.append(f"{candidate}: {type(error).__name__}")
        if not times:
            raise RuntimeError(f"autotune {name}: no candidate could run ({'; '.join(failures)})")
        best = min(times, key=times.__getitem__)
        winner = listed[best]
        _store(
            path,
            name,
            {
                "config": dataclasses.asdict(winner),
                "ms": times[best],
                "timed_ms": {str(listed[i]): ms for i, ms in times.items()},
            },
        )
    _chosen[key] = winner
    return winner


def forget() -> None:
    """Drop what this process has read and chosen, as a new process starts (tests; after changing SRKIT_CACHE)."""
    _files.clear()
    _chosen.clear()
