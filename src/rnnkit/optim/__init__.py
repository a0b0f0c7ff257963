"""Optimisers (torch.optim semantics), learning-rate schedules and gradient clipping."""
from .averaging import average_update, nt_trigger
from .clip import clip_grad_norm, clip_grad_value, global_norm
from .optimizers import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, make_optimizer
from .schedules import (SCHEDULES, PlateauState, Schedule, cosine_factor, plateau_update, step_factor,
                        warmup_factor)

__all__ = ["OPTIMIZERS", "PlateauState", "SCHEDULES", "SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "Schedule",
           "clip_grad_norm", "clip_grad_value", "cosine_factor", "global_norm", "make_optimizer", "plateau_update", "average_update", "nt_trigger",
           "step_factor", "warmup_factor"]
