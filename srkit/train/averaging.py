"""The moving average of a network's weights that both trainers export: its decay per step, ramped up."""

from __future__ import annotations


def average_decay(decay: float, updates: int) -> float:
    """The decay at update number `updates` (from 0): `decay`, ramped up from 0.1 as (1 + n) / (10 + n)
    (TensorFlow's ExponentialMovingAverage with num_updates), so a short run's average is not mostly its random
    initialisation (a fixed 0.999 keeps 0.999^2000 = 13.5 % of it after 2000 steps)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))
