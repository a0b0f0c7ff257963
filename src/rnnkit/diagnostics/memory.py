"""Memory reach, measured: how long a gap each cell bridges on the adding, copy and delayed-recall tasks.

For each cell one `MemoryModel` (one recurrent layer, a `Linear` read-out) is trained by the library's
`Trainer` through a curriculum over the gap T (Bengio et al. 2009, "Curriculum learning"): it trains
at the shortest T until the task is *solved* on held-out sequences, then carries its weights to the
next T, and so on until a T is not solved within the cell's share of the time budget. The longest T
solved is the cell's measured reach under that budget (a failure means "not within this budget").

Solved means, per task (the criteria of the papers the tasks come from):
- **adding** (Hochreiter & Schmidhuber 1997), T = sequence length: test MSE < `threshold` x the
  trivial predictor's (always 1.0, MSE 1/6); default threshold 0.01;
- **copy** (Arjovsky et al. 2016), T = blank steps between the symbols and the delimiter: accuracy
  over the copied symbols >= `threshold` (default 0.9; chance 1/n_symbols);
- **recall** (delayed recall), T = distractor steps between the symbol and the cue: accuracy >=
  `threshold` (default 0.9; chance 1/n_symbols).

What is known to make long gaps learnable is applied per cell and saved in the result (`CELL_RECIPES`):
forget-gate bias 1 for the LSTM (Gers et al. 2000; Jozefowicz et al. 2015), orthogonal recurrent
weights (Saxe et al. 2014; Arjovsky et al. 2016), a learning rate per cell, global-norm clipping.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from ..errors import UserError
from .exploding import suggest_clip_threshold
from .memory_model import ADDING_TRIVIAL_MSE, CELL_CLASSES, TASK_SPECS, MemoryModel, TaskSpec  # noqa: F401


# -- what is known to work, per cell ------------------------------------------------------------------
# lr: Adam step size; kwargs go to the layer. Each entry is printed and saved in memory.json.
CELL_RECIPES = {
    "rnn": {"lr": 1e-3, "kwargs": {"nonlinearity": "tanh", "init": "orthogonal"},
            "why": "tanh RNN, orthogonal W_hh (eigenvalues on the unit circle at the start), lr 1e-3"},
    "lstm": {"lr": 3e-3, "kwargs": {"forget_bias": 1.0, "init": "orthogonal"},
             "why": "forget-gate bias 1 (remember by default), orthogonal W_hh blocks, lr 3e-3"},
    "gru": {"lr": 3e-3, "kwargs": {"init": "orthogonal"},
            "why": "orthogonal W_hh blocks, lr 3e-3"},
}


@dataclass
class MemoryConfig:
    task: str = "adding"        # adding | copy | recall
    hidden: int = 32            # hidden units per cell
    batch_size: int = 32
    n_symbols: int = 8          # copy/recall: symbols to remember (chance 1/n_symbols)
    copy_length: int = 5        # copy: symbols to copy
    bits: int = 3               # flipflop: memories held
    optimizer: str = "adam"     # any of rnnkit.optim's optimisers
    lr: float | None = None     # None: the cell's CELL_RECIPES learning rate
    clip: float | None = 1.0    # global-norm gradient clipping (None: off)
    radius: float | None = None  # rescale W_hh blocks to this spectral radius at init (None: the recipe's init)
    nonlinearity: str = "tanh"  # plain RNN only: tanh or relu
    threshold: float | None = None  # adding: MSE fraction of the trivial one (0.01); else accuracy (0.9)
    eval_every: int = 50        # steps between checks of the validation set
    n_val: int = 512            # validation sequences (the early-stopping check)
    n_eval: int = 1000          # test sequences (the reported figure; another seed)
    max_steps: int | None = None  # cap on optimiser steps per curriculum stage (None: the time budget only)
    blas_threads: int | None = 1  # NumPy BLAS threads while training (None: as they are); see run_memory
    seed: int = 0

    def __post_init__(self):
        if self.task not in TASK_SPECS:
            raise UserError(f"--task must be one of {', '.join(sorted(TASK_SPECS))}, got {self.task!r}")
        # flipflop: solved is test MSE < threshold x 1 (the MSE of always answering 0)
        if self.threshold is None:
            self.threshold = 0.01 if self.task == "adding" else 0.9

    def solved(self, value: float) -> bool:
        if self.task == "flipflop":
            return bool(value < self.threshold)
        if TASK_SPECS[self.task].metric == "mse":
            return bool(value < self.threshold * ADDING_TRIVIAL_MSE)
        return bool(value >= self.threshold)


@dataclass
class StageRun:
    """One curriculum stage: a cell trained at one gap T."""
    T: int
    score: float                 # test MSE or accuracy at the end of the stage
    solved: bool
    steps: int
    seconds: float
    final_loss: float | None
    nonfinite_steps: int = 0
    diverged: str | None = None
    losses: list = field(default_factory=list)
    grad_norms: list = field(default_factory=list)   # pre-clipping global norm per step (Trainer log)


def recipe(cell: str, cfg: MemoryConfig) -> dict:
    """The layer arguments and learning rate used for `cell` under `cfg` (what memory.json records)."""
    r = CELL_RECIPES[cell]
    kw = dict(r["kwargs"])
    if cell == "rnn":
        kw["nonlinearity"] = cfg.nonlinearity
    return {"lr": cfg.lr if cfg.lr is not None else r["lr"], "kwargs": kw, "why": r["why"]}


def build_model(cell: str, cfg: MemoryConfig) -> MemoryModel:
    spec = TASK_SPECS[cfg.task]
    model = MemoryModel(cell, spec.input_size(cfg), cfg.hidden, spec.n_out(cfg), seed=cfg.seed,
                        task=cfg.task, **recipe(cell, cfg)["kwargs"])
    if cfg.radius is not None:
        model.scale_recurrent(cfg.radius)
    return model


def train_stage(model: MemoryModel, T: int, budget_s: float, cfg: MemoryConfig, lr: float,
                out_dir=None, max_steps: int | None = None) -> StageRun:
    """Train `model` at gap T until solved on the validation set (checked every `eval_every` steps)
    or `budget_s` seconds have passed; score it on the test set."""
    from ..train import TrainConfig, Trainer
    spec = TASK_SPECS[cfg.task]
    val = spec.make(cfg.n_val, T, 20_000 + cfg.seed, cfg, model.rnn.dtype)
    tcfg = TrainConfig(time_budget=float(budget_s), steps=max_steps, lr=lr, optimizer=cfg.optimizer,
                       clip=cfg.clip, seed=cfg.seed + T, progress=False, eval_every=cfg.eval_every)
    meta = {"config": {"task": "memory", "memory_task": cfg.task, "cell": model.cell, "hidden": cfg.hidden,
                       "n_symbols": cfg.n_symbols, "copy_length": cfg.copy_length, "bits": cfg.bits,
                       "T": int(T),
                       "delay": int(T), "seed": cfg.seed}}
    trainer = Trainer(model, tcfg, out_dir=out_dir, meta=meta)

    def batches(epoch, rng):
        for _ in range(100):
            yield spec.make(cfg.batch_size, T, rng, cfg, model.rnn.dtype)

    def step(batch):
        return model.loss_and_backward(batch), cfg.batch_size

    def check():
        # early stopping on *solved*, not on a plateau: the Trainer's stop flag is set from here
        v = model.score(val)
        if cfg.solved(v):
            trainer.stopped_early = True
        return v if spec.metric == "mse" else 1.0 - v

    t0 = time.perf_counter()
    diverged = None
    test = spec.make(cfg.n_eval, T, 10_000 + cfg.seed, cfg, model.rnn.dtype)
    while True:
        try:
            trainer.fit(batches, step, eval_fn=check)
        except UserError as e:        # the Trainer gives up after repeated non-finite steps
            diverged = str(e)
        score = model.score(test)
        # the validation set said solved but the test set does not: train on (the budget decides)
        if diverged or cfg.solved(score) or not trainer.stopped_early:
            break
        trainer.stopped_early = False
        if trainer.finished():        # the budget ended at the very check that stopped it
            break
    seconds = time.perf_counter() - t0
    losses = trainer.history["loss"]
    return StageRun(int(T), score, cfg.solved(score), trainer.step, round(seconds, 2),
                    float(losses[-1]) if losses else None, trainer.nonfinite_total, diverged, list(losses),
                    list(trainer.history["grad_norm"]))


def curriculum(cell: str, lengths, budget_s: float, cfg: MemoryConfig, out_dir=None,
               progress=print) -> tuple[MemoryModel, list[StageRun], dict]:
    """Train one cell through the gaps in `lengths` (ascending) within `budget_s` seconds in all.

    Returns (the model, one StageRun per stage trained, the test score at every T in `lengths` of
    the final model: beyond the reach too, so the curve shows how it fails)."""
    rec = recipe(cell, cfg)
    model = build_model(cell, cfg)
    t_end = time.perf_counter() + float(budget_s)
    stages = []
    for T in sorted(lengths):
        left = t_end - time.perf_counter()
        if left <= 0:
            break
        run = train_stage(model, T, left, cfg, rec["lr"], out_dir=out_dir, max_steps=cfg.max_steps)
        stages.append(run)
        progress(f"{cell:5s} T={T:5d}: {TASK_SPECS[cfg.task].metric} {run.score:.4g} "
                 f"({'solved' if run.solved else 'not solved'}, {run.steps} steps, {run.seconds:.1f}s"
                 + (f", {run.nonfinite_steps} non-finite steps skipped" if run.nonfinite_steps else "")
                 + (", training diverged" if run.diverged else "") + ")")
        if not run.solved:
            break
    spec = TASK_SPECS[cfg.task]
    model.eval()
    final = {int(T): model.score(spec.make(cfg.n_eval, T, 10_000 + cfg.seed, cfg, model.rnn.dtype))
             for T in sorted(lengths)}
    return model, stages, final


def run_memory(cells, lengths, budget_s: float, cfg: MemoryConfig | None = None, out_dir=None,
               progress=print) -> tuple[dict, dict, dict]:
    """Every cell through the curriculum, the budget split equally between the cells.

    Returns (the memory.json content, {cell: trained model}, {cell: its StageRuns with their
    per-step loss and gradient-norm logs})."""
    cfg = cfg or MemoryConfig()
    with blas_threads(cfg.blas_threads, progress):
        return _run_memory(cells, lengths, budget_s, cfg, out_dir, progress)


def blas_threads(n: int | None, progress=print):
    """A context that limits NumPy's BLAS to n threads and restores it after (threadpoolctl).

    Why: at these sizes (B = 32, H = 32) a product per step is tiny, and on a busy machine a
    multi-threaded BLAS was 10-40x slower per step (docs/vanishing_exploding.md): one thread makes
    the budget buy the steps it should."""
    import contextlib
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        progress("threadpoolctl is not installed: NumPy's BLAS threads left as they are "
                 "(pip install threadpoolctl, or set OPENBLAS_NUM_THREADS=1)")
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(n), user_api="blas")


def _run_memory(cells, lengths, budget_s, cfg, out_dir, progress):
    share = float(budget_s) / len(cells)
    spec = TASK_SPECS[cfg.task]
    results, models, runs = {}, {}, {}
    for cell in cells:
        rec = recipe(cell, cfg)
        progress(f"{cell}: {rec['why']}; lr {rec['lr']:g}, layer arguments {rec['kwargs']}")
        sub = None if out_dir is None else f"{out_dir}/{cell}"
        model, stages, final = curriculum(cell, lengths, share, cfg, out_dir=sub, progress=progress)
        models[cell], runs[cell] = model, stages
        solved = [s.T for s in stages if s.solved]
        results[cell] = {
            "longest_solved": max(solved) if solved else None,
            "recipe": {"lr": rec["lr"], "layer": rec["kwargs"], "why": rec["why"]},
            "stages": [{k: v for k, v in asdict(s).items() if k not in ("losses", "grad_norms")}
                       for s in stages],
            # pre-clipping gradient norms logged by the Trainer: explosions and the suggested clip
            "gradient_norms": {str(s.T): asdict(suggest_clip_threshold(s.grad_norms))
                               for s in stages if s.grad_norms},
            "final_score": {str(T): v for T, v in final.items()},
            "seconds": round(sum(s.seconds for s in stages), 2),
        }
    trivial = ADDING_TRIVIAL_MSE if spec.metric == "mse" else 1.0 / cfg.n_symbols
    return {"task": cfg.task, "gap": spec.gap, "metric": spec.metric, "threshold": cfg.threshold,
            "solved_if": (f"test MSE < {cfg.threshold} x {ADDING_TRIVIAL_MSE:.4f} (the trivial predictor's)"
                          if spec.metric == "mse" else f"test accuracy >= {cfg.threshold}"),
            "trivial": trivial, "budget_s": float(budget_s), "budget_per_cell_s": share,
            "lengths": [int(T) for T in sorted(lengths)], "config": asdict(cfg), "cells": results}, models, runs
