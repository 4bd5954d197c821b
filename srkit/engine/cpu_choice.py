"""Choosing the CPU backend by measurement: on a model's first use on a CPU every candidate executor is built
and timed on one representative tile (a seeded random input `timed_tile` pixels square: warm-up, then the median of
up to REPS runs, fewer once they add up to BUDGET_MS; one already GIVE_UP times slower than the fastest so far is
not run again),
the fastest kept, and the choice cached as JSON under `<srkit cache>/cpu-choice/`, keyed by the model's weights
hash, the CPU's model name and relevant flags, the thread count and the backends' versions, so later runs (and
resumed ones on the same machine) build the same backend without measuring. The cache file is written whole
under a temporary name and renamed. A cached backend that cannot be built any more is measured again."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io.atomic import write_bytes
from ..models.info import ModelInfo
from .cpu_support import cache_folder, cpu_flags, cpu_name, threads
from .executor import Executor

FORMAT = 2  # bumped when what a cached choice means changes (2: the timed tile depends on the network's size)
# Input pixels per side of the timed tile for a network of up to WORK_PARAMETERS parameters. 64 picked ncnn for
# compact and SPAN where OpenVINO bf16 runs a 480x270 frame 1.5-2x faster (per-call costs dominate a run that
# small; benchmarks/NOTES.md): 256 is the size of a real tile, ~0.2 s for compact on 2 cores.
TILE = 256
WORK_PARAMETERS = 4_000_000
MIN_TIMED_TILE = 64
REPS = 3
BUDGET_MS = 1000.0  # timed runs (after the warm-up) stop once they add up to this: a 1 s run needs no repeat
GIVE_UP = 2.0  # a candidate this many times slower than the fastest so far stops being timed
PACKAGES = ("openvino", "ncnn", "onnxruntime", "torch")

Measure = Callable[[Executor, float], float]  # (executor, fastest so far in ms) -> its ms


@dataclass(frozen=True)
class Choice:
    """The backend a model runs on here, and why."""

    backend: str
    how: str  # "measured", "cached", "forced by SRKIT_CPU_BACKEND", "only candidate"
    timings_ms: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    tile: int = TILE  # the side of the tile the timings are of

    def reason(self) -> str:
        """One line: what ran and why (for the run summary)."""
        if not self.timings_ms:
            return self.how
        ranked = ", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(self.timings_ms.items(), key=lambda kv: kv[1]))
        failed = "".join(f"; {name} failed: {error}" for name, error in self.failed.items())
        return f"fastest on a {self.tile}x{self.tile} tile ({self.how}): {ranked}{failed}"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, object]:
    """What a choice depends on besides the model: CPU name and flags, threads, backend versions."""
    return {
        "cpu": cpu_name(),
        "flags": sorted(cpu_flags()),
        "threads": threads(),
        "versions": {package: _version(package) for package in PACKAGES},
    }


def timed_tile(info: ModelInfo) -> int:
    """The side of the tile a network is timed on: TILE, or less for a network larger than WORK_PARAMETERS, so that
    a run is about as much work (multiply-adds per pixel grow with the parameters): RRDB x4plus (16.7 M) is timed
    on 120x120 (where 256x256 took 6 s a run with OpenVINO bf16 on 2 cores, and its choice over a minute)."""
    side = TILE * min(1.0, (WORK_PARAMETERS / max(info.parameters, 1)) ** 0.5)
    return max(MIN_TIMED_TILE, int(side) // 8 * 8)


def choice_path(model_key: str, tile: int = TILE) -> Path:
    """The cache file of the choice for the model whose weights hash is `model_key`, timed on `tile`, here."""
    text = json.dumps({"format": FORMAT, "tile": tile, "model": model_key, **machine()}, sort_keys=True)
    return cache_folder() / "cpu-choice" / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"


def time_executor(executor: Executor, best_ms: float = math.inf) -> float:
    """Median milliseconds of one run on the network's timed tile, after a warm-up run; a candidate already
    slower than `best_ms` (the fastest so far) by GIVE_UP is not run again (its time so far is returned)."""
    side = timed_tile(executor.info)
    height, width = executor.info.size_rules.padded_size(side, side)
    x = torch.rand(1, executor.info.in_channels, height, width, generator=torch.Generator().manual_seed(0))
    times: list[float] = []
    for _ in range(1 + REPS):
        start = time.perf_counter()
        executor.run(x, clamp=(0.0, 1.0), out_dtype=torch.uint8)
        times.append((time.perf_counter() - start) * 1e3)
        if times[-1] > GIVE_UP * best_ms:  # it cannot win: on a busy machine each run of a slow one costs seconds
            return min(times)
        if len(times) > 1 and sum(times[1:]) >= BUDGET_MS:
            break
    return statistics.median(times[1:])


def _cached(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def choose(
    candidates: dict[str, Callable[[], Executor]],
    model_key: str,
    measure: Measure | None = None,
    tile: int = TILE,
) -> tuple[Executor, Choice]:
    """The executor to use among `candidates` (name -> builder) and why: the cached choice, else the fastest
    measured now by `measure` (default time_executor, on `tile`: the model's timed_tile; a candidate that fails
    to build or run is left out, with its error)."""
    measure = measure or time_executor
    path = choice_path(model_key, tile)
    record = _cached(path)
    if record and record.get("backend") in candidates:
        try:
            return candidates[record["backend"]](), Choice(
                record["backend"], "cached", record["timings_ms"], record.get("failed", {}), tile
            )
        except Exception as error:  # the cached backend broke (a changed install): measure again
            warnings.warn(
                f"cached CPU backend {record['backend']} failed ({error}); measuring again",
                RuntimeWarning,
                stacklevel=2,
            )
    if len(candidates) == 1:
        name, build = next(iter(candidates.items()))
        return build(), Choice(name, "only candidate")
    built: dict[str, Executor] = {}
    timings: dict[str, float] = {}
    failed: dict[str, str] = {}
    for name, build in candidates.items():
        try:
            executor = build()
            timings[name] = measure(executor, min(timings.values(), default=math.inf))
        except Exception as error:  # one runtime refusing this model leaves the others
            failed[name] = f"{type(error).__name__}: {error}".splitlines()[0]
            continue
        best = min(timings, key=timings.__getitem__)
        built = {best: built.get(best, executor)}  # only the fastest so far stays in memory
    if not timings:
        raise RuntimeError("no CPU backend could run this model: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    best = min(timings, key=timings.__getitem__)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(
        path,
        json.dumps({"backend": best, "timings_ms": timings, "failed": failed, **machine()}, indent=1).encode(),
        overwrite=True,
    )
    return built[best], Choice(best, "measured", timings, failed, tile)
