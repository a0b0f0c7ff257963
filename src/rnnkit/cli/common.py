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
from ..train.outdir import prepare_out_dir, release_out_dirs  # noqa: F401  (re-exported: the shared check)


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
probability = _number(float, lambda v: 0 <= v < 1, "a dropout probability P with 0 <= P < 1")


nonneg_float = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0", "a finite number >= 0")


class _Given(argparse.Action):
    """Store the value and note that the option was given, so `--resume` can keep the saved settings of
    every option the command line leaves out (an argparse default is no reason to change them)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given_options = set(getattr(namespace, "given_options", ()) or ()) | {self.dest}


# TrainConfig field -> the option (argparse dest) that sets it
_OPTION_OF = {"steps": "steps", "epochs": "epochs", "time_budget": "time_budget", "seed": "seed", "lr": "lr",
              "optimizer": "optimizer", "clip": "clip", "schedule": "schedule", "warmup_steps": "warmup",
              "eval_every": "eval_every", "patience": "patience", "checkpoint_every": "checkpoint_every",
              "checkpoint_seconds": "checkpoint_seconds", "weight_decay": "weight_decay", "lr_gamma": "lr_gamma",
              "plateau_patience": "plateau_patience", "averaging": "averaging", "nonmono": "nonmono"}


def add_train_args(parser: argparse.ArgumentParser, **defaults) -> argparse.ArgumentParser:
    """Add the common training options; keyword arguments override their defaults (by dest name)."""
    d = {"time_budget": None, "steps": None, "epochs": None, "seed": 0, "lr": 2e-3, "cell": "lstm",
         "hidden": 128, "layers": 1, "optimizer": "adam", "clip": 5.0, "schedule": "constant",
         "warmup": 0, "eval_every": 200, "patience": None, "checkpoint_every": 0, "checkpoint_seconds": 60.0,
         "dropout": None, "weight_decay": 0.0, "lr_gamma": 0.5, "plateau_patience": 1,
         "averaging": "off", "nonmono": 5}
    d.update(defaults)
    parser.set_defaults(given_options=set())
    g = parser.add_argument_group("training")
    g.add_argument("--out", metavar="DIR", default=d.get("out"), required="out" not in d,
                   help="output folder for the checkpoint and metrics.json")
    g.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR (model settings come from it)")
    g.add_argument("--time-budget", action=_Given, type=positive_float, metavar="S", default=d["time_budget"],
                   help="stop after S seconds of training in total (default: %(default)s; a task may "
                        "set one when no --steps/--epochs is given)")
    g.add_argument("--steps", action=_Given, type=positive_int, metavar="N", default=d["steps"],
                   help="stop after N optimiser steps in total (default: %(default)s)")
    g.add_argument("--epochs", action=_Given, type=positive_int, metavar="N", default=d["epochs"],
                   help="stop after N passes over the data (default: %(default)s)")
    g.add_argument("--seed", action=_Given, type=nonneg_int, default=d["seed"],
                   help="random seed (default: %(default)s)")
    g.add_argument("--lr", action=_Given, type=positive_float, default=d["lr"],
                   help="learning rate (default: %(default)s)")
    g.add_argument("--optimizer", action=_Given, choices=sorted(OPTIMIZERS), default=d["optimizer"],
                   help="optimiser (default: %(default)s)")
    g.add_argument("--clip", action=_Given, type=float, default=d["clip"],
                   help="clip the global gradient norm to this; 0 turns clipping off (default: %(default)s)")
    g.add_argument("--schedule", action=_Given, choices=list(SCHEDULES), default=d["schedule"],
                   help="learning-rate schedule (default: %(default)s; cosine needs --steps, plateau --eval-every)")
    g.add_argument("--weight-decay", action=_Given, type=nonneg_float, metavar="W", default=d["weight_decay"],
                   help="weight decay: decoupled with --optimizer adamw (p *= 1 - lr W, Loshchilov & Hutter), "
                        "an L2 term W p in the gradient with the others, as torch.optim (default: %(default)s)")
    g.add_argument("--lr-gamma", action=_Given, type=_number(float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
                   metavar="F", default=d["lr_gamma"],
                   help="step and plateau schedules: multiply the learning rate by F (default: %(default)s)")
    g.add_argument("--plateau-patience", action=_Given, type=nonneg_int, metavar="N", default=d["plateau_patience"],
                   help="plateau schedule: validations without improvement before the learning rate is "
                        "multiplied by --lr-gamma (default: %(default)s)")
    g.add_argument("--averaging", action=_Given, choices=["off", "nt"], default=d["averaging"],
                   help="nt: average the weights from the first validation worse than the best of those more "
                        "than --nonmono before it, then validate and save the average (NT-ASGD, AWD-LSTM; "
                        "default: %(default)s)")
    g.add_argument("--nonmono", action=_Given, type=nonneg_int, metavar="N", default=d["nonmono"],
                   help="--averaging nt: validations of patience (default: %(default)s)")
    g.add_argument("--warmup", action=_Given, type=nonneg_int, metavar="N", default=d["warmup"],
                   help="linear learning-rate warm-up steps (default: %(default)s)")
    g.add_argument("--eval-every", action=_Given, type=nonneg_int, metavar="N", default=d["eval_every"],
                   help="steps between validation losses; 0: only at the end (default: %(default)s)")
    g.add_argument("--patience", action=_Given, type=positive_int, metavar="N", default=d["patience"],
                   help="early stopping: stop after N validations without improvement (default: off)")
    g.add_argument("--checkpoint-every", action=_Given, type=nonneg_int, metavar="N",
                   default=d["checkpoint_every"],
                   help="steps between checkpoints; 0: at the end and on Ctrl-C (default: %(default)s)")
    g.add_argument("--checkpoint-seconds", action=_Given, type=nonneg_float, metavar="S",
                   default=d["checkpoint_seconds"],
                   help="also checkpoint every S seconds of wall-clock time, so a crash or kill loses at most "
                        "that much; 0: off (default: %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    m = parser.add_argument_group("model")
    m.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=d["cell"],
                   help="recurrent cell (default: %(default)s)")
    m.add_argument("--hidden", type=positive_int, metavar="N", default=d["hidden"],
                   help="hidden units per layer (default: %(default)s)")
    m.add_argument("--layers", type=positive_int, metavar="N", default=d["layers"],
                   help="recurrent layers (default: %(default)s)")
    # None: the task's own default; each task says in its docs where it applies the probability
    m.add_argument("--dropout", type=probability, metavar="P", default=d["dropout"],
                   help="dropout probability in training, 0 <= P < 1 (default: the task's own; "
                        "docs/regularisation.md says where each task applies it)")
    return parser


def train_config_from_args(args: argparse.Namespace, saved: dict | None = None) -> TrainConfig:
    """The `TrainConfig` the common options describe (validated; bad values raise UserError).

    `saved` (by default, with `--resume DIR`, the train config saved in DIR's checkpoint): its settings
    are kept for every option not given on this command line, so a resumed run keeps its checkpoint and
    evaluation intervals, its budget ... unless told otherwise."""
    from ..errors import UserError
    from ..train import saved_train_config

    if saved is None and getattr(args, "resume", None) is not None:
        saved = saved_train_config(args.resume)

    if args.clip is not None and (not math.isfinite(args.clip) or args.clip < 0):
        raise UserError(f"--clip must be >= 0, got {args.clip}")
    cfg = dict(steps=args.steps, epochs=args.epochs, time_budget=args.time_budget, optimizer=args.optimizer,
               lr=args.lr, clip=args.clip or None, schedule=args.schedule, warmup_steps=args.warmup,
               eval_every=args.eval_every, patience=args.patience, checkpoint_every=args.checkpoint_every,
               checkpoint_seconds=args.checkpoint_seconds, seed=args.seed, progress=not args.no_progress,
               weight_decay=args.weight_decay, lr_gamma=args.lr_gamma, plateau_patience=args.plateau_patience,
               averaging=args.averaging, nonmono=args.nonmono)
    if saved:
        given = getattr(args, "given_options", set()) or set()
        budget_given = given & {"steps", "epochs", "time_budget"}
        for field, value in saved.items():
            if field == "progress" or field not in TrainConfig.__dataclass_fields__:
                continue
            option = _OPTION_OF.get(field)
            if option is None or (option not in given and not (budget_given and field in
                                                                 ("steps", "epochs", "time_budget"))):
                cfg[field] = value
    return TrainConfig(**cfg)
