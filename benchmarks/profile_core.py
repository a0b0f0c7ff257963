"""Where a training step's time goes: cProfile of rnnkit forward + backward for a cell and size.

By default profiles LSTM, GRU and RNN at the smallest and the largest benchmark size
((16, 200, 32, 64) and (128, 50, 256, 512)), fused kernels and the NumPy fallback
(RNNKIT_NO_NUMBA=1 or --numpy), and prints the top functions by total and cumulative time. The
per-step BLAS call shows up as `numpy.matmul` (or `{built-in method numpy...}`), the fused kernels as
the Numba dispatchers `forward_step`/`backward_step`, the big products in `weight_grads` (NumPy
path) or `backward_in_chunks` (fused path).

With the compiled time loops (`kernels._blas`) a whole forward, and each backward chunk, is one Numba
call, so cProfile no longer sees the steps. `--breakdown` times the parts of a fused training step
instead, each as the median of interleaved calls: the input projection, the forward recurrence (the
per-step products and gate kernels), the backward's per-step recurrence and its chunked weight-gradient
products, with each part's GFLOP/s; the per-step products are also timed alone (a Python loop of
np.matmul, so they include about 1 us of dispatch per step).

Usage: python3 benchmarks/profile_core.py [--cells lstm] [--sizes small,large] [--repeats 3] [--numpy]
       python3 benchmarks/profile_core.py --breakdown [--repeats 9]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import rnnkit  # noqa: E402,F401

import numpy as np  # noqa: E402

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
    print(f"=== {cell.upper()} B{b} T{t} D{d} H{h} backend={layer.backend}: first call "
          f"{first * 1e3:.1f} ms, profiled step {per_step * 1e3:.1f} ms (profiler overhead included)")
    print(text)
    return text


def breakdown_case(cell, size, repeats=9):
    """Median ms of each part of a fused training step of `cell` at (B, T, D, H); returns a dict."""
    import statistics

    import rnnkit
    import importlib

    from rnnkit import backends
    from rnnkit.kernels import _seq

    b, t, d, h = size
    layer = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell](d, h, dtype=np.float32, seed=0)
    if not backends.available("numba"):
        raise SystemExit("--breakdown needs the fused kernels (Numba installed, RNNKIT_NO_NUMBA unset)")
    fused = importlib.import_module(f"rnnkit.kernels.{cell}")
    p = layer._cell_params(0, 0)
    gh = p["weight_hh"].shape[0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t, b, d), dtype=np.float32)
    dout = rng.standard_normal((t, b, h), dtype=np.float32)
    state = tuple(np.zeros((b, h), np.float32) for _ in range(layer.cell.N_STATES))
    cache = fused.forward(p, x, state)[2]
    proj = np.empty((t, b, gh), np.float32)
    hs = np.zeros((t + 1, b, h), np.float32)
    w_hh_t = np.ascontiguousarray(p["weight_hh"].T)
    r = np.empty((b, gh), np.float32)
    dz = np.zeros((t, b, gh), np.float32)
    dh = np.empty((b, h), np.float32)

    def fwd_products():
        for i in range(t):
            np.matmul(hs[i], w_hh_t, out=r)

    def bwd_products():
        for i in range(t):
            np.matmul(dz[i], p["weight_hh"], out=dh)

    def no_steps(t0, t1, buf, tail):
        if t1 == t:                                                  # zeros, not np.empty's garbage
            buf[...] = 0                                             # (NaN/denormals would be slow)
            if tail is not None:
                tail[...] = 0

    parts = {
        "forward": lambda: fused.forward(p, x, state),
        "projection": lambda: _seq.project(p, x, proj),
        "backward": lambda: fused.backward(p, cache, dout, None),
        "weight gradients": lambda: _seq.backward_in_chunks(p, x, cache.hs[:-1], gh, no_steps,
                                                            tail=h if cell == "gru" else 0),
        "per-step products fwd": fwd_products,
        "per-step products bwd": bwd_products,
    }
    times = {k: [] for k in parts}
    for f in parts.values():
        f()
    for _ in range(repeats):
        for k, f in parts.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    ms["forward recurrence"] = ms["forward"] - ms["projection"]
    ms["backward recurrence"] = ms["backward"] - ms["weight gradients"]
    flops = {"projection": 2 * t * b * d * gh, "per-step products fwd": 2 * t * b * h * gh,
             "per-step products bwd": 2 * t * b * h * gh, "weight gradients": 2 * t * b * gh * (2 * d + h)}
    print(f"=== {cell.upper()} B{b} T{t} D{d} H{h}: median ms of {repeats} interleaved calls")
    for k in ("forward", "projection", "forward recurrence", "per-step products fwd", "backward",
              "backward recurrence", "per-step products bwd", "weight gradients"):
        rate = f"  ({flops[k] / ms[k] / 1e6:.0f} GFLOP/s)" if k in flops else ""
        print(f"  {k:24s} {ms[k]:8.2f}{rate}")
    return ms


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru,rnn")
    p.add_argument("--sizes", default="small,large", help="comma list of small,large")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--numpy", action="store_true", help="profile the pure-NumPy fallback")
    p.add_argument("--breakdown", action="store_true", help="time the parts of a fused training step")
    a = p.parse_args(argv)
    import rnnkit

    if a.breakdown:
        for size in a.sizes.split(","):
            for cell in a.cells.split(","):
                breakdown_case(cell.strip(), SIZES[size], max(a.repeats, 3))
        return
    if a.numpy:
        rnnkit.set_backend("numpy")
    for size in a.sizes.split(","):
        if size not in SIZES:
            p.error(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
        for cell in a.cells.split(","):
            profile_case(cell.strip(), SIZES[size], a.repeats, a.top)


if __name__ == "__main__":
    main()
