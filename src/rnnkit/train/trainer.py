"""The training loop: budgets, progress bar, validation, early stopping, non-finite recovery, checkpoints.

The loop is model-agnostic. The task supplies three functions:
    train_batches(epoch, rng) -> iterable of batches   (deterministic given epoch and rng state)
    train_step(batch) -> (loss: float, n_items: int)   (forward + backward, filling model.grads)
    eval_fn() -> float                                 (validation loss, optional)
and optionally `extra_state`, an object with `state_dict() -> {name: array}` and `load_state_dict(d)` for
state that lives between batches (the hidden state carried by truncated BPTT), so it is checkpointed too.

One step: lr = schedule(step) * lr_scale (* the plateau factor with `schedule="plateau"`);
loss = train_step(batch); norm = clip(grads); if loss or norm is not finite, the step is skipped, the
weights, optimiser state and extra state go back to the last ones that gave a finite loss and gradient,
lr_scale is multiplied by `nonfinite_lr_factor`, and the user is told; otherwise the optimiser updates
the weights.

Resuming: a checkpoint holds the weights, optimiser state, counters, the RNG state at the start of the
current epoch and the index of the next batch within it. `resume` replays `train_batches` for that epoch
from the saved RNG state and skips the batches already used, so a resumed run takes exactly the steps
the uninterrupted run would have taken (the RNG is for batch generation only). The model's own
generators (dropout masks: `Module.random_state_dict()`) are saved with the counters and put back, so
the resumed steps also draw the masks the uninterrupted run drew.

Averaging (`averaging="nt"`, NT-ASGD, `rnnkit.optim.averaging`): once triggered, validation runs on the
running average of the iterates, and the average is what the model holds after `fit` and what checkpoints
save as "model"; the last iterate, from which training goes on, is saved beside it as "iterate".
"""
from __future__ import annotations

import copy
import math
from contextlib import nullcontext
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..kernels._threads import when_oversubscribed
from ..optim import (PlateauState, Schedule, average_update, clip_grad_norm, clip_grad_value, global_norm,
                     make_optimizer, nt_trigger, plateau_update)
from .checkpoint import checkpoint_content, checkpoint_dir, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .hooks import TrainerHook, active_hooks


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGINT) during `fit`: handled as Ctrl-C is (checkpoint, then stop); `signum` gives the
    exit status 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopSignals:
    """While `fit` runs: SIGTERM and SIGINT raise `Terminated`, but not in the middle of a checkpoint save
    (they are held until it is complete). The previous handlers are put back on exit; outside the main
    thread (where Python allows no handlers) nothing is changed."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.saving = False
        self.pending: int | None = None
        self.previous: dict = {}

    def _handle(self, signum, frame):
        if self.saving:
            self.pending = signum
        else:
            raise Terminated(signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self.previous.items():
            signal.signal(s, h)
        self.previous = {}
        return False

    def save(self, fn):
        """Run fn() with the signals held; a signal that came meanwhile is raised after it."""
        self.saving = True
        try:
            return fn()
        finally:
            self.saving = False
            if self.pending is not None and self.previous:
                signum, self.pending = self.pending, None
                raise Terminated(signum)


def _pairs_directions(module) -> bool:
    """True when `module` or a module inside it is a bidirectional recurrent layer whose backend can run
    its two directions side by side (`can_pair`)."""
    if getattr(module, "num_directions", 1) == 2 and isinstance(getattr(module, "backend", None), str):
        from .. import backends
        if backends.get(module.backend).can_pair():
            return True
    children = getattr(module, "children", None)
    return callable(children) and any(_pairs_directions(m) for _, m in children())


class Trainer:
    """`Trainer(model, config, out_dir=None, meta=None)`; `fit(...)` trains, `resume(dir)` restores.

    `meta` is a dict of JSON-serialisable objects saved beside the weights in every checkpoint (file stem
    -> object), e.g. {"config": model and data settings, "vocab": the vocabulary}. Checkpoints go to
    `out_dir/checkpoint` when `out_dir` is given. `hooks` (see `rnnkit.train.hooks`) shard batches,
    reduce gradients across processes and see validation losses; those of an enclosing
    `trainer_hooks(...)` block are added after them.
    """

    # Each training step runs NumPy's BLAS on one thread while other processes fill the cores
    # (`kernels._threads.when_oversubscribed`, restored after the step; process-wide, as OpenBLAS's
    # count is): two threads then wait on a descheduled partner at every small product (the main job
    # kept 0.64-0.69x of its idle speed beside a busy process or a torch job, 0.18-0.38x before).
    # False leaves NumPy's count alone, e.g. while other threads of the program use BLAS meanwhile.
    one_thread_when_busy = True
    # Each training step of a model with a bidirectional recurrent layer whose backend can run the two
    # directions at once (`kernels._parallel`) runs NumPy's BLAS on one thread (restored after), so the
    # layer runs its directions side by side, one core each, without changing anything itself (a
    # layer call never does): 1.25-1.35x for the 2-layer B32 H128 layer idle, as recorded before
    # issue 17, and 1.08-1.47x at load 9-13 against one after the other on one thread (docs/
    # performance_log.md). False: NumPy's count is left alone unless `one_thread_when_busy` (set both
    # False to leave it alone always).
    side_by_side = True

    def _step_threads(self):
        """The BLAS thread count of one training step (`side_by_side`, `one_thread_when_busy`)."""
        if self.side_by_side and self._pairs:
            from ..kernels._threads import one_thread
            return one_thread()
        return when_oversubscribed() if self.one_thread_when_busy else nullcontext()

    def __init__(self, model, config: TrainConfig | None = None, out_dir=None, meta: dict | None = None,
                 hooks=()):
        self.model = model
        self.hooks: list[TrainerHook] = [*hooks, *active_hooks()]
        self.config = config if config is not None else TrainConfig()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.meta = dict(meta or {})
        c = self.config
        opt_kw = {"weight_decay": c.weight_decay}
        if c.optimizer in ("sgd", "rmsprop"):
            opt_kw["momentum"] = c.momentum
        self.optimizer = make_optimizer(c.optimizer, c.lr, **opt_kw)
        self.schedule = Schedule(c.lr, c.schedule, c.warmup_steps, c.steps, c.lr_step_size, c.lr_gamma,
                                 c.min_lr_factor)
        self.rng = np.random.default_rng(c.seed)
        # counters and logs (all saved in checkpoints)
        self.step = 0                 # optimiser steps taken
        self.epoch = 0                # current epoch (0-based)
        self.batch_in_epoch = 0       # batches of the current epoch already consumed
        self.epoch_rng_state = None   # RNG state when the current epoch's batches were generated
        self.elapsed = 0.0            # seconds of training so far
        self.items = 0                # items (e.g. tokens) trained on
        self.lr_scale = 1.0           # lowered by non-finite recovery
        self.plateau = PlateauState()  # the plateau schedule's memory of validation losses
        self.nonfinite_total = 0
        self.history: dict[str, list] = {"step": [], "loss": [], "grad_norm": [], "lr": [],
                                         "val_step": [], "val_loss": []}
        self.best_val, self.best_step, self.bad_evals = math.inf, -1, 0
        self.stopped_early = False
        self._pending_extra = None
        self._snapshot = None
        self._best_params = None
        self.avg: dict | None = None  # running average of the iterates, once averaging has started
        self.avg_n = 0                # iterates in it
        self.avg_start: int | None = None  # the step averaging started at
        self._iterate = None          # after fit with averaging: the last iterate (the model holds avg)
        self._t0 = None               # perf_counter at the start of the current fit
        self._signals = None          # the _StopSignals of the current fit
        self._last_save = None        # perf_counter of the last checkpoint of the current fit
        self._resumed_from = None     # the checkpoint folder `resume` read (for messages)
        # name -> f(loss): shown on the progress bar beside the loss and the validation loss, e.g.
        # {"ppl": math.exp} for a word-level language model's perplexity
        self.bar_metrics: dict = {}

    # -- stopping ----------------------------------------------------------------------------------
    def _time(self) -> float:
        return self.elapsed if self._t0 is None else self.elapsed + (time.perf_counter() - self._t0)

    def finished(self) -> bool:
        c = self.config
        return (self.stopped_early
                or (c.steps is not None and self.step >= c.steps)
                or (c.epochs is not None and self.epoch >= c.epochs)
                or (c.time_budget is not None and self._time_is_up()))

    def _time_is_up(self) -> bool:
        # processes training together must stop at the same step: a hook may decide for the clock
        for h in self.hooks:
            up = h.time_is_up(self)
            if up is not None:
                return up
        return self._time() >= self.config.time_budget

    # -- snapshots for non-finite recovery ---------------------------------------------------------
    def _take_snapshot(self, extra_state):
        snap = self._snapshot = self._snapshot or {}
        snap["params"] = _copy_into(snap.get("params"), self.model.params)
        old_opt = snap.get("opt") or {}
        snap["opt"] = {n: _copy_into(old_opt.get(n), st) for n, st in self.optimizer.state.items()}
        snap["opt_t"] = self.optimizer.t
        snap["extra"] = ({k: np.array(v, copy=True) for k, v in extra_state.state_dict().items()}
                         if extra_state is not None else None)
        snap["step"] = self.step

    def _recover(self, loss, norm, extra_state, bar):
        c = self.config
        self.nonfinite_total += 1
        self._consecutive_bad += 1
        self.lr_scale *= c.nonfinite_lr_factor
        where = "no earlier good step; weights unchanged"
        if self._snapshot is not None:
            self.model.load_state_dict(self._snapshot["params"])
            self.optimizer.state = {n: {k: v.copy() for k, v in st.items()}
                                    for n, st in self._snapshot["opt"].items()}
            self.optimizer.t = self._snapshot["opt_t"]
            if extra_state is not None and self._snapshot["extra"] is not None:
                extra_state.load_state_dict(self._snapshot["extra"])
            where = f"weights restored from step {self._snapshot['step']}"
        msg = (f"rnnkit: step {self.step + 1}: non-finite loss or gradient (loss={loss:.4g}, "
               f"grad norm={norm:.4g}); step skipped, {where}, learning rate lowered to "
               f"{self.schedule(self.step) * self.lr_scale * self.plateau.factor:.3g}")
        (bar.write if bar is not None else print)(msg, file=sys.stderr)
        if self._consecutive_bad > c.max_nonfinite:
            raise UserError(f"training diverged: {self._consecutive_bad} non-finite steps in a row; "
                            "try a lower --lr or a smaller --clip")

    # -- one step ----------------------------------------------------------------------------------
    def _train_one(self, batch, train_step, extra_state, bar) -> bool:
        c = self.config
        lr = self.schedule(self.step) * self.lr_scale * self.plateau.factor
        self.optimizer.lr = lr
        for h in self.hooks:
            batch = h.shard(batch)
        loss, n_items = train_step(batch)
        for h in self.hooks:
            loss, n_items = h.reduce(self, loss, n_items)
        loss = float(loss)
        grads = self.model.grads
        norm = clip_grad_norm(grads, c.clip) if c.clip else global_norm(grads)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self._recover(loss, norm, extra_state, bar)
            return False
        self._consecutive_bad = 0
        self._take_snapshot(extra_state)
        if c.clip_value:
            clip_grad_value(grads, c.clip_value)
        self.optimizer.step(self.model.params, grads)
        if self.avg is not None:
            self.avg_n += 1
            average_update(self.avg, self.model.params, self.avg_n)
        self.step += 1
        self.items += int(n_items)
        h = self.history
        h["step"].append(self.step)
        h["loss"].append(loss)
        h["grad_norm"].append(norm)
        h["lr"].append(lr)
        return True

    def _evaluate(self, eval_fn, final: bool = False):
        hist, c = self.history, self.config
        # the scheduled validations only: the extra one at the end of a stopped run is not in the
        # uninterrupted run's history, so a resumed run would start averaging at another step
        prev = [v for s, v in zip(hist["val_step"], hist["val_loss"]) if c.eval_every and s % c.eval_every == 0]
        val = float(self._with_average(eval_fn) if self.avg is not None else eval_fn())
        hist["val_step"].append(self.step)
        hist["val_loss"].append(val)
        # not the extra validation at the end of a run: a run stopped and resumed would then lower its
        # lr at other steps than the same run uninterrupted
        if c.schedule == "plateau" and not final:
            self.plateau = plateau_update(self.plateau, val, c.plateau_patience, c.lr_gamma,
                                          c.plateau_threshold, c.min_lr_factor)
        if val < self.best_val:
            self.best_val, self.best_step, self.bad_evals = val, self.step, 0
            if self.config.patience is not None:
                self._best_params = ({k: v.copy() for k, v in self.avg.items()} if self.avg is not None
                                     else self.model.state_dict())
        else:
            self.bad_evals += 1
            if self.config.patience is not None and self.bad_evals >= self.config.patience and not final:
                self.stopped_early = True
        if c.averaging == "nt" and self.avg is None and not final and nt_trigger(prev, val, c.nonmono):
            self.avg = {k: v.copy() for k, v in self.model.params.items()}
            self.avg_n, self.avg_start = 0, self.step
        for h in self.hooks:
            h.on_evaluate(self, val)
        return val

    def _with_average(self, fn):
        """fn() with the model holding the averaged weights; the iterate is put back afterwards."""
        iterate = self.model.state_dict()
        self.model.load_state_dict(self.avg)
        try:
            return fn()
        finally:
            self.model.load_state_dict(iterate)

    # -- the loop ----------------------------------------------------------------------------------
    def fit(self, train_batches, train_step, eval_fn=None, extra_state=None) -> "Trainer":
        """Train until the step, epoch or time budget is used up (or early stopping). Returns self."""
        with _StopSignals() as self._signals:
            try:
                return self._fit(train_batches, train_step, eval_fn, extra_state)
            finally:
                self._signals = None

    def _checkpoint_due(self) -> bool:
        c = self.config
        if self.out_dir is None:
            return False
        return bool((c.checkpoint_every and self.step % c.checkpoint_every == 0)
                    or (c.checkpoint_seconds and time.perf_counter() - self._last_save >= c.checkpoint_seconds))

    def _fit(self, train_batches, train_step, eval_fn, extra_state) -> "Trainer":
        c = self.config
        self._t0 = self._last_save = time.perf_counter()
        if self._iterate is not None:        # fit again after an averaged fit: train on from the iterate
            self.model.load_state_dict(self._iterate)
            self._iterate = None
        self._consecutive_bad = 0
        self._pairs = _pairs_directions(self.model)    # the model's layers are fixed for the fit: once
        if self.step == 0 and self._resumed_from is None:
            for h in self.hooks:
                h.on_fresh_start(self)
        bar = self._make_bar()
        last_eval_step = self.history["val_step"][-1] if self.history["val_step"] else None
        try:
            while not self.finished():
                if self.batch_in_epoch == 0 or self.epoch_rng_state is None:
                    self.epoch_rng_state = copy.deepcopy(self.rng.bit_generator.state)
                else:  # resuming inside an epoch: regenerate it and skip what was used
                    self.rng.bit_generator.state = copy.deepcopy(self.epoch_rng_state)
                it = iter(train_batches(self.epoch, self.rng))
                for _ in range(self.batch_in_epoch):
                    next(it, None)
                if self._pending_extra is not None and extra_state is not None:
                    with checkpoint_content(self._resumed_from):
                        extra_state.load_state_dict(self._pending_extra)
                self._pending_extra = None
                n_batches = 0
                exhausted = True
                for batch in it:
                    n_batches += 1
                    with self._step_threads():
                        self._train_one(batch, train_step, extra_state, bar)
                    self.batch_in_epoch += 1
                    if eval_fn is not None and c.eval_every and self.step % c.eval_every == 0 \
                            and self.step != last_eval_step:
                        self._evaluate(eval_fn)
                        last_eval_step = self.step
                    if self._checkpoint_due():
                        self.save(extra_state=extra_state)
                    self._update_bar(bar)
                    if self.finished():
                        exhausted = False
                        break
                if exhausted:
                    if n_batches == 0 and self.batch_in_epoch == 0:
                        raise UserError("the training data gives no batches (is it shorter than one batch?)")
                    self.epoch += 1
                    self.batch_in_epoch = 0
            if eval_fn is not None and self.step != last_eval_step and not self.stopped_early:
                self._evaluate(eval_fn, final=True)  # the run has ended anyway: no early stop
            if self.stopped_early and self._best_params is not None:
                self.model.load_state_dict(self._best_params)
                self.avg = None              # the run is over: the best weights are the model
            elif self.avg is not None:
                self._iterate = self.model.state_dict()
                self.model.load_state_dict(self.avg)
        except KeyboardInterrupt as e:
            self.elapsed, self._t0 = self._time(), None
            if self.out_dir is not None:
                self.save(extra_state=extra_state)
                term = isinstance(e, Terminated) and e.signum != signal.SIGINT
                how = f"stopped by {e.args[0]}" if term else "interrupted"
                print(f"\nrnnkit: {how} at step {self.step}; checkpoint saved to "
                      f"{self.out_dir / 'checkpoint'} (continue with --resume {self.out_dir})", file=sys.stderr)
            raise
        finally:
            if bar is not None:
                self._update_bar(bar)
                bar.refresh()
                bar.close()
        self.elapsed, self._t0 = self._time(), None
        if self.out_dir is not None:
            self.save(extra_state=extra_state)
        return self

    # -- progress bar ------------------------------------------------------------------------------
    def _make_bar(self):
        if not self.config.progress:
            return None
        from tqdm.auto import tqdm

        c = self.config
        if c.steps is not None:
            return tqdm(total=c.steps, initial=self.step, unit="step")
        if c.time_budget is not None:
            return tqdm(total=round(c.time_budget), initial=min(round(self.elapsed), round(c.time_budget)),
                        unit="s",
                        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s [{elapsed}<{remaining}{postfix}]")
        return tqdm(total=c.epochs, initial=self.epoch, unit="epoch")

    def _update_bar(self, bar):
        if bar is None:
            return
        c = self.config
        if c.steps is not None:
            n = self.step
        elif c.time_budget is not None:
            n = min(self._time(), c.time_budget)
        else:
            n = self.epoch
        h = self.history
        post = {}
        if h["loss"]:
            k = min(20, len(h["loss"]))
            post["loss"] = f"{sum(h['loss'][-k:]) / k:.3f}"
            for name, f in self.bar_metrics.items():
                post[name] = f"{f(sum(h['loss'][-k:]) / k):.2f}"
            post["gnorm"] = f"{h['grad_norm'][-1]:.2f}"
        if h["val_loss"]:
            post["val"] = f"{h['val_loss'][-1]:.3f}"
            for name, f in self.bar_metrics.items():
                post[f"val_{name}"] = f"{f(h['val_loss'][-1]):.2f}"
        t = self._time()
        if t > 0:
            post["items/s"] = f"{self.items / t:,.0f}"
        post["step"] = self.step
        bar.set_postfix(post, refresh=False)
        bar.update(n - bar.n)  # tqdm redraws at most every `mininterval` seconds

    # -- checkpoints -------------------------------------------------------------------------------
    def _state_json(self) -> dict:
        o = self.optimizer
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "epoch_rng_state": self.epoch_rng_state, "rng_state": self.rng.bit_generator.state,
                "elapsed": self._time(), "items": self.items, "lr_scale": self.lr_scale,
                "nonfinite_total": self.nonfinite_total, "history": self.history,
                "best_val": None if math.isinf(self.best_val) else self.best_val, "best_step": self.best_step,
                "bad_evals": self.bad_evals, "stopped_early": self.stopped_early,
                "optimizer": {"type": type(o).__name__, "lr": o.lr, "t": o.t,
                              "hyper": {h: getattr(o, h) for h in o.hyper}},
                "model_random_state": self._model_random_state(),
                "averaging": None if self.avg is None and self._iterate is None else
                {"n": self.avg_n, "start_step": self.avg_start},
                "plateau": {"best": None if math.isinf(self.plateau.best) else self.plateau.best,
                            "bad": self.plateau.bad, "factor": self.plateau.factor},
                "train_config": self.config.to_dict()}

    def _model_random_state(self) -> dict | None:
        """The model's generators (`Module.random_state_dict`), or None for a model without any."""
        get = getattr(self.model, "random_state_dict", None)
        return get() if get is not None else None

    def save(self, path=None, extra_state=None) -> Path:
        """Write a checkpoint (default `out_dir/checkpoint`) atomically; returns its path."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("Trainer.save: no path given and no out_dir")
            path = self.out_dir / "checkpoint"
        opt_arrays = {f"{buf}/{name}": arr for name, st in self.optimizer.state.items() for buf, arr in st.items()}
        arrays = {"model": self.model.state_dict(), "optimizer": opt_arrays}
        if self._iterate is not None:        # after fit: the model holds the average
            arrays["iterate"] = self._iterate
        elif self.avg is not None:           # during fit: the model holds the iterate
            arrays["model"], arrays["iterate"] = self.avg, self.model.state_dict()
        if extra_state is not None:
            arrays["state"] = dict(extra_state.state_dict())
        jsons = dict(self.meta)
        jsons["trainer"] = self._state_json()
        for h in self.hooks:
            h.before_save(self, path)
        if self._signals is None:
            return save_checkpoint(path, arrays, jsons)
        try:
            return self._signals.save(lambda: save_checkpoint(path, arrays, jsons))
        finally:
            self._last_save = time.perf_counter()

    def resume(self, path, extra_state=None) -> "Trainer":
        """Restore weights, optimiser, counters and RNG from a checkpoint folder (or `out_dir` holding one).
        `extra_state` (the one `fit` will get) is checked against the saved one now, before training."""
        path = checkpoint_dir(path)
        arrays, jsons = load_checkpoint(path)
        if "trainer" not in jsons or "model" not in arrays:
            raise UserError(f"checkpoint {str(path)!r} has no training state to resume from")
        try:
            self.model.load_state_dict(arrays.get("iterate", arrays["model"]))
        except ValueError as e:
            raise UserError(f"checkpoint {str(path)!r} does not fit this model: {e}") from None
        with checkpoint_content(path):
            self._restore_state(jsons["trainer"], arrays.get("optimizer", {}), arrays)
        self._pending_extra = arrays.get("state")
        self._resumed_from = path
        if extra_state is not None and self._pending_extra is not None:
            with checkpoint_content(path):
                extra_state.load_state_dict(self._pending_extra)
        for k, v in jsons.items():  # what the caller passed (e.g. an updated config) wins
            if k != "trainer":
                self.meta.setdefault(k, v)
        return self

    # counters restored on resume, with the types a checkpoint must give them
    _COUNTERS = {"step": int, "epoch": int, "batch_in_epoch": int, "elapsed": (int, float), "items": int,
                 "lr_scale": (int, float), "nonfinite_total": int, "best_step": int, "bad_evals": int,
                 "stopped_early": bool, "history": dict}

    def _restore_state(self, s: dict, opt_arrays: dict, arrays: dict | None = None) -> None:
        """Counters, RNG and optimiser state from a checkpoint's trainer.json, each checked (a damaged or
        foreign file raises TypeError/ValueError/KeyError, which `checkpoint_content` reports)."""
        o = s["optimizer"]
        if o["type"] != type(self.optimizer).__name__:
            raise UserError(f"the checkpoint was trained with {o['type']}, not {type(self.optimizer).__name__}; "
                            "pass the same --optimizer")
        params = self.model.params
        state: dict[str, dict] = {}
        for key, arr in opt_arrays.items():
            buf, name = key.split("/", 1)
            if name not in params or arr.shape != params[name].shape:
                raise ValueError(f"optimizer state {key!r} {arr.shape} does not fit the model's parameter "
                                 f"{name!r} {params[name].shape if name in params else '(none of that name)'}")
            state.setdefault(name, {})[buf] = arr
        self.optimizer.load_state_dict({"type": o["type"], "lr": o["lr"], "t": o["t"], "hyper": o["hyper"],
                                        "state": state})
        for k, kind in self._COUNTERS.items():
            v = s[k]
            low = -1 if k == "best_step" else 0   # -1: no validation yet
            if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)) or \
                    (isinstance(v, (int, float)) and not isinstance(v, bool) and not (math.isfinite(v) and v >= low)):
                raise TypeError(f"trainer.json: {k} is {v!r}, not a valid {getattr(kind, '__name__', 'number')}")
        for k in self._COUNTERS:
            setattr(self, k, s[k])
        h = self.history
        if not {"step", "loss", "grad_norm", "lr", "val_step", "val_loss"} <= set(h) or \
                not all(isinstance(v, list) for v in h.values()):
            raise TypeError("trainer.json: history is not the trainer's")
        self.epoch_rng_state = s["epoch_rng_state"]
        self.best_val = math.inf if s["best_val"] is None else float(s["best_val"])
        self.rng.bit_generator.state = s["rng_state"]
        p = s.get("plateau")                          # absent in checkpoints written before it was saved
        if p is not None:
            best, bad, factor = p["best"], p["bad"], p["factor"]
            if not (best is None or isinstance(best, (int, float))) or not isinstance(bad, int) or \
                    not isinstance(factor, (int, float)) or not 0 <= factor <= 1 or bad < 0:
                raise TypeError(f"trainer.json: plateau is {p!r}, not the plateau schedule's state")
            self.plateau = PlateauState(math.inf if best is None else float(best), bad, float(factor))
        a = s.get("averaging")
        self.avg, self._iterate = None, None
        if a is not None:
            n, start = a["n"], a["start_step"]
            if not (isinstance(n, int) and n >= 0 and isinstance(start, int) and start >= 0) or \
                    arrays is None or "iterate" not in arrays:
                raise TypeError(f"trainer.json: averaging is {a!r} without the iterate it goes with")
            self.avg = {k: np.array(v, dtype=self.model.params[k].dtype)
                        for k, v in arrays["model"].items()}
            self.avg_n, self.avg_start = n, start
        model_rng = s.get("model_random_state")      # absent in checkpoints written before it was saved
        if model_rng is not None:
            if not hasattr(self.model, "load_random_state_dict"):
                raise ValueError("it holds random generator states this model has no place for")
            self.model.load_random_state_dict(model_rng)
        if self.epoch_rng_state is not None:  # checked now: it is only used at the next epoch's start
            probe = np.random.default_rng()
            probe.bit_generator.state = copy.deepcopy(self.epoch_rng_state)


def saved_train_config(run_dir) -> dict | None:
    """The `TrainConfig` (as a dict) saved in the checkpoint of `run_dir` (or the checkpoint folder
    itself), for `--resume` to keep the run's own settings; None when there is none."""
    _, jsons = load_checkpoint(checkpoint_dir(run_dir))
    saved = jsons.get("trainer", {}).get("train_config") if isinstance(jsons.get("trainer"), dict) else None
    return saved if isinstance(saved, dict) else None


def _copy_into(old: dict | None, arrays: dict) -> dict:
    """A copy of {key: array}, written into `old`'s arrays where shape and dtype match (a snapshot is
    taken every step: no new arrays once the first one is built)."""
    old = old or {}
    out = {}
    for k, v in arrays.items():
        keep = old.get(k)
        if isinstance(v, np.ndarray) and isinstance(keep, np.ndarray) and keep.shape == v.shape \
                and keep.dtype == v.dtype:
            np.copyto(keep, v)
            out[k] = keep
        else:
            out[k] = v.copy() if hasattr(v, "copy") else v
    return out
