"""Learning-rate schedules: pure functions of the step number, `lr_t = base_lr * factor(t)`.

t counts optimiser steps from 0. Warm-up multiplies any schedule by min(1, (t + 1) / warmup_steps)
(linear warm-up, as in Goyal et al. 2017). Being pure functions of t, they need no state in a checkpoint.
  constant: 1
  step:     gamma ** (t // step_size)
  cosine:   min_factor + (1 - min_factor) * (1 + cos(pi * min(t, total) / total)) / 2
  plateau:  1 here; the trainer multiplies the lr by `PlateauState.factor`, which `plateau_update`
            lowers when the validation loss stops improving (torch's ReduceLROnPlateau, mode "min",
            relative threshold, no cooldown). It depends on the validation losses, not on t, so its
            state goes into checkpoints:
      improved = val < best * (1 - threshold);   best = val if improved;   bad = 0 if improved else bad + 1
      if bad > patience:  factor = max(factor * gamma, min_factor);  bad = 0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple


def constant_factor(t: int) -> float:
    return 1.0


def step_factor(t: int, step_size: int, gamma: float) -> float:
    return gamma ** (t // step_size)


def cosine_factor(t: int, total_steps: int, min_factor: float = 0.0) -> float:
    frac = min(t, total_steps) / total_steps
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * frac))


def warmup_factor(t: int, warmup_steps: int) -> float:
    return 1.0 if warmup_steps <= 0 else min(1.0, (t + 1) / warmup_steps)


class PlateauState(NamedTuple):
    """What the plateau schedule remembers between validations."""
    best: float = math.inf      # the lowest validation loss so far
    bad: int = 0                # validations since it last improved (by more than the threshold)
    factor: float = 1.0         # the lr multiplier now


def plateau_update(state: PlateauState, val: float, patience: int, gamma: float, threshold: float = 1e-4,
                   min_factor: float = 0.0) -> PlateauState:
    """The state after one validation loss `val` (see the module docstring)."""
    best, bad, factor = state
    if val < best * (1.0 - threshold):          # NaN compares False: a bad validation
        best, bad = float(val), 0
    else:
        bad += 1
    if bad > patience:
        factor, bad = max(factor * gamma, min_factor), 0
    return PlateauState(best, bad, factor)


SCHEDULES = ("constant", "step", "cosine", "plateau")


@dataclass
class Schedule:
    """lr(t) = base_lr * warm-up(t) * schedule(t); `Schedule(...)(t)` gives the learning rate."""
    base_lr: float
    name: str = "constant"
    warmup_steps: int = 0
    total_steps: int | None = None   # cosine only
    step_size: int = 1000            # step only
    gamma: float = 0.5               # step only
    min_factor: float = 0.0          # cosine only: final lr / base lr

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.name!r}; choose one of {list(SCHEDULES)}")
        if self.name == "cosine" and not (self.total_steps and self.total_steps > 0):
            raise ValueError("the cosine schedule needs a total number of steps (--steps)")
        if self.name == "step" and self.step_size < 1:
            raise ValueError(f"step schedule: step_size must be >= 1, got {self.step_size}")

    def factor(self, t: int) -> float:
        f = warmup_factor(t, self.warmup_steps)
        if self.name == "step":
            f *= step_factor(t, self.step_size, self.gamma)
        elif self.name == "cosine":
            f *= cosine_factor(t, self.total_steps, self.min_factor)
        return f

    def __call__(self, t: int) -> float:
        return self.base_lr * self.factor(t)
