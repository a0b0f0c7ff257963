"""Rebuild a saved model and a batch of its own data for `rnnkit diagnose`.

A run directory holds a Trainer checkpoint (`DIR/checkpoint`, or DIR itself) whose `config.json`
names the task; `LOADERS[task](arrays, config, batch_size, seed)` returns the model with its weights,
a batch, the `loss_fn` for `gradient_flow` (None: the model's `loss_and_backward`) and a description.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError


def _memory(arrays, config, batch_size, seed):
    from .memory import MemoryModel
    from .memory_tasks import delayed_recall
    K = int(config["n_symbols"])
    model = MemoryModel(config["cell"], 2 * K + 1, int(config["hidden"]), K)
    model.load_state_dict(arrays["model"])
    model.astype(np.float64)
    batch = delayed_recall(batch_size, delay=int(config["delay"]), n_symbols=K, rng=seed, dtype=np.float64)
    desc = dict(config, summary=f"{config['cell']} on delayed recall, delay {config['delay']}")
    return model, batch, None, desc


LOADERS = {"memory": _memory}


def load_for_diagnosis(path, batch_size: int = 16, seed: int = 0):
    from ..train import load_checkpoint
    path = Path(path)
    ck = path / "checkpoint" if (path / "checkpoint").is_dir() else path
    arrays, jsons = load_checkpoint(ck)
    config = jsons.get("config")
    task = config.get("task") if isinstance(config, dict) else None
    if task not in LOADERS:
        raise UserError(f"{str(path)!r}: cannot diagnose a model of task {task!r}; supported: "
                        f"{', '.join(sorted(LOADERS))} (a run directory of `rnnkit memory`)")
    try:
        return LOADERS[task](arrays, config, batch_size, seed)
    except (KeyError, ValueError) as e:
        raise UserError(f"{str(path)!r}: the checkpoint does not match its config ({e})") from None
