"""Data-parallel textgen on Ray: speed-up at 1/2(/4) workers and the share of each step spent summing.

    python3 benchmarks/scale.py [--steps N] [--workers 2 4] [--reducers gloo object_store] [--repeat R]
                                [--json FILE]

The model is the main job's, `rnnkit textgen train` at its defaults (LSTM 1x256, embedding 64, batch 32
streams of 64 characters, Python's documentation text), with --val-frac 0 so the timed steps hold no
validation. In one run it trains the same steps on 1 Ray worker and on N with each reducer, and takes
from DIR/parallel.json the median time per step (end of one all-reduce to the next; the first step,
which loads the compiled kernels, is left out) and the median all-reduce time; then it times the all-reduce alone on a buffer of the model's size (no training beside it),
which is the pure communication cost (inside training the all-reduce also waits for the slowest rank).
A local Ray gets max(2, N) CPUs: on a 2-core machine 4 workers share 2 cores. With --repeat R the
configurations run R times, interleaved (1, 2, 4, 1, 2, 4, ...), so that load from other work on a
shared machine falls on all of them alike; the table shows the median of the R runs and their range.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")  # Ray workers
import rnnkit  # noqa: E402,F401  before NumPy: rnnkit sets OpenBLAS's idle spin short (kernels/_spin.py)

import numpy as np  # noqa: E402

from rnnkit.distributed import train_data_parallel  # noqa: E402
from rnnkit.distributed.reduce import REDUCERS, Exchange  # noqa: E402


def timings(run_dir: Path) -> tuple[float, float]:
    """(median step seconds, median all-reduce seconds) over the ranks of a run, first step excluded."""
    ranks = json.loads((run_dir / "parallel.json").read_text())["ranks"]
    return (max(r["median_step_seconds"] for r in ranks),
            statistics.mean(r["median_allreduce_seconds"] for r in ranks))


class Bench:
    """An actor that all-reduces a float32 buffer of `size` values `reps` times with one reducer."""

    def __init__(self, world, rank, reducer, group, exchange):
        cls, _ = REDUCERS[reducer]
        self.reducer = cls(world, rank, group, exchange)

    def run(self, size, reps):
        buf = np.ones(size, np.float32)
        self.reducer.allreduce(buf)                  # warm-up (connections, first allocation)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            self.reducer.allreduce(buf)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


def allreduce_alone(ray, world, reducer, size, reps) -> float:
    actor = ray.remote(num_cpus=1)(Bench)
    ex = ray.remote(num_cpus=0)(Exchange).remote(world) if REDUCERS[reducer][1] else None
    group = f"bench-{reducer}-{world}-{time.time_ns()}"
    actors = [actor.remote(world, r, reducer, group, ex) for r in range(world)]
    try:
        return max(ray.get([a.run.remote(size, reps) for a in actors]))
    finally:
        for a in actors:
            ray.kill(a)
        if ex is not None:
            ray.kill(ex)


def main_(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--reducers", nargs="+", default=list(REDUCERS), choices=list(REDUCERS))
    ap.add_argument("--reps", type=int, default=30, help="all-reduces timed alone per configuration")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved runs of every configuration")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    import ray

    print(f"load average before: {os.getloadavg()}", flush=True)
    ray.init(num_cpus=max(2, *a.workers), include_dashboard=False, object_store_memory=200 << 20,
             log_to_driver=False)
    rows, tmp = [], Path(tempfile.mkdtemp(prefix="rnnkit-scale-"))
    common = ["--steps", str(a.steps), "--val-frac", "0", "--sample-length", "0"]
    configs = [(1, "gloo")] + [(n, red) for n in a.workers for red in a.reducers]
    runs = {c: [] for c in configs}          # (workers, reducer) -> [(step s, all-reduce s), ...]
    try:
        for rep in range(a.repeat):
            for n, red in configs:
                # 1 worker: the same Ray actor set-up (one BLAS thread, as Ray gives its workers), no peers
                d = tmp / f"r{rep}-w{n}-{red}"
                train_data_parallel("textgen", [*common, "--out", str(d)], n, reducer=red, log=lambda m: None)
                runs[(n, red)].append(timings(d))
                print(f"run {rep}: {n} workers {red}: {1e3 * runs[(n, red)][-1][0]:.1f} ms/step", flush=True)
        params = json.loads((tmp / "r0-w1-gloo" / "metrics.json").read_text())["parameters"]
        base = statistics.median(t for t, _ in runs[(1, "gloo")])
        for n, red in configs:
            steps = [t for t, _ in runs[(n, red)]]
            st, comm = statistics.median(steps), statistics.median(c for _, c in runs[(n, red)])
            alone = 0.0 if n == 1 else allreduce_alone(ray, n, red, params + 3, a.reps)
            rows.append({"workers": n, "reducer": red if n > 1 else "-", "step_ms": 1e3 * st,
                         "step_ms_range": [1e3 * min(steps), 1e3 * max(steps)], "speedup": base / st,
                         "comm_ms_in_step": 1e3 * comm if n > 1 else 0.0,
                         "comm_share": comm / st if n > 1 else 0.0, "allreduce_alone_ms": 1e3 * alone})
    finally:
        ray.shutdown()
    print(f"load average after: {os.getloadavg()}; model {params:,} parameters "
          f"({4 * params / 1e6:.2f} MB of float32 gradients per step)")
    print("| workers | reducer | ms/step (median) | range | speed-up | all-reduce in step (ms) | share of step "
          "| all-reduce alone (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["step_ms_range"]
        print(f"| {r['workers']} | {r['reducer']} | {r['step_ms']:.1f} | {lo:.0f}-{hi:.0f} | {r['speedup']:.2f} | "
              f"{r['comm_ms_in_step']:.1f} | {r['comm_share']:.0%} | {r['allreduce_alone_ms']:.2f} |")
    if a.json:
        a.json.write_text(json.dumps({"parameters": params, "steps": a.steps, "repeat": a.repeat, "rows": rows,
                                      "loadavg_after": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main_()
