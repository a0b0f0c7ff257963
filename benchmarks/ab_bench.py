"""A/B of rnnkit against another checkout of itself: `bench_vs_torch.py` of each, alternated in one run.

Why: a change to the core must keep its speed, and on a shared machine the load drifts by more than
the change; runs of the two checkouts taken one after the other, round by round (A B A B ...), see
the same drift. Each round runs each checkout's own `benchmarks/bench_vs_torch.py` (which puts its
own `src/` first on sys.path) in a fresh process per cell, so the two never share a process.

Reported per cell, size and part: the median (min-max over rounds) of rnnkit's time for A and B and
the ratio B/A of the medians (< 1: B is faster), with the load averages seen before each round.

`--core` times rnnkit alone (no torch runs: half the time on a busy machine): the same sizes and the
same training step (forward + backward) and forward, in a fresh process per checkout and round that
imports that checkout's `src/`, the two alternated the same way. `--trainer` times one training step of
a 2-layer bidirectional `SequenceClassifier` (B32 T100 D64 H128) through each checkout's Trainer, the
way every `rnnkit ... train` command runs its steps.

Usage: python3 benchmarks/ab_bench.py --a /tmp/base --b . [--rounds 3] [--cells rnn,lstm,gru]
       [--sizes 0,1,2,3,4] [--parts train,fwd,step] [--repeats 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_one(root: Path, cell: str, sizes: str, parts: str, repeats: int, threads: int | None) -> list:
    """The `results` list of one bench_vs_torch run of checkout `root` for one cell."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, str(root / "benchmarks" / "bench_vs_torch.py"), "--cells", cell,
               "--sizes", sizes, "--parts", parts, "--repeats", str(repeats), "--json", str(out)]
        if threads:
            cmd += ["--threads", str(threads)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"error: {root} {cell} failed:\n{done.stderr.strip()[-2000:]}")
        return json.loads(out.read_text())["results"]


CORE = """
import contextlib, json, statistics, sys, time
import numpy as np
import rnnkit
sys.path.insert(0, {bench!r})
from bench_vs_torch import SIZES
out = []
for cell in {cells!r}:
    for i in {sizes!r}:
        B, T, D, H, L, bi = SIZES[i]
        layer = getattr(rnnkit, cell.upper())(D, H, num_layers=L, bidirectional=bi, seed=0)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, D), dtype=np.float32)
        dout = rng.standard_normal((T, B, H * (2 if bi else 1)), dtype=np.float32)
        def train():
            layer.forward(x)
            layer.backward(dout)
        r = {{"cell": cell, "size": f"B{{B}} T{{T}} D{{D}} H{{H}}" + (f" L{{L}} bi" if bi else "")}}
        for part, f in (("train", train), ("fwd", lambda: layer.forward(x))):
            with rnnkit.side_by_side() if {side_by_side} else contextlib.nullcontext():
                f()
                ts = []
                for _ in range({repeats}):
                    t0 = time.perf_counter()
                    f()
                    ts.append(time.perf_counter() - t0)
            r[part + "_rnnkit_s"] = statistics.median(ts)
        out.append(r)
print(json.dumps(out))
"""


TRAINER = """
import json, statistics, sys, time
import numpy as np
from rnnkit.tasks.classify import SequenceClassifier
B, T, D, H, L = 32, 100, 64, 128, 2
rng = np.random.default_rng(0)
X = rng.standard_normal(({batches} * B, T, D), dtype=np.float32)
y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
out = []
for cell in {cells!r}:
    def fit(epochs):
        clf = SequenceClassifier(cell=cell, hidden_size=H, num_layers=L, bidirectional=True, epochs=epochs,
                                 batch_size=B, seed=0)
        t0 = time.perf_counter()
        clf.fit(X, y)
        return time.perf_counter() - t0
    fit(1)                                                   # compiles; later fits load nothing new
    ts = [fit(1) / {batches} for _ in range({repeats})]
    out.append({{"cell": cell, "size": f"B{{B}} T{{T}} D{{D}} H{{H}} L{{L}} bi, Trainer step",
                "train_rnnkit_s": statistics.median(ts)}})
print(json.dumps(out))
"""


def run_trainer(root: Path, cells: list[str], repeats: int, threads: int | None, batches: int = 4) -> list:
    """One training step of a 2-layer bidirectional SequenceClassifier through checkout `root`'s
    Trainer (`fit` of one epoch of `batches` batches, divided by them), in a fresh process."""
    code = TRAINER.format(cells=cells, repeats=repeats, batches=batches)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(root / "src")
    if threads:
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"error: {root} failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_core(root: Path, cells: list[str], sizes: list[int], repeats: int, threads: int | None,
             side_by_side: bool = False) -> list:
    """rnnkit's own times (no torch) in a fresh process on checkout `root`'s src/; side_by_side:
    inside `rnnkit.side_by_side()` (a checkout that has it)."""
    code = CORE.format(bench=str(root / "benchmarks"), cells=cells, sizes=sizes, repeats=repeats,
                       side_by_side=side_by_side)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(root / "src")
    if threads:
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"error: {root} failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: dict, parts: list[str]) -> list[dict]:
    """Rows: cell, size, part, A and B medians/min/max in ms, ratio B/A."""
    rows = []
    keys = sorted({(r["cell"], r["size"]) for r in runs["a"][0]}, key=lambda k: (k[0], k[1]))
    for cell, size in keys:
        for part in parts:
            field = f"{part}_rnnkit_s"
            times = {}
            for side in ("a", "b"):
                times[side] = [r[field] * 1e3 for rnd in runs[side] for r in rnd
                               if r["cell"] == cell and r["size"] == size and field in r]
            if not times["a"] or not times["b"]:
                continue
            ma, mb = statistics.median(times["a"]), statistics.median(times["b"])
            rows.append({"cell": cell, "size": size, "part": part, "a_ms": ma, "b_ms": mb,
                         "a_range": (min(times["a"]), max(times["a"])),
                         "b_range": (min(times["b"]), max(times["b"])), "ratio": mb / ma})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="checkout A (e.g. a `git worktree` of the base commit)")
    p.add_argument("--b", default=str(Path(__file__).resolve().parents[1]), help="checkout B (default: this one)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cells", default="rnn,lstm,gru")
    p.add_argument("--sizes", default="0,1,2,3,4")
    p.add_argument("--parts", default="train,fwd,step")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--core", action="store_true", help="time rnnkit alone (train, fwd), no torch runs")
    p.add_argument("--trainer", action="store_true",
                   help="time one Trainer step of a 2-layer bidirectional classifier (B32 T100 D64 H128)")
    p.add_argument("--b-side-by-side", action="store_true",
                   help="with --core: B runs inside rnnkit.side_by_side() (the opt-in of issue 17)")
    a = p.parse_args(argv)
    roots = {"a": Path(a.a).resolve(), "b": Path(a.b).resolve()}
    for side, root in roots.items():
        if not (root / "benchmarks" / "bench_vs_torch.py").is_file():
            p.error(f"--{side} {root} has no benchmarks/bench_vs_torch.py")
    parts = ["train"] if a.trainer else ["train", "fwd"] if a.core else [x for x in a.parts.split(",") if x]
    runs = {"a": [], "b": []}
    loads = []
    for rnd in range(a.rounds):
        order = ("a", "b") if rnd % 2 == 0 else ("b", "a")      # alternate who goes first, too
        for side in order:
            loads.append((rnd, side, os.getloadavg()[0]))
            results = []
            if a.trainer:
                results = run_trainer(roots[side], a.cells.split(","), a.repeats, a.threads)
            elif a.core:
                results = run_core(roots[side], a.cells.split(","), [int(i) for i in a.sizes.split(",")],
                                   a.repeats, a.threads, a.b_side_by_side and side == "b")
            for cell in ([] if a.core or a.trainer else a.cells.split(",")):
                results += run_one(roots[side], cell, a.sizes, a.parts, a.repeats, a.threads)
            runs[side].append(results)
            print(f"round {rnd + 1}/{a.rounds} {side} done (load {loads[-1][2]:.2f})", flush=True)
    rows = summarise(runs, parts)
    print(f"\nA = {roots['a']}\nB = {roots['b']}\nrnnkit ms, median (min-max) over {a.rounds} rounds; "
          f"ratio = B/A (< 1: B faster); 1-min load averages seen: "
          f"{min(x[2] for x in loads):.2f}-{max(x[2] for x in loads):.2f}\n")
    print("| cell | size | part | A ms | B ms | B/A |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cell'].upper()} | {r['size']} | {r['part']} | {r['a_ms']:.3f} "
              f"({r['a_range'][0]:.3f}-{r['a_range'][1]:.3f}) | {r['b_ms']:.3f} "
              f"({r['b_range'][0]:.3f}-{r['b_range'][1]:.3f}) | {r['ratio']:.2f} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "loads": loads, "rows": rows,
                                            "runs": runs}, indent=1))
        print(f"\nwrote {a.json}")
    return rows


if __name__ == "__main__":
    main()
