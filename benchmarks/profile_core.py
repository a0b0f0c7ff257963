"""Where a training step's time goes: cProfile of rnnkit forward + backward for a cell and size.

By default profiles LSTM, GRU and RNN at the smallest and the largest benchmark size
((16, 200, 32, 64) and (128, 50, 256, 512)), fused kernels and the NumPy fallback
(RNNKIT_NO_NUMBA=1 or --numpy), and prints the top functions by total and cumulative time. The
per-step BLAS call shows up as `numpy.matmul` (or `{built-in method numpy...}`), the fused kernels as
the Numba dispatchers `forward_step`/`backward_step`, the big products in `weight_grads` (NumPy
path) or `backward_in_chunks` (fused path).

Usage: python3 benchmarks/profile_core.py [--cells lstm] [--sizes small,large] [--repeats 3] [--numpy]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SIZES = {"small": (16, 200, 32, 64), "large": (128, 50, 256, 512)}


def profile_case(cell, size, repeats=3, top=12):
    """Profile `repeats` training steps of `cell` at size (B, T, D, H); print and return the stats text."""
    import rnnkit

    b, t, d, h = size
    cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
    layer = cls(d, h, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t, b, d), dtype=np.float32)
    dout = rng.standard_normal((t, b, h), dtype=np.float32)
    t0 = time.perf_counter()
    layer.forward(x)                                                 # compile / load kernels outside
    layer.backward(dout)
    first = time.perf_counter() - t0
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(repeats):
        layer.forward(x)
        layer.backward(dout)
    prof.disable()
    per_step = (time.perf_counter() - t0) / repeats
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    for key in ("tottime", "cumulative"):
        stats.sort_stats(key).print_stats(top)
    text = buf.getvalue()
    print(f"=== {cell.upper()} B{b} T{t} D{d} H{h} backend={rnnkit.kernels.backend()}: first call "
          f"{first * 1e3:.1f} ms, profiled step {per_step * 1e3:.1f} ms (profiler overhead included)")
    print(text)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru,rnn")
    p.add_argument("--sizes", default="small,large", help="comma list of small,large")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--numpy", action="store_true", help="profile the pure-NumPy fallback")
    a = p.parse_args(argv)
    import rnnkit

    if a.numpy:
        rnnkit.kernels.set_enabled(False)
    for size in a.sizes.split(","):
        if size not in SIZES:
            p.error(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
        for cell in a.cells.split(","):
            profile_case(cell.strip(), SIZES[size], a.repeats, a.top)


if __name__ == "__main__":
    main()
