"""Hyperparameter sweeps on Ray Tune: every trial is an ordinary `rnnkit TASK train` run.

A trial runs the task's own command in-process, `rnnkit TASK train FIXED... --<option> <sampled> ...
--out DIR/trials/<trial_id>`, so its folder is a normal run folder (metrics.json, checkpoint). The
Trainer reports each validation loss to Tune through a hook (`TuneReport`), which is what ASHA
(Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning") stops bad trials on. Tune
keeps its experiment state in DIR/tune; running the same sweep again restores it (`Tuner.restore`):
finished trials are kept and unfinished ones continue, from their own rnnkit checkpoint when they
saved one (`--checkpoint-every`). The table of all trials goes to DIR/results.csv, the best to
DIR/best.json.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shlex
from pathlib import Path

from ..errors import UserError
from ..train.hooks import TrainerHook, trainer_hooks
from .data_parallel import checkpoint_step
from .session import ray_session, require_ray
from .space import as_options, check_space, load_space, to_tune

METRIC = "val_loss"            # the Trainer's validation loss, the quantity minimised
SCHEDULERS = {"fifo": None, "asha": "asha"}
RESERVED = ("--out", "--resume", "--workers")  # set per trial, so not allowed among the fixed options


class TuneReport(TrainerHook):
    """Sends every validation loss of the Trainer to Ray Tune (which may stop the trial there)."""

    def __init__(self):
        self.last, self.step = None, None

    def on_evaluate(self, trainer, val_loss):
        from ray import tune

        self.last, self.step = float(val_loss), trainer.step
        tune.report({METRIC: self.last, "step": self.step})


def _command(task: str, fixed: list[str], config: dict, run_dir) -> list[str]:
    return [task, "train", *fixed, *as_options(config), "--out", str(run_dir), "--no-progress"]


def _run_trial(config, task, fixed, trials_dir, cwd):
    """One trial (runs in a Ray worker): the rnnkit command, resumed when its folder has a checkpoint.
    It runs in the sweep's working directory (Tune starts trials in their own), so relative paths among
    the fixed options mean what they meant on the command line."""
    from ray import tune

    from ..cli import main

    prev = os.getcwd()
    os.chdir(cwd)
    try:
        _trial_body(config, task, fixed, trials_dir, tune, main)
    finally:
        os.chdir(prev)


def _trial_body(config, task, fixed, trials_dir, tune, main):
    run_dir = Path(trials_dir) / tune.get_context().get_trial_id()
    argv = _command(task, fixed, config, run_dir)
    resumed = checkpoint_step(run_dir)        # a retry, or a restored sweep: continue where it stopped
    if resumed is not None:
        argv += ["--resume", str(run_dir)]
    hook = TuneReport()
    with trainer_hooks(hook):
        status = main(argv)
    if status != 0:
        raise RuntimeError(f"rnnkit {shlex.join(argv)} exited with status {status}")
    if hook.last is None:
        raise RuntimeError("the run reported no validation loss to rank trials by; give the task a "
                           "validation set (e.g. classify --validation-split 0.2)")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tune.report({**scalars, METRIC: hook.last, "step": hook.step, "finished": True, "resumed_from_step": resumed})


def _check_command(task: str, fixed: list[str], space: dict) -> None:
    """Parse one trial's command line now, so a bad fixed option fails before any trial starts."""
    from ..cli import COMMANDS, build_parser

    if task not in COMMANDS:
        raise UserError(f"unknown task {task!r}; choose one of {sorted(COMMANDS)}")
    bad = [a for a in fixed if a.split("=", 1)[0] in RESERVED]
    if bad:
        raise UserError(f"{bad[0]} is set by the sweep for every trial; remove it from the fixed options")
    sample = {name: arg[0] for name, (kind, arg) in space.items()}
    try:
        args = build_parser().parse_args(_command(task, fixed, sample, "x"))
    except SystemExit:
        raise UserError(f"the options are not valid for 'rnnkit {task} train' (see the message above)") from None
    if getattr(args, "action", None) != "train":
        raise UserError(f"'rnnkit {task}' has no train action to sweep")


def _rows(grid, trials_dir: Path) -> list[dict]:
    rows = []
    for r in grid:
        m = r.metrics or {}
        trial_id = m.get("trial_id", "")
        # a trial with no result yet was not run (or was cut short) when the sweep was interrupted
        status = "error" if r.error else ("finished" if m.get("finished") else
                                          "stopped early" if m.get(METRIC) is not None else "not run")
        val = m.get(METRIC)
        hist = r.metrics_dataframe
        best = float(hist[METRIC].min()) if hist is not None and METRIC in hist else val
        rows.append({"trial_id": trial_id, "status": status, METRIC: val, "best_val_loss": best,
                     "step": m.get("step"), "resumed_from_step": m.get("resumed_from_step"),
                     **{f"config/{k}": v for k, v in (r.config or {}).items()},
                     "run_dir": str(trials_dir / trial_id) if trial_id else ""})
    rows.sort(key=lambda row: (row[METRIC] is None or not math.isfinite(row[METRIC]),
                               row[METRIC] if row[METRIC] is not None else 0.0))
    return rows


def write_results(rows: list[dict], path: Path) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def sweep(task: str, fixed_args, space, trials: int, out, scheduler: str = "fifo", address: str | None = None,
          num_cpus: int | None = None, cpus_per_trial: float = 1, max_t: int = 100, log=print) -> dict:
    """Run (or resume) a sweep of `rnnkit TASK train FIXED_ARGS` over `space` (a dict or a .json/.toml
    path) with `trials` samples; returns {"rows": the results table, best first, "best": its row}."""
    require_ray()             # before anything is written
    space = load_space(space) if isinstance(space, (str, Path)) else check_space(space)
    fixed = [str(a) for a in fixed_args]
    if not isinstance(trials, int) or trials < 1:
        raise UserError(f"--trials must be a positive integer, got {trials!r}")
    if scheduler not in SCHEDULERS:
        raise UserError(f"--scheduler must be one of {list(SCHEDULERS)}, got {scheduler!r}")
    _check_command(task, fixed, space)
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    trials_dir = out / "trials"
    with ray_session(address, num_cpus):
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        trainable = tune.with_resources(
            tune.with_parameters(_run_trial, task=task, fixed=fixed, trials_dir=str(trials_dir),
                                 cwd=os.getcwd()),
            {"cpu": cpus_per_trial})
        exp = out / "tune"
        if tune.Tuner.can_restore(str(exp)):
            log(f"rnnkit sweep: resuming the sweep in {exp}")
            tuner = tune.Tuner.restore(str(exp), trainable, resume_unfinished=True, resume_errored=True)
        else:
            sched = ASHAScheduler(max_t=max_t, grace_period=1, reduction_factor=2) if scheduler == "asha" else None
            tuner = tune.Tuner(trainable, param_space=to_tune(space),
                               tune_config=tune.TuneConfig(metric=METRIC, mode="min", num_samples=trials,
                                                           scheduler=sched),
                               run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=1,
                                                         failure_config=tune.FailureConfig(max_failures=1)))
        grid = tuner.fit()
        rows = _rows(grid, trials_dir)
    write_results(rows, out / "results.csv")
    ok = [r for r in rows if r[METRIC] is not None and math.isfinite(r[METRIC])]
    unfinished = sum(r["status"] == "not run" for r in rows)
    if unfinished:
        log(f"rnnkit sweep: {unfinished} of {len(rows)} trials did not run to a result (interrupted?); "
            "run the same command again to resume")
    if not ok:
        raise UserError(f"no trial finished with a validation loss; see the errors above and {out / 'tune'}")
    best = ok[0]
    config = {k[len("config/"):]: v for k, v in best.items() if k.startswith("config/")}
    info = {"trial_id": best["trial_id"], METRIC: best[METRIC], "config": config, "run_dir": best["run_dir"],
            "command": "rnnkit " + shlex.join(_command(task, fixed, config, "DIR")[:-1])}
    (out / "best.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    log(f"rnnkit sweep: {len(rows)} trials, best {METRIC} {best[METRIC]:.4f} with "
        + ", ".join(f"{k}={v}" for k, v in config.items()) + f" ({best['run_dir']})")
    log(f"rnnkit sweep: wrote {out / 'results.csv'} and {out / 'best.json'}")
    return {"rows": rows, "best": info}
