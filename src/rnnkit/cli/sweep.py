"""`rnnkit sweep TASK [train options] --search SPACE --trials N --out DIR`: a Ray Tune sweep.

Options after TASK that the sweep does not know are the task's `train` options, fixed for every trial;
the options named in SPACE (.json or .toml, see `rnnkit.distributed.space`) are sampled per trial.
"""
from __future__ import annotations

import argparse
import sys

from .common import positive_float, positive_int


def _add_options(p, required: bool) -> None:
    p.add_argument("--search", required=required, metavar="SPACE", help="search space, .json or .toml")
    p.add_argument("--trials", type=positive_int, required=required, metavar="N", help="trials to sample")
    p.add_argument("--out", required=required, metavar="DIR",
                   help="sweep folder (trials/, results.csv, best.json); run again to resume")
    p.add_argument("--scheduler", choices=["fifo", "asha"], default="fifo",
                   help="asha stops trials whose validation loss lags (default: %(default)s)")
    p.add_argument("--address", metavar="A", help="a running Ray cluster (default: a local Ray with 2 CPUs)")
    p.add_argument("--cpus-per-trial", type=positive_float, default=1, metavar="N",
                   help="CPUs Ray reserves per trial (default: %(default)s)")


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="hyperparameter sweep of a task's train command on Ray Tune",
                       description="Sweep TASK's train options over a search space on Ray Tune. Options not "
                                   "listed here are passed to 'rnnkit TASK train' for every trial.")
    p.add_argument("task", metavar="TASK", help="a task with a train action (textgen, classify, ...)")
    _add_options(p, required=False)   # listed for --help; parsed from `rest` in run()
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run, prog=p.prog, parser_class=type(p))


def run(args) -> int:
    from ..distributed import sweep

    own = args.parser_class(prog=args.prog)
    _add_options(own, required=True)
    opts, fixed = own.parse_known_args(args.rest)
    sweep(args.task, fixed, opts.search, opts.trials, opts.out, scheduler=opts.scheduler,
          address=opts.address, cpus_per_trial=opts.cpus_per_trial,
          log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0
