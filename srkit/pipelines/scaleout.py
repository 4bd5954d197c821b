"""Run independent units of work (photo files, video segments) on one or many workers.

A unit is processed by `work(upscaler, unit)`, a module-level function (so it pickles), on a worker that built
its Upscaler once from an `UpscalerSpec`. Results come back in unit order and `on_done(index, result)` is called
in the driver as each unit finishes, so the caller can record progress (a resume manifest, a progress bar).
The output of a unit must not depend on which worker ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from ..upscaler import Upscaler

Unit = TypeVar("Unit")
Result = TypeVar("Result")


@dataclass(frozen=True)
class UpscalerSpec:
    """What builds an Upscaler: picklable, so every worker process or Ray actor builds its own, once."""

    model: str
    device: str | None = None
    dtype: str | None = None
    tile: int | str = "auto"
    batch: int | None = None
    """None: 4 on CUDA, 1 elsewhere."""
    outscale: float | None = None

    def build(self, device: str | None = None) -> Upscaler:
        """The Upscaler, on `device` when given (a worker's own device), else the spec's (default: first GPU)."""
        from ..environment import default_device

        where = device or self.device or str(default_device())
        batch = self.batch or (4 if where.startswith("cuda") else 1)
        return Upscaler(self.model, device=where, dtype=self.dtype, tile=self.tile, batch=batch,
                        outscale=self.outscale)


@dataclass(frozen=True)
class ScaleOut:
    """Where units run: 'local' (this process when workers == 1, else worker processes) or 'ray'."""

    backend: str = "local"
    workers: int = 1
    devices: tuple[str, ...] = ()
    """One worker per device where given (cuda:0, cuda:1, ...); empty: the spec's device for every worker."""
    ray_address: str | None = None


def run_units(units: Sequence[Unit], work: Callable[[Upscaler, Unit], Result], spec: UpscalerSpec,
              scale_out: ScaleOut = ScaleOut(),
              on_done: Callable[[int, Result], None] | None = None) -> list[Result]:
    """`work(upscaler, unit)` for every unit; the results in unit order."""
    if scale_out.backend != "local" or scale_out.workers != 1:
        raise NotImplementedError("only one local worker so far")
    upscaler = spec.build()
    results = []
    for index, unit in enumerate(units):
        results.append(work(upscaler, unit))
        if on_done:
            on_done(index, results[-1])
    return results
