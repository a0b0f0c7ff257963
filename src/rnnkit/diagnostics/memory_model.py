"""The models of the memory tasks: what a task's read-out is, its loss and its held-out score.

`MemoryModel` is one recurrent layer and a `Linear` read-out. It reads the last step for the adding
problem and delayed recall, and every step for the copy task and the flip-flop. `TASK_SPECS` says,
per task, how a batch is made for a gap T, the input and output widths, and whether the score is an
MSE or an accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers.base import Module
from .memory_tasks import TASKS, MemoryBatch


# -- the tasks as read-out and score ------------------------------------------------------------------
@dataclass(frozen=True)
class TaskSpec:
    """How a memory task is read out and scored. `make(B, T, rng, cfg, dtype)` -> MemoryBatch."""
    name: str
    metric: str              # "mse" (lower is better) or "accuracy"
    gap: str                 # what T means for this task
    make: object
    input_size: object       # cfg -> D
    n_out: object            # cfg -> read-out width
    all_steps: bool          # read out every step (copy) or only the last (adding, recall)


TASK_SPECS = {
    "adding": TaskSpec("adding", "mse", "sequence length",
                       lambda B, T, rng, cfg, dtype: TASKS["adding"](B, length=T, rng=rng, dtype=dtype),
                       lambda cfg: 2, lambda cfg: 1, False),
    "copy": TaskSpec("copy", "accuracy", "blank steps between the symbols and the delimiter",
                     lambda B, T, rng, cfg, dtype: TASKS["copy"](B, length=cfg.copy_length, delay=T,
                                                                  n_symbols=cfg.n_symbols, rng=rng, dtype=dtype),
                     lambda cfg: cfg.n_symbols + 2, lambda cfg: cfg.n_symbols + 1, True),
    "recall": TaskSpec("recall", "accuracy", "distractor steps between the symbol and the recall cue",
                       lambda B, T, rng, cfg, dtype: TASKS["recall"](B, delay=T, n_symbols=cfg.n_symbols,
                                                                     rng=rng, dtype=dtype),
                       lambda cfg: cfg.n_symbols + 2, lambda cfg: cfg.n_symbols, False),
    # not a reach task (no gap): the fixed-point example of Sussillo & Barak (2013), MSE at every step
    "flipflop": TaskSpec("flipflop", "mse", "sequence length",
                         lambda B, T, rng, cfg, dtype: TASKS["flipflop"](B, length=T, bits=cfg.bits,
                                                                         rng=rng, dtype=dtype),
                         lambda cfg: cfg.bits, lambda cfg: cfg.bits, True),
}

ADDING_TRIVIAL_MSE = 1.0 / 6.0   # always predicting E[y] = 1: Var(u1 + u2) = 2/12 for u ~ U[0, 1)


def CELL_CLASSES() -> dict:
    from .. import GRU, LSTM, RNN
    return {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class MemoryModel(Module):
    """Recurrent layer + `Linear` read-out: of the last step (adding, recall) or of every step (copy)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, n_classes: int, seed=None,
                 dtype=np.float32, task: str = "recall", **cell_kwargs):
        super().__init__()
        from ..layers import Linear
        cls = CELL_CLASSES().get(cell)
        if cls is None:
            raise ValueError(f"cell must be one of {sorted(CELL_CLASSES())}, got {cell!r}")
        if task not in TASK_SPECS:
            raise ValueError(f"task must be one of {sorted(TASK_SPECS)}, got {task!r}")
        self.cell, self.task = cell, task
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

    def _read(self, out):
        """out (T, B, H) -> (T, B, C) for a per-step task, (B, C) otherwise."""
        if TASK_SPECS[self.task].all_steps:
            T, B, H = out.shape
            return self.head.forward(out.reshape(T * B, H)).reshape(T, B, -1)   # (T, B, C)
        return self.head.forward(out[-1])                                      # (B, C)

    def forward(self, x):
        out, _ = self.rnn.forward(x)
        return self._read(out)

    def _loss(self, pred, batch: MemoryBatch):
        from ..losses import mse, softmax_cross_entropy
        if self.task == "adding":
            return mse(pred[:, 0], batch.y)
        if self.task == "flipflop":
            return mse(pred, batch.y)
        return softmax_cross_entropy(pred, batch.y, mask=batch.mask)

    def loss_and_backward(self, batch: MemoryBatch) -> float:
        """The task's loss (MSE for adding, cross-entropy on the scored steps otherwise); fills `grads`."""
        out, _ = self.rnn.forward(batch.x)
        pred = self._read(out)
        with np.errstate(all="ignore"):
            loss, dpred = self._loss(pred, batch)
        if not np.isfinite(loss):
            # diverged forward pass (e.g. an exploding relu RNN): no backward through NaN; the
            # Trainer sees the non-finite loss, skips the step and restores the last good weights
            return float(loss)
        if self.task == "adding":
            dpred = dpred[:, None]
        dout = np.zeros_like(out)
        if TASK_SPECS[self.task].all_steps:
            T, B, H = out.shape
            dout[...] = self.head.backward(dpred.reshape(T * B, -1)).reshape(T, B, H)
        else:
            dout[-1] = self.head.backward(dpred)
        self.rnn.backward(dout)
        return float(loss)

    def score(self, batch: MemoryBatch, chunk: int = 256) -> float:
        """Held-out figure of the task: MSE (adding, flipflop) or accuracy over the scored steps.

        Scored `chunk` sequences at a time: the forward pass keeps its activations for a backward, and
        1,000 sequences of T = 1000 at once would hold about a gigabyte."""
        total = count = 0.0
        for b0 in range(0, batch.x.shape[1], chunk):
            sl = slice(b0, b0 + chunk)
            with np.errstate(all="ignore"):
                pred = self.forward(batch.x[:, sl]).astype(np.float64)
            if self.task == "adding":
                err = (pred[:, 0] - batch.y[sl]) ** 2
            elif self.task == "flipflop":
                err = (pred - batch.y[:, sl]) ** 2
            else:
                hit = pred.argmax(-1) == batch.y[..., sl]
                err = hit[batch.mask[:, sl]] if batch.mask is not None else hit
            total += float(err.sum())
            count += err.size
        return total / count
