"""The three ways a recurrent layer can run here, timed in one process, alternated round by round: the
compiled time loops calling NumPy's BLAS ("numba", the default), the fused kernels' Python loops (one
np.matmul and one kernel call per step: what "numba" runs where NumPy's CBLAS symbol is not found,
`kernels._blas.disabled()`), and the NumPy reference (`backend="numpy"`).

Why: issue 17 asks each path to earn its place by measurement. The Python loop is the fast path on a
machine where rnnkit cannot call NumPy's BLAS from compiled code (no /proc/self/maps: macOS, Windows;
a BLAS without a `cblas_?gemm` symbol); without it that machine would run the reference.

Reported per cell, size and part (train = forward + backward, fwd): ms per call, median (min-max) over
rounds of the median of `--repeats` calls, and the ratios to the compiled loop.

Usage: python3 benchmarks/fallback_paths.py [--cells rnn,lstm,gru] [--sizes 0,1,2,3,4] [--rounds 3]
       [--repeats 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PATHS = ("compiled loop", "python loop", "numpy")


def measure(cells, sizes, rounds, repeats):
    """[{cell, size, part, path: [ms per round]}] in this process."""
    import numpy as np

    import rnnkit
    from bench_vs_torch import SIZES, median_time
    from rnnkit.kernels import _blas

    if not _blas.AVAILABLE:
        sys.exit("error: NumPy's CBLAS gemm was not found here: no compiled loop to compare with")
    rows = []
    for cell in cells:
        for i in sizes:
            B, T, D, H, L, bi = SIZES[i]
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, B, D), dtype=np.float32)
            dout = rng.standard_normal((T, B, H * (2 if bi else 1)), dtype=np.float32)
            layers = {p: getattr(rnnkit, cell.upper())(D, H, num_layers=L, bidirectional=bi, seed=0,
                                                       backend="numpy" if p == "numpy" else "numba")
                      for p in PATHS}
            times = {(part, p): [] for part in ("train", "fwd") for p in PATHS}
            for r in range(rounds):
                order = PATHS if r % 2 == 0 else PATHS[::-1]
                for p in order:
                    layer = layers[p]

                    def train():
                        layer.forward(x)
                        layer.backward(dout)

                    with _blas.disabled() if p == "python loop" else contextlib.nullcontext():
                        times[("train", p)].append(median_time(train, repeats) * 1e3)
                        times[("fwd", p)].append(median_time(lambda: layer.forward(x), repeats) * 1e3)
            size = f"B{B} T{T} D{D} H{H}" + (f" L{L} bi" if bi else "")
            for part in ("train", "fwd"):
                rows.append({"cell": cell, "size": size, "part": part,
                             **{p: times[(part, p)] for p in PATHS}})
    return rows


def table(rows) -> str:
    def cell(ts):
        return f"{statistics.median(ts):.2f} ({min(ts):.2f}-{max(ts):.2f})"
    out = ["| cell | size | part | compiled loop ms | python loop ms | numpy ms | python/compiled "
           "| numpy/compiled |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = statistics.median(r["compiled loop"])
        out.append(f"| {r['cell'].upper()} | {r['size']} | {r['part']} | "
                   f"{cell(r['compiled loop'])} | {cell(r['python loop'])} | {cell(r['numpy'])} | "
                   f"{statistics.median(r['python loop']) / c:.2f} | {statistics.median(r['numpy']) / c:.2f} |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="rnn,lstm,gru")
    p.add_argument("--sizes", default="0,1,2,3,4")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    cells = [c for c in a.cells.split(",") if c]
    bad = set(cells) - {"rnn", "lstm", "gru"}
    if bad or a.rounds < 1 or a.repeats < 1:
        p.error(f"unknown cells {sorted(bad)}" if bad else "--rounds and --repeats must be >= 1")
    try:
        sizes = [int(s) for s in a.sizes.split(",") if s]
    except ValueError:
        p.error(f"--sizes must be comma-separated indices, got {a.sizes!r}")
    before = os.getloadavg()
    rows = measure(cells, sizes, a.rounds, a.repeats)
    print(f"ms per call, median (min-max) over {a.rounds} rounds; load averages "
          f"{before[0]:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print(table(rows))
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
