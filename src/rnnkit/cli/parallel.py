"""`--workers N` for the train commands that support data-parallel training on Ray.

`add_parallel_args(parser)` adds the options; `run_parallel_or_none(task, args)` hands the parsed command
to `rnnkit.distributed` when N > 1 and returns its exit status, or None to train in this process.
"""
from __future__ import annotations

import sys

from .common import nonneg_int, positive_int


def add_parallel_args(parser) -> None:
    g = parser.add_argument_group("data-parallel training on Ray")
    g.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="split every batch over N Ray workers and sum their gradients (default: %(default)s)")
    g.add_argument("--reducer", choices=["gloo", "object_store"], default="gloo",
                   help="how gradients are summed: Ray collective on gloo, or the object store "
                        "(default: %(default)s)")
    g.add_argument("--address", metavar="A", help="a running Ray cluster (default: a local Ray)")
    g.add_argument("--max-restarts", type=nonneg_int, default=2, metavar="N",
                   help="restarts from the last checkpoint after a worker dies (default: %(default)s)")


def run_parallel_or_none(task: str, args) -> int | None:
    if getattr(args, "workers", 1) <= 1:
        return None
    from ..distributed.data_parallel import run_parallel

    run_parallel(task, args, args.workers, args.reducer, args.address, args.max_restarts,
                 log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0
