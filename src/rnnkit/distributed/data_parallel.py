"""Synchronous data-parallel training: N Ray workers run the same `rnnkit TASK train`, one shard each.

Every worker builds the same model from the same seed and draws the same batch order (the Trainer's RNG
is seeded alike), keeps its shard of each global batch (`SHARDS`: textgen's streams are split by
column, the other tasks' index batches by position; the shards partition the batch, so no example is
seen twice per epoch), and computes the gradient of its shard's mean loss. The `DataParallel` hook
then all-reduces one flat buffer [n_w * grads_w, time-up_w, n_w * loss_w, n_w] (`reduce.REDUCERS`) and
divides by sum(n_w): that is the gradient of the mean loss over the global batch, so clipping, the optimiser step
and non-finite recovery see exactly what one process would, and every worker applies the same update.
A time budget ends every rank at the same step: the first step at which any rank's clock passed it.

Rank 0 writes the ordinary run folder DIR (checkpoint, metrics.json); rank k keeps its own checkpoint in
DIR/workers/rank-k (the hidden state textgen carries between batches differs per shard). When a worker
dies, the driver kills the rest (none is left blocked in an all-reduce), starts a new group and resumes
every rank from its own last checkpoint (`--checkpoint-every`), up to `max_restarts` times. The
time-based checkpoints of one process (`--checkpoint-seconds`) are off here: each rank's clock would
choose a different step.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..train.hooks import TrainerHook, trainer_hooks
from .reduce import REDUCERS, Exchange
from .session import LOCAL_CPUS, ray_session, require_ray


# -- shards ----------------------------------------------------------------------------------------------
def shard_streams(batch, rank: int, world: int):
    """textgen's (x (T, B), y (T, B), reset): this rank's block of the B streams."""
    x, y, reset = batch
    cols = np.array_split(np.arange(x.shape[1]), world)[rank]
    return np.ascontiguousarray(x[:, cols]), np.ascontiguousarray(y[:, cols]), reset


def shard_rows(batch, rank: int, world: int):
    """An index batch (B,) of classify/forecast: this rank's block of it."""
    return np.array_split(np.asarray(batch), world)[rank]


# task -> (shard function, whether its CLI can resume a run stopped mid-training)
SHARDS = {"textgen": (shard_streams, True), "classify": (shard_rows, True)}


def _size(batch) -> int:
    return batch[0].shape[1] if isinstance(batch, tuple) else len(batch)


class DataParallel(TrainerHook):
    """Keeps this rank's shard of every batch and sums the gradients of all ranks (see module doc)."""

    def __init__(self, rank: int, world: int, shard, reducer):
        self.rank, self.world, self._shard, self.reducer = rank, world, shard, reducer
        self.empty = False          # this rank's shard of the current batch is empty
        self._buf = None
        self.comm_seconds, self.reductions = 0.0, 0
        self.step_times, self.comm_times = [], []   # per step: end of one all-reduce to the next; all-reduce
        self._last_end = None
        self._time_up = False      # agreed at the last all-reduce: some rank's clock passed the budget

    def on_fresh_start(self, trainer) -> None:
        """Rank k > 0 moves the model's per-example dropout generators to streams of its own (derived
        from the seeded ones and k, so a run is reproducible): with the same streams every rank drew
        the same masks for its shard, noise correlated across ranks that one process does not have.
        Weight-drop draws one mask per batch, which one process shares across the whole batch, so its
        stream stays the same on every rank. Each rank's checkpoint holds its streams: resume is exact."""
        if self.rank == 0:
            return
        model = trainer.model
        moved = {}
        for name, state in model.random_state_dict().items():
            if name.endswith("weight_drop_rng"):
                continue
            g = np.random.Generator(getattr(np.random, state["bit_generator"])())
            g.bit_generator.state = state
            seed = np.random.SeedSequence([int(g.integers(2**63)), self.rank])
            moved[name] = type(g.bit_generator)(seed).state
        model.load_random_state_dict(moved, strict=False)

    def shard_size(self, n: int) -> int:
        return len(np.array_split(np.arange(n), self.world)[self.rank])

    def shard(self, batch):
        part = self._shard(batch, self.rank, self.world)
        # a batch smaller than the worker count leaves some shards empty: such a rank still runs a step
        # (on the whole batch, to keep shapes valid) and contributes nothing to the sums
        self.empty = _size(part) == 0
        return batch if self.empty else part

    def reduce(self, trainer, loss, n_items):
        grads = trainer.model.grads
        dtype = next(iter(grads.values())).dtype
        total = sum(g.size for g in grads.values())
        if self._buf is None or self._buf.size != total + 3 or self._buf.dtype != dtype:
            self._buf = np.empty(total + 3, dtype=dtype)
        buf = self._buf
        n = 0 if self.empty else n_items
        off = 0
        for g in grads.values():                      # the same key order on every rank
            np.multiply(g.reshape(-1), n, out=buf[off:off + g.size])
            off += g.size
        budget = trainer.config.time_budget
        buf[-3] = float(budget is not None and trainer._time() >= budget)
        buf[-2], buf[-1] = float(loss) * n, n
        t0 = time.perf_counter()
        self.reducer.allreduce(buf)
        t1 = time.perf_counter()
        self.comm_seconds += t1 - t0
        self.reductions += 1
        if self._last_end is not None:   # the first step also loads the compiled kernels: not timed
            self.step_times.append(t1 - self._last_end)
            self.comm_times.append(t1 - t0)
        self._last_end = t1
        self._time_up = bool(buf[-3] > 0)
        n_total = float(buf[-1])
        off = 0
        for g in grads.values():
            np.divide(buf[off:off + g.size].reshape(g.shape), n_total, out=g)
            off += g.size
        return float(buf[-2]) / n_total, int(round(n_total))

    def before_save(self, trainer, path) -> None:
        """Keep the checkpoint this save replaces as `checkpoint.prev` (copied, then renamed in place), so
        that a kill of any rank during a save still leaves one step that every rank holds."""
        path = Path(path)
        if path.name != "checkpoint" or _step_of(path) is None:
            return
        tmp = path.with_name(f".{PREVIOUS}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(path, tmp)
        shutil.rmtree(path.with_name(PREVIOUS), ignore_errors=True)
        os.replace(tmp, path.with_name(PREVIOUS))

    def time_is_up(self, trainer) -> bool:
        # each rank's own clock would stop it at its own step and leave the others waiting in an
        # all-reduce; the flag summed in the last one is the same on every rank
        return self._time_up


# -- the worker actor -------------------------------------------------------------------------------------
class Worker:
    """One rank: joins the reduction group, then runs the task's train command with the hook installed."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world, self.reducer = rank, world, None

    def pid(self) -> int:
        return os.getpid()

    def join(self, reducer: str, group: str, exchange=None) -> None:
        cls, _ = REDUCERS[reducer]
        self.reducer = cls(self.world, self.rank, group, exchange)

    def run(self, task: str, args: argparse.Namespace) -> dict:
        shard, _ = SHARDS[task]
        hook = DataParallel(self.rank, self.world, shard, self.reducer)
        from ..train.outdir import release_out_dirs

        t0 = time.perf_counter()
        try:
            with trainer_hooks(hook):
                status = args.func(args)
        finally:
            release_out_dirs()        # the command has ended (the CLI's main does this for one process)
        med = (lambda v: float(np.median(v)) if v else None)  # noqa: E731
        return {"rank": self.rank, "status": int(status or 0), "seconds": time.perf_counter() - t0,
                "comm_seconds": hook.comm_seconds, "reductions": hook.reductions,
                "median_step_seconds": med(hook.step_times), "median_allreduce_seconds": med(hook.comm_times)}


# -- the driver ------------------------------------------------------------------------------------------
def rank_dir(out: Path, rank: int) -> Path:
    return out if rank == 0 else out / "workers" / f"rank-{rank}"


PREVIOUS = "checkpoint.prev"   # a rank's checkpoint before its last save (`DataParallel.before_save`)


def _step_of(folder: Path):
    """The step of the checkpoint folder `folder`, or None when there is none."""
    try:
        return json.loads((folder / "trainer.json").read_text(encoding="utf-8"))["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def checkpoint_step(d: Path):
    """The step of the checkpoint in run folder `d`, or None when it has none."""
    return _step_of(d / "checkpoint")


def _resume_step(out: Path, world: int):
    """The latest step every rank has a checkpoint of (its current one or the one before: a rank killed
    during a save leaves the others one save ahead), or None."""
    common = None
    for r in range(world):
        d = rank_dir(out, r)
        steps = {_step_of(d / "checkpoint"), _step_of(d / PREVIOUS)} - {None}
        common = steps if common is None else common & steps
    return max(common) if common else None


def _settle(out: Path, world: int, step: int) -> None:
    """Make each rank's `checkpoint` the one of `step`, putting its previous one back where needed."""
    for r in range(world):
        d = rank_dir(out, r)
        if _step_of(d / "checkpoint") != step:
            aside = d / f".checkpoint.old-{os.getpid()}"
            if (d / "checkpoint").exists():
                os.replace(d / "checkpoint", aside)
            os.replace(d / PREVIOUS, d / "checkpoint")
            shutil.rmtree(aside, ignore_errors=True)


def _rank_args(args, rank: int, out: Path, resume_root: Path | None):
    ns = copy.copy(args)
    ns.workers, ns.no_progress = 1, True
    ns.out = str(rank_dir(out, rank))
    ns.resume = str(rank_dir(resume_root, rank)) if resume_root is not None else None
    if rank > 0 and hasattr(ns, "sample_length"):
        ns.sample_length = 0          # only rank 0 prints a sample
    if getattr(ns, "checkpoint_seconds", 0):
        # each rank's clock would pick a different step, and resuming needs one step on every rank:
        # the ranks checkpoint by step only (--checkpoint-every)
        ns.checkpoint_seconds = 0
        ns.given_options = set(getattr(ns, "given_options", ()) or ()) | {"checkpoint_seconds"}
    return ns


def _user_error(err):
    """The UserError inside a Ray task error, if that is what it is."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, UserError) else None


def _attempt(ray, task, args, workers, reducer, out: Path, root, step, attempt) -> tuple[list, list]:
    """Start `workers` fresh actors, train, and return (per-rank results, pids). The first failure
    raises (Ray's error); the actors are killed either way, so none is left blocked on a dead peer."""
    actors = [ray.remote(num_cpus=1)(Worker).remote(r, workers) for r in range(workers)]
    exchange = ray.remote(num_cpus=0)(Exchange).remote(workers) if REDUCERS[reducer][1] else None
    try:
        group = f"rnnkit-{uuid.uuid4().hex[:12]}"
        ray.get([a.join.remote(reducer, group, exchange) for a in actors])
        pids = ray.get([a.pid.remote() for a in actors])
        (out / "parallel.json").write_text(json.dumps(
            {"task": task, "workers": workers, "reducer": reducer, "attempt": attempt, "pids": pids,
             "resumed_from_step": step, "status": "running"}, indent=1), encoding="utf-8")
        pending = [a.run.remote(task, _rank_args(args, r, out, root if step is not None else None))
                   for r, a in enumerate(actors)]
        results = []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            results.append(ray.get(ready[0]))
        return sorted(results, key=lambda r: r["rank"]), pids
    finally:
        for a in actors:
            ray.kill(a)
        if exchange is not None:
            ray.kill(exchange)
        _wait_dead(ray, actors)


def _wait_dead(ray, actors, timeout: float = 30.0) -> None:
    """Wait until killed actors are gone (ray.kill returns at once), so that their output-folder locks
    are free before the next attempt's workers take them."""
    deadline = time.monotonic() + timeout
    for a in actors:
        while time.monotonic() < deadline:
            try:
                ray.get(a.pid.remote(), timeout=max(0.1, deadline - time.monotonic()))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                break
            time.sleep(0.05)


def run_parallel(task: str, args: argparse.Namespace, workers: int, reducer: str = "gloo",
                 address: str | None = None, max_restarts: int = 2, log=print) -> dict:
    """Train `args` (a parsed `rnnkit TASK train` namespace) on `workers` Ray workers; returns the
    per-rank statistics, also written to DIR/parallel.json."""
    from ..train.outdir import prepare_out_dir, release_out_dirs

    require_ray()             # before anything is written
    if task not in SHARDS:
        raise UserError(f"--workers is available for {sorted(SHARDS)}, not {task!r}")
    if reducer not in REDUCERS:
        raise UserError(f"--reducer must be one of {list(REDUCERS)}, got {reducer!r}")
    batch = getattr(args, "batch", getattr(args, "batch_size", None))
    if batch is not None and batch < workers:
        raise UserError(f"the global batch ({batch}) is smaller than --workers {workers}; each worker needs "
                        "at least one item of it")
    resumable = SHARDS[task][1]
    user_root = Path(args.resume).absolute() if args.resume is not None else None
    if user_root is not None and (not resumable or _resume_step(user_root, workers) is None):
        raise UserError(f"--resume {args.resume!r} with --workers {workers} needs the checkpoints of a "
                        f"{task} run with {workers} workers (DIR/checkpoint and DIR/workers/rank-k/checkpoint "
                        "at the same step)")
    out = Path(args.out).absolute() if args.out is not None else user_root
    prepare_out_dir(out)      # the same check as one process, before Ray starts; rank 0 takes the lock
    release_out_dirs()
    with ray_session(address, None if address else max(LOCAL_CPUS, workers)) as ray:
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < workers:   # the actors would wait for CPUs forever
            raise UserError(f"the Ray cluster has {cpus:g} CPUs but --workers {workers} needs one each; "
                            "lower --workers or add nodes")
        out.mkdir(parents=True, exist_ok=True)
        for attempt in range(max_restarts + 1):
            # after a failure: this run's own checkpoints; else those of --resume (if given)
            root = out if attempt > 0 and resumable and _resume_step(out, workers) is not None else user_root
            step = _resume_step(root, workers) if root is not None and resumable else None
            if step is not None:
                _settle(root, workers, step)
            if attempt > 0:
                log(f"rnnkit: a worker failed; restarting {workers} workers "
                    + (f"from the checkpoints at step {step}" if step is not None else "from the beginning"))
            try:
                results, pids = _attempt(ray, task, args, workers, reducer, out, root, step, attempt)
                break
            except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as e:
                if _user_error(e) is not None:
                    raise UserError(str(_user_error(e))) from None
                if attempt == max_restarts:
                    raise UserError(f"data-parallel training failed {max_restarts + 1} times; last error: "
                                    f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
    stats = {"task": task, "workers": workers, "reducer": reducer, "attempt": attempt, "pids": pids,
             "resumed_from_step": step, "status": "finished", "ranks": results}
    (out / "parallel.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    bad = [r for r in results if r["status"] != 0]
    if bad:
        raise UserError(f"worker {bad[0]['rank']} exited with status {bad[0]['status']}")
    r0 = results[0]
    log(f"rnnkit: {workers} workers ({reducer}); rank 0 spent {r0['comm_seconds']:.2f} s of "
        f"{r0['seconds']:.2f} s in {r0['reductions']} all-reduces")
    return stats


def train_data_parallel(task: str, argv, workers: int, reducer: str = "gloo", address: str | None = None,
                        max_restarts: int = 2, log=print) -> dict:
    """`rnnkit TASK train ARGV...` on `workers` Ray workers (ARGV as on the command line, with --out)."""
    from ..cli import build_parser

    try:
        args = build_parser().parse_args([task, "train", *map(str, argv)])
    except SystemExit:
        raise UserError(f"the options are not valid for 'rnnkit {task} train' (see the message above)") from None
    return run_parallel(task, args, workers, reducer, address, max_restarts, log)

