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

from ..errors import UserError
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

    def scale_recurrent(self, radius: float) -> "MemoryModel":
        """Rescale every recurrent weight block (each gate's H x H block of W_hh) to spectral radius
        `radius`: > 1 puts a plain RNN in the exploding regime, < 1 in the vanishing one."""
        if not radius > 0:
            raise ValueError(f"radius must be > 0, got {radius}")
        H = self.rnn.hidden_size
        for k, W in self.rnn.params.items():
            if k.startswith("weight_hh"):
                for j in range(W.shape[0] // H):
                    blk = W[j * H:(j + 1) * H]
                    blk *= radius / np.abs(np.linalg.eigvals(blk.astype(np.float64))).max()
        return self

    def forward(self, x):
        out, _ = self.rnn.forward(x)
        return self.head.forward(out[-1])                           # (B, K)

    def loss_and_backward(self, batch: MemoryBatch) -> float:
        """Cross-entropy of the recall at the cue step; fills `grads`."""
        from ..losses import softmax_cross_entropy
        out, _ = self.rnn.forward(batch.x)
        logits = self.head.forward(out[-1])
        with np.errstate(all="ignore"):
            loss, dlogits = softmax_cross_entropy(logits, batch.y)
        if not np.isfinite(loss):
            # diverged forward pass (e.g. an exploding relu RNN): no backward through NaN; the
            # Trainer sees the non-finite loss, skips the step and restores the last good weights
            return float(loss)
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
    optimizer: str = "adam"     # any of rnnkit.optim's optimisers
    lr: float = 3e-3
    clip: float | None = 1.0    # global-norm gradient clipping (None: off)
    radius: float | None = None  # rescale W_hh blocks to this spectral radius at init (None: default init)
    nonlinearity: str = "tanh"  # plain RNN only: tanh or relu
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
    grad_norms: list = field(default_factory=list)   # pre-clipping global norm per step (Trainer log)
    losses: list = field(default_factory=list)
    nonfinite_steps: int = 0                         # steps the Trainer skipped as NaN/inf
    diverged: str | None = None                      # the Trainer's message if it gave up


def train_memory(cell: str, delay: int, budget_s: float, cfg: MemoryConfig, out_dir=None,
                 max_steps: int | None = None) -> tuple[MemoryModel, MemoryRun]:
    """Train one cell on delayed recall at one delay for `budget_s` seconds with the Trainer.

    With `out_dir`, the Trainer writes `out_dir/checkpoint` whose `config.json` describes the model
    and task, so `rnnkit diagnose out_dir` can rebuild it.
    """
    from ..train import TrainConfig, Trainer
    K = cfg.n_symbols
    # plain RNN: the chosen nonlinearity; LSTM: forget-gate bias 1 (Jozefowicz et al. 2015), the
    # standard start for long memory; GRU: defaults
    kw = {"rnn": {"nonlinearity": cfg.nonlinearity}, "lstm": {"forget_bias": 1.0}}.get(cell, {})
    model = MemoryModel(cell, K + 2, cfg.hidden, K, seed=cfg.seed, **kw)
    if cfg.radius is not None:
        model.scale_recurrent(cfg.radius)
    tcfg = TrainConfig(time_budget=float(budget_s), steps=max_steps, lr=cfg.lr, optimizer=cfg.optimizer,
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
    diverged = None
    try:
        trainer.fit(batches, step)
    except UserError as e:            # the Trainer gives up after repeated non-finite steps
        diverged = str(e)
    seconds = time.perf_counter() - t0
    model.eval()
    test = delayed_recall(cfg.n_eval, delay=delay, n_symbols=K, rng=10_000 + cfg.seed)
    with np.errstate(all="ignore"):
        acc = model.accuracy(test)
    losses = trainer.history["loss"]
    run = MemoryRun(cell, int(delay), acc, acc >= cfg.threshold, trainer.step, round(seconds, 2),
                    float(losses[-1]) if losses else None, list(trainer.history["grad_norm"]),
                    list(losses), trainer.nonfinite_total, diverged)
    return model, run


def run_memory(cells, delays, budget_s: float, cfg: MemoryConfig | None = None, out_dir=None,
               progress=print) -> tuple[dict, list[MemoryRun]]:
    """Every cell on every delay, the budget split equally.

    Returns (the memory.json content, the runs with their per-step loss and gradient-norm logs)."""
    cfg = cfg or MemoryConfig()
    share = float(budget_s) / (len(cells) * len(delays))
    results, all_runs = {}, []
    for cell in cells:
        runs = []
        for delay in delays:
            sub = None if out_dir is None else f"{out_dir}/{cell}_delay{delay}"
            _, run = train_memory(cell, delay, share, cfg, out_dir=sub)
            progress(f"{cell:5s} delay {delay:4d}: accuracy {run.accuracy:.3f} "
                     f"({'solved' if run.solved else 'not solved'}, {run.steps} steps, {run.seconds:.1f}s"
                     + (f", {run.nonfinite_steps} non-finite steps skipped" if run.nonfinite_steps else "")
                     + (", training diverged" if run.diverged else "") + ")")
            runs.append(run)
            all_runs.append(run)
        solved = [r.delay for r in runs if r.solved]
        clip = {str(r.delay): asdict(suggest_clip_threshold(r.grad_norms)) for r in runs if r.grad_norms}
        results[cell] = {
            "accuracy": {str(r.delay): r.accuracy for r in runs},
            "longest_delay_solved": max(solved) if solved else None,
            "runs": [{k: v for k, v in asdict(r).items() if k not in ("grad_norms", "losses")} for r in runs],
            # pre-clipping gradient norms logged by the Trainer: explosions and the suggested clip
            "gradient_norms": clip,
        }
    return {"task": "delayed_recall", "threshold": cfg.threshold, "chance": 1.0 / cfg.n_symbols,
            "budget_s": float(budget_s), "budget_per_run_s": share, "config": asdict(cfg),
            "delays": [int(d) for d in delays], "cells": results}, all_runs
