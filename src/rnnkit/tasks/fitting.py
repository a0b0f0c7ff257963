"""The one place the app estimators hand their model to `rnnkit.train.Trainer`.

Estimators build `train_batches(epoch, rng)`, `train_step(batch) -> (loss, n_items)` and
`eval_fn() -> validation loss` (the Trainer's protocol) and call `run_training`. Their scikit-learn
style arguments (epochs, lr, ...) become a `TrainConfig`; a CLI passes its own `TrainConfig` (built by
`rnnkit.cli.common.train_config_from_args`) which then takes precedence.
"""
from __future__ import annotations

import dataclasses

from ..train import TrainConfig, Trainer


def make_config(est, n_batches: int, has_val: bool) -> TrainConfig:
    """TrainConfig from an estimator's arguments; validation once per epoch (eval_every = batches).
    An estimator with `_setting(name)` resolves its None arguments to its input's recipe there."""
    cfg = getattr(est, "train_config", None)
    if cfg is not None:
        cfg = TrainConfig.from_dict(dict(cfg)) if isinstance(cfg, dict) else cfg
        return cfg
    get = getattr(est, "_setting", lambda name: getattr(est, name))
    return TrainConfig(epochs=int(get("epochs")), time_budget=est.time_budget, optimizer=est.optimizer,
                       lr=float(get("lr")), clip=est.clip or None, eval_every=max(1, n_batches),
                       patience=int(est.patience) if (has_val and est.patience) else None,
                       seed=int(est.seed) if est.seed is not None else 0, progress=False)


def run_training(est, model, train_batches, train_step, eval_fn, n_batches: int, out_dir=None,
                 meta=None, resume=None, seed=None, seed_offset: int = 0) -> dict:
    """Train `model` in place with the Trainer; returns a JSON-ready history summary. `seed`: the batch
    order's seed instead of the configuration's; `seed_offset` is added to it (the members of an
    ensemble each draw their own batch order)."""
    cfg = make_config(est, n_batches, eval_fn is not None)
    if seed is not None or seed_offset:
        base = int(seed) if seed is not None else int(cfg.seed or 0)
        cfg = dataclasses.replace(cfg, seed=base + int(seed_offset))
    trainer = Trainer(model, cfg, out_dir=out_dir, meta=meta)
    if resume is not None:
        trainer.resume(resume)
    trainer.fit(train_batches, train_step, eval_fn)
    model.eval()
    h = trainer.history
    return {"steps": trainer.step, "epochs_run": trainer.epoch, "seconds": trainer.elapsed,
            "final_loss": h["loss"][-1] if h["loss"] else None, "val_loss": list(h["val_loss"]),
            "best_val_loss": None if not h["val_loss"] else min(h["val_loss"]),
            "stopped_early": trainer.stopped_early, "train_config": cfg.to_dict()}
