"""The per-step product of a fused time loop, h_{t-1} W_hh^T for T steps in one compiled call, through
rnnkit's own binding of NumPy's CBLAS (`kernels/_blas.py`) against Numba's `np.dot(a, b, out)`
(SciPy's `cython_blas`, the binding Numba maintains), with each library's OpenBLAS at 2 threads and
at 1 thread (threadpoolctl, per library), alternated in rounds in one process.

Why: issue 17 asks to drop the hand-made binding for Numba's where measurement allows; issue 16 asks
for the per-step products on one thread on a busy machine. Numba's `np.dot` goes to SciPy's OpenBLAS,
a library (and thread pool) apart from NumPy's, so its thread count could be set for the per-step
products alone.

Usage: python3 benchmarks/blas_binding.py [--rounds 5] [--steps 100]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

SIZES = [(16, 64, 4), (32, 128, 4), (64, 256, 4), (128, 512, 4), (32, 256, 4)]  # (B, H, G): LSTM


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args(argv)
    import scipy.linalg  # noqa: F401  loads SciPy's OpenBLAS, which Numba's np.dot calls
    from numba import njit
    from threadpoolctl import ThreadpoolController

    from rnnkit.kernels import _blas
    from rnnkit.kernels._math import JIT

    @njit(**JIT)
    def own(hs, W, r):
        for t in range(hs.shape[0]):
            _blas.gemm(hs[t], W, r, 0.0)

    @njit(**JIT)
    def numba_dot(hs, W, r):
        for t in range(hs.shape[0]):
            np.dot(hs[t], W, r)

    ctl = ThreadpoolController()
    libs = {"numpy": ctl.select(filepath=[i["filepath"] for i in ctl.info() if "64_" in i["filepath"]]),
            "scipy": ctl.select(filepath=[i["filepath"] for i in ctl.info()
                                          if "openblas" in i["filepath"] and "64_" not in i["filepath"]])}
    cores = os.cpu_count()
    ways = {f"own (NumPy's BLAS), {n} thr": (own, "numpy", n) for n in (cores, 1)}
    ways.update({f"np.dot (SciPy's BLAS), {n} thr": (numba_dot, "scipy", n) for n in (cores, 1)})
    print(f"load average {os.getloadavg()[0]:.2f}; {a.steps} steps per call; ms per call, median "
          f"(min-max) of {a.rounds} rounds", flush=True)
    print("| B H G | " + " | ".join(ways) + " |")
    print("|---|" + "---|" * len(ways))
    for B, H, G in SIZES:
        rng = np.random.default_rng(0)
        hs = rng.standard_normal((a.steps, B, H), dtype=np.float32)
        W = np.ascontiguousarray(rng.standard_normal((G * H, H), dtype=np.float32).T)
        r = np.empty((B, G * H), np.float32)
        times = {k: [] for k in ways}
        for f, _, _ in ways.values():
            f(hs, W, r)                                              # compile / load
        for _ in range(a.rounds):
            for name, (f, lib, n) in ways.items():
                with libs[lib].limit(limits=n):
                    f(hs, W, r)
                    reps = []
                    for _ in range(5):
                        t0 = time.perf_counter()
                        f(hs, W, r)
                        reps.append(time.perf_counter() - t0)
                times[name].append(statistics.median(reps) * 1e3)
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for v in times.values()]
        print(f"| {B} {H} {G} | " + " | ".join(cells) + " |", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
