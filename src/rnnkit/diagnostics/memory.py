"""Short-term memory, measured: train each cell on delayed recall at each delay and see where it fails.

For every (cell, delay) a `MemoryModel` (one recurrent layer, a linear read-out at the recall-cue step)
is trained with the library's `Trainer` on freshly generated `delayed_recall` batches for an equal share
of the time budget, then scored on `n_eval` held-out sequences (a different seed). A delay is *solved*
when the held-out accuracy reaches `threshold` (default 0.9; chance is 1/n_symbols = 0.25 with the
default 4 symbols). The longest solved delay is the measured reach of the cell's memory under that
budget: a longer budget can only help, so a failure is "not within this budget", stated as such.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..layers.base import Module
from .exploding import suggest_clip_threshold
from .memory_tasks import MemoryBatch, delayed_recall


class MemoryModel(Module):
    """Recurrent layer + `Linear` read-out of the last step: logits (B, K) = head(h_T)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, n_classes: int, seed=None,
                 dtype=np.float32, **cell_kwargs):
        super().__init__()
        from ..layers import Linear
        cls = CELL_CLASSES().get(cell)
        if cls is None:
            raise ValueError(f"cell must be one of {sorted(CELL_CLASSES())}, got {cell!r}")
        self.cell = cell
        self.add_module("rnn", cls(input_size, hidden_size, dtype=dtype, seed=seed, **cell_kwargs))
        self.add_module("head", Linear(hidden_size, n_classes, dtype=dtype,
                                       seed=None if seed is None else seed + 1))

    @property
    def rnn(self):
        return self._children["rnn"]

    @property
    def head(self):
        return self._children["head"]

    def forward(self, x):
        out, _ = self.rnn.forward(x)
        return self.head.forward(out[-1])                           # (B, K)

    def loss_and_backward(self, batch: MemoryBatch) -> float:
        """Cross-entropy of the recall at the cue step; fills `grads`."""
        from ..losses import softmax_cross_entropy
        out, _ = self.rnn.forward(batch.x)
        logits = self.head.forward(out[-1])
        loss, dlogits = softmax_cross_entropy(logits, batch.y)
        dout = np.zeros_like(out)
        dout[-1] = self.head.backward(dlogits)
        self.rnn.backward(dout)
        return float(loss)

    def accuracy(self, batch: MemoryBatch) -> float:
        return float((self.forward(batch.x).argmax(-1) == batch.y).mean())


def CELL_CLASSES() -> dict:
    from .. import GRU, LSTM, RNN
    return {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@dataclass
class MemoryConfig:
    hidden: int = 32            # hidden units per cell
    n_symbols: int = 4          # symbols to remember; chance accuracy 1/n_symbols
    batch_size: int = 32
    lr: float = 1e-2            # Adam
    clip: float = 1.0           # global-norm gradient clipping
    threshold: float = 0.9      # held-out accuracy that counts as "solved"
    n_eval: int = 1000          # held-out sequences per delay
    seed: int = 0


@dataclass
class MemoryRun:
    cell: str
    delay: int
    accuracy: float
    solved: bool
    steps: int
    seconds: float
    final_loss: float | None
    grad_norms: list = field(default_factory=list)


def train_memory(cell: str, delay: int, budget_s: float, cfg: MemoryConfig, out_dir=None,
                 max_steps: int | None = None) -> tuple[MemoryModel, MemoryRun]:
    """Train one cell on delayed recall at one delay for `budget_s` seconds with the Trainer.

    With `out_dir`, the Trainer writes `out_dir/checkpoint` whose `config.json` describes the model
    and task, so `rnnkit diagnose out_dir` can rebuild it.
    """
    from ..train import TrainConfig, Trainer
    K = cfg.n_symbols
    model = MemoryModel(cell, 2 * K + 1, cfg.hidden, K, seed=cfg.seed)
    tcfg = TrainConfig(time_budget=float(budget_s), steps=max_steps, lr=cfg.lr, optimizer="adam",
                       clip=cfg.clip, seed=cfg.seed, progress=False, eval_every=0)
    meta = {"config": {"task": "memory", "cell": cell, "hidden": cfg.hidden, "n_symbols": K,
                       "delay": int(delay), "seed": cfg.seed}}
    trainer = Trainer(model, tcfg, out_dir=out_dir, meta=meta)

    def batches(epoch, rng):
        for _ in range(100):
            yield delayed_recall(cfg.batch_size, delay=delay, n_symbols=K, rng=rng)

    def step(batch):
        return model.loss_and_backward(batch), cfg.batch_size

    t0 = time.perf_counter()
    trainer.fit(batches, step)
    seconds = time.perf_counter() - t0
    model.eval()
    test = delayed_recall(cfg.n_eval, delay=delay, n_symbols=K, rng=10_000 + cfg.seed)
    acc = model.accuracy(test)
    losses = trainer.history["loss"]
    run = MemoryRun(cell, int(delay), acc, acc >= cfg.threshold, trainer.step, round(seconds, 2),
                    float(losses[-1]) if losses else None, list(trainer.history["grad_norm"]))
    return model, run


def run_memory(cells, delays, budget_s: float, cfg: MemoryConfig | None = None, out_dir=None,
               progress=print) -> dict:
    """Every cell on every delay, the budget split equally; returns the memory.json content."""
    cfg = cfg or MemoryConfig()
    share = float(budget_s) / (len(cells) * len(delays))
    results = {}
    for cell in cells:
        runs = []
        for delay in delays:
            sub = None if out_dir is None else f"{out_dir}/{cell}_delay{delay}"
            _, run = train_memory(cell, delay, share, cfg, out_dir=sub)
            progress(f"{cell:5s} delay {delay:4d}: accuracy {run.accuracy:.3f} "
                     f"({'solved' if run.solved else 'not solved'}, {run.steps} steps, {run.seconds:.1f}s)")
            runs.append(run)
        solved = [r.delay for r in runs if r.solved]
        clip = {str(r.delay): asdict(suggest_clip_threshold(r.grad_norms)) for r in runs if r.grad_norms}
        results[cell] = {
            "accuracy": {str(r.delay): r.accuracy for r in runs},
            "longest_delay_solved": max(solved) if solved else None,
            "runs": [{k: v for k, v in asdict(r).items() if k != "grad_norms"} for r in runs],
            # pre-clipping gradient norms logged by the Trainer: explosions and the suggested clip
            "gradient_norms": clip,
        }
    return {"task": "delayed_recall", "threshold": cfg.threshold, "chance": 1.0 / cfg.n_symbols,
            "budget_s": float(budget_s), "budget_per_run_s": share, "config": asdict(cfg),
            "delays": [int(d) for d in delays], "cells": results}
