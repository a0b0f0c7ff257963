"""`TrainConfig`: every knob of the training loop, typed, defaulted and validated in one place."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import UserError
from ..optim import OPTIMIZERS, SCHEDULES


AVERAGING = ("off", "nt")


@dataclass
class TrainConfig:
    # when to stop (totals over the whole run, resumes included); none given => 1 epoch
    steps: int | None = None            # optimiser steps
    epochs: int | None = None           # passes over the training batches
    time_budget: float | None = None    # seconds of training (validation included)
    # optimiser
    optimizer: str = "adam"             # one of rnnkit.optim.OPTIMIZERS
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.0               # SGD and RMSprop only
    clip: float | None = 5.0            # clip the global gradient norm to this (None: no clipping)
    clip_value: float | None = None     # clamp each gradient entry to +-clip_value (None: off)
    # learning-rate schedule: lr_t = lr * warm-up(t) * schedule(t)
    schedule: str = "constant"          # constant | step | cosine (cosine needs steps)
    warmup_steps: int = 0
    lr_step_size: int = 1000            # step schedule: multiply by lr_gamma every lr_step_size steps
    lr_gamma: float = 0.5               # step and plateau schedules: the factor applied to the lr
    min_lr_factor: float = 0.0          # cosine: final lr = lr * min_lr_factor; plateau: the lowest lr
    plateau_patience: int = 1           # plateau: validations without improvement before lr *= lr_gamma
    plateau_threshold: float = 1e-4     # plateau: an improvement is val < best * (1 - this)
    # iterate averaging: "off", or "nt" (NT-ASGD: start averaging when validation stops improving)
    averaging: str = "off"
    nonmono: int = 5                    # nt: compare with the best loss of the validations > this many ago
    # validation and early stopping
    eval_every: int = 200               # steps between validations (0: only at the end)
    patience: int | None = None         # stop after this many validations without improvement
    # checkpoints (only with an output folder)
    checkpoint_every: int = 0           # steps between checkpoints (0: at the end and on Ctrl-C only)
    checkpoint_seconds: float = 60.0    # wall-clock seconds between checkpoints (0: off), so a kill loses <= this
    # reproducibility and output
    seed: int = 0
    progress: bool = True               # tqdm progress bar
    # non-finite loss or gradient: skip the step, restore the last good weights, lr *= this factor
    nonfinite_lr_factor: float = 0.5
    max_nonfinite: int = 5              # consecutive non-finite steps before giving up

    def __post_init__(self):
        def pos(name, integer):
            v = getattr(self, name)
            if v is None:
                return
            ok = isinstance(v, int) and not isinstance(v, bool) if integer else isinstance(v, (int, float))
            if not ok or not math.isfinite(v) or v <= 0:
                raise UserError(f"{name.replace('_', '-')} must be a positive {'integer' if integer else 'number'}, got {v!r}")

        for n in ("steps", "epochs", "lr_step_size", "max_nonfinite"):
            pos(n, True)
        for n in ("time_budget", "lr", "clip", "clip_value", "patience"):
            pos(n, n == "patience")
        v = self.checkpoint_seconds
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise UserError(f"checkpoint-seconds must be a number >= 0, got {v!r}")
        v = self.weight_decay
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise UserError(f"weight-decay must be a number >= 0, got {v!r}")
        for n, low in (("lr_gamma", 0), ("plateau_threshold", None), ("min_lr_factor", None)):
            v = getattr(self, n)                     # a factor: in (0, 1] for lr_gamma, else [0, 1]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v <= 1) or v == low:
                raise UserError(f"{n.replace('_', '-')} must be a number in {'(0' if low == 0 else '[0'}, 1], "
                                f"got {v!r}")
        if self.averaging not in AVERAGING:
            raise UserError(f"unknown averaging {self.averaging!r}; choose one of {list(AVERAGING)}")
        if self.averaging != "off" and self.eval_every == 0:
            raise UserError("--averaging nt needs validations during training: give --eval-every N > 0")
        for n in ("eval_every", "checkpoint_every", "warmup_steps", "plateau_patience", "nonmono"):
            v = getattr(self, n)
            if not isinstance(v, int) or v < 0:
                raise UserError(f"{n.replace('_', '-')} must be an integer >= 0, got {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r}; choose one of {list(SCHEDULES)}")
        if self.schedule == "cosine" and self.steps is None:
            raise UserError("the cosine schedule needs --steps (the total it anneals over)")
        if self.schedule == "plateau" and self.eval_every == 0:
            raise UserError("the plateau schedule needs validations during training: give --eval-every N > 0")
        if not 0 < self.nonfinite_lr_factor < 1:
            raise UserError(f"nonfinite-lr-factor must be in (0, 1), got {self.nonfinite_lr_factor}")
        if self.steps is None and self.epochs is None and self.time_budget is None:
            self.epochs = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"unknown training option(s) {unknown}")
        return cls(**d)
