"""The one place the app estimators hand their model to the training loop.

Estimators build `train_batches(epoch, rng)`, `train_step(batch) -> (loss, n_items)` and
`eval_fn() -> validation loss`, the protocol of `rnnkit.train.Trainer`, and call `run_training`.
"""
from __future__ import annotations

import time

import numpy as np

from ..optim import clip_grad_norm, make_optimizer


def run_training(model, train_batches, train_step, eval_fn=None, *, epochs: int = 10, lr: float = 1e-2,
                 optimizer: str = "adam", clip: float | None = 5.0, patience: int | None = None,
                 time_budget: float | None = None, steps: int | None = None, seed: int = 0) -> dict:
    """Train `model` in place; returns a history dict (losses per epoch, best validation, stop reason).

    With `eval_fn` the parameters of the epoch with the lowest validation loss are restored at the end
    (early stopping after `patience` epochs without improvement)."""
    rng = np.random.default_rng(seed)
    opt = make_optimizer(optimizer, lr)
    params = model.params
    history = {"train_loss": [], "val_loss": [], "stopped": "epochs"}
    best, best_state, bad = np.inf, None, 0
    start, n_steps = time.perf_counter(), 0
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in train_batches(epoch, rng):
            loss, n = train_step(batch)
            if not np.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss} at step {n_steps}; lower the "
                                         "learning rate")
            grads = model.grads
            if clip:
                clip_grad_norm(grads, clip)
            opt.step(params, grads)
            total, count, n_steps = total + loss * n, count + n, n_steps + 1
            if (steps and n_steps >= steps) or (time_budget and time.perf_counter() - start > time_budget):
                break
        history["train_loss"].append(total / max(count, 1))
        if eval_fn is not None:
            model.eval()
            v = float(eval_fn())
            history["val_loss"].append(v)
            if v < best:
                best, best_state, bad = v, model.state_dict(), 0
            else:
                bad += 1
                if patience is not None and bad >= patience:
                    history["stopped"] = "early_stopping"
                    break
        if steps and n_steps >= steps:
            history["stopped"] = "steps"
            break
        if time_budget and time.perf_counter() - start > time_budget:
            history["stopped"] = "time_budget"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
        history["best_val_loss"] = best
    model.eval()
    history.update(epochs_run=len(history["train_loss"]), steps=n_steps,
                   seconds=time.perf_counter() - start)
    return history
