"""Options shared by every `rnnkit <task> train` command, and their conversion to a `TrainConfig`.

`add_train_args(parser, **defaults)` adds the common flags (a task passes its own defaults, e.g.
`time_budget=120`); `train_config_from_args(args)` validates them into a `TrainConfig`. Bad values end as
argparse's one-line error (exit 2) or a `UserError` naming the option. `prepare_out_dir(path, resume=...)`
is the one output-folder check every command runs before training (see `rnnkit.train.outdir`).
"""
from __future__ import annotations

import argparse
import math

from ..optim import OPTIMIZERS, SCHEDULES
from ..train import TrainConfig
from ..train.outdir import prepare_out_dir, release_out_dirs  # noqa: F401  (the commands' shared check)


def _number(convert, ok, expected: str, out_of_range: str | None = None):
    """An argparse `type=` that converts with `convert` and accepts values where `ok(v)` holds."""
    def parse(s: str):
        try:
            v = convert(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {s!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {out_of_range or expected}, got {s!r}")
        return v
    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a positive number",
                         "a positive finite number")
fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def add_train_args(parser: argparse.ArgumentParser, **defaults) -> argparse.ArgumentParser:
    """Add the common training options; keyword arguments override their defaults (by dest name)."""
    d = {"time_budget": None, "steps": None, "epochs": None, "seed": 0, "lr": 2e-3, "cell": "lstm",
         "hidden": 128, "layers": 1, "optimizer": "adam", "clip": 5.0, "schedule": "constant",
         "warmup": 0, "eval_every": 200, "patience": None, "checkpoint_every": 0}
    d.update(defaults)
    g = parser.add_argument_group("training")
    g.add_argument("--out", metavar="DIR", default=d.get("out"), required="out" not in d,
                   help="output folder for the checkpoint and metrics.json")
    g.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR (model settings come from it)")
    g.add_argument("--time-budget", type=positive_float, metavar="S", default=d["time_budget"],
                   help="stop after S seconds of training in total (default: %(default)s; a task may "
                        "set one when no --steps/--epochs is given)")
    g.add_argument("--steps", type=positive_int, metavar="N", default=d["steps"],
                   help="stop after N optimiser steps in total (default: %(default)s)")
    g.add_argument("--epochs", type=positive_int, metavar="N", default=d["epochs"],
                   help="stop after N passes over the data (default: %(default)s)")
    g.add_argument("--seed", type=nonneg_int, default=d["seed"], help="random seed (default: %(default)s)")
    g.add_argument("--lr", type=positive_float, default=d["lr"], help="learning rate (default: %(default)s)")
    g.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=d["optimizer"],
                   help="optimiser (default: %(default)s)")
    g.add_argument("--clip", type=float, default=d["clip"],
                   help="clip the global gradient norm to this; 0 turns clipping off (default: %(default)s)")
    g.add_argument("--schedule", choices=list(SCHEDULES), default=d["schedule"],
                   help="learning-rate schedule (default: %(default)s; cosine needs --steps)")
    g.add_argument("--warmup", type=nonneg_int, metavar="N", default=d["warmup"],
                   help="linear learning-rate warm-up steps (default: %(default)s)")
    g.add_argument("--eval-every", type=nonneg_int, metavar="N", default=d["eval_every"],
                   help="steps between validation losses; 0: only at the end (default: %(default)s)")
    g.add_argument("--patience", type=positive_int, metavar="N", default=d["patience"],
                   help="early stopping: stop after N validations without improvement (default: off)")
    g.add_argument("--checkpoint-every", type=nonneg_int, metavar="N", default=d["checkpoint_every"],
                   help="steps between checkpoints; 0: at the end and on Ctrl-C (default: %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    m = parser.add_argument_group("model")
    m.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=d["cell"],
                   help="recurrent cell (default: %(default)s)")
    m.add_argument("--hidden", type=positive_int, metavar="N", default=d["hidden"],
                   help="hidden units per layer (default: %(default)s)")
    m.add_argument("--layers", type=positive_int, metavar="N", default=d["layers"],
                   help="recurrent layers (default: %(default)s)")
    return parser


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` the common options describe (validated; bad values raise UserError)."""
    from ..errors import UserError

    if args.clip is not None and (not math.isfinite(args.clip) or args.clip < 0):
        raise UserError(f"--clip must be >= 0, got {args.clip}")
    return TrainConfig(steps=args.steps, epochs=args.epochs, time_budget=args.time_budget, optimizer=args.optimizer,
                       lr=args.lr, clip=args.clip or None, schedule=args.schedule, warmup_steps=args.warmup,
                       eval_every=args.eval_every, patience=args.patience, checkpoint_every=args.checkpoint_every,
                       seed=args.seed, progress=not args.no_progress)
