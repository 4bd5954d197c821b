"""The moving average of a network's weights that both trainers export: its decay per step, ramped up."""

from __future__ import annotations

import torch
import torch.nn as nn


def average_decay(decay: float, updates: int) -> float:
    """The decay at update number `updates` (from 0): `decay`, ramped up from 0.1 as (1 + n) / (10 + n)
    (TensorFlow's ExponentialMovingAverage with num_updates), so a short run's average is not mostly its random
    initialisation (a fixed 0.999 keeps 0.999^2000 = 13.5 % of it after 2000 steps)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float, taken: int) -> None:
    """average <- d * average + (1 - d) * model per parameter after `taken` steps, d = average_decay(decay, taken);
    buffers (BatchNorm statistics) are copied as they are: the model's are the current ones."""
    rate = 1.0 - average_decay(decay, taken)
    for target, source in zip(average.parameters(), model.parameters()):
        target.lerp_(source, rate)
    for target, source in zip(average.buffers(), model.buffers()):
        target.copy_(source)
