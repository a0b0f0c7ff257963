"""A bidirectional layer inside a model step: its directions side by side (`rnnkit.side_by_side()`)
vs one after the other, with OpenBLAS's idle spin short (OPENBLAS_THREAD_TIMEOUT=22) and default.

Why: `bench_vs_torch` times a layer alone. In a model, a multi-threaded BLAS product (here a Linear
head over every step) runs between the layer's forward and backward; with OpenBLAS's default idle
spin (~0.1 s) its worker thread then competes with the two directions (`rnnkit/kernels/_parallel.py`).
Each setting runs in its own process (OpenBLAS reads the spin when NumPy loads it), the two paths
alternate inside it, and the numbers are medians of `--repeats` steps per round over `--rounds`
rounds. With the default spin the side-by-side path is forced here (rnnkit would not take it).

`--one-thread` times the layer alone on one BLAS thread in this process, side by side against one after
the other (the choice rnnkit makes there by the machine's load, `kernels._parallel.worth`).

Usage: python3 benchmarks/bench_side_by_side.py [--cells lstm,gru,rnn] [--repeats 5] [--rounds 4]
       [--head 256] [--json out.json] [--one-thread]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, str(Path(__file__).resolve().parent))    # bench_vs_torch.median_time


def _two_threads():
    """NumPy's BLAS on two threads inside the block if it had one (restored after): on one thread the
    directions run side by side without `side_by_side()`, and `measure` compares the block with none."""
    import contextlib

    from rnnkit.kernels import _blas
    n = _blas.threads()
    if n is None or n >= 2:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def switched():
        _blas.set_threads(2)
        try:
            yield
        finally:
            _blas.set_threads(n)
    return switched()


def measure(cells, repeats, rounds, head, force=True):
    """In this process: {cell: {"side": [ms per round], "seq": [...]}} for B32 T100 D64 H128, 2 layers,
    NumPy's BLAS on two or more threads (`_two_threads`); force: side by side even where
    `_parallel.worth` says no (the default spin)."""
    import contextlib

    import numpy as np

    import rnnkit
    from bench_vs_torch import median_time
    from rnnkit import backends
    from rnnkit.kernels import _parallel
    B, T, D, H = 32, 100, 64, 128
    rng = np.random.default_rng(0)
    out = {}
    for cell in cells:
        layer = getattr(rnnkit, cell.upper())(D, H, num_layers=2, bidirectional=True, seed=0)
        lin = rnnkit.Linear(2 * H, head, seed=1)
        x = rng.standard_normal((T, B, D), dtype=np.float32)
        dlogits = rng.standard_normal((T * B, head), dtype=np.float32) * 1e-3

        def step():
            h, _ = layer.forward(x)
            lin.forward(h.reshape(T * B, 2 * H))             # the head's products: two BLAS threads
            dh = lin.backward(dlogits).reshape(T, B, 2 * H)
            layer.backward(dh, input_grad=False)

        res = {"side": [], "seq": []}
        for _ in range(rounds):
            for mode in res:
                on = _parallel.side_by_side(force) if mode == "side" else contextlib.nullcontext()
                with _two_threads(), on:
                    assert layer._side_by_side(backends.get(layer.backend), T, B) == (mode == "side")
                    res[mode].append(median_time(step, repeats) * 1e3)
        out[cell] = res
    return out


def measure_one_thread(cells, repeats, rounds):
    """In this process, NumPy's BLAS on one thread: {cell: {"side": [...], "seq": [...]}} ms per
    forward + backward of the B32 T100 D64 H128 2-layer bidirectional layer, its directions side by
    side (what rnnkit does by default there on an idle machine) or one after the other (what it does
    while the cores are full), `worth` forced either way and the two alternated round by round."""
    import numpy as np

    import rnnkit
    from bench_vs_torch import median_time
    from rnnkit.kernels import _blas, _parallel
    threads = _blas.threads()
    if threads is None:
        sys.exit("error: NumPy's BLAS is not an OpenBLAS rnnkit can call")
    _blas.set_threads(1)
    B, T, D, H = 32, 100, 64, 128
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, 2 * H), dtype=np.float32)
    real, out = _parallel.worth, {}
    try:
        for cell in cells:
            layer = getattr(rnnkit, cell.upper())(D, H, num_layers=2, bidirectional=True, seed=0)

            def step():
                layer.forward(x)
                layer.backward(dout)

            res = {"side": [], "seq": []}
            for r in range(rounds):
                for mode in (("side", "seq") if r % 2 == 0 else ("seq", "side")):
                    _parallel.worth = (lambda *a, on=mode == "side": on)
                    res[mode].append(median_time(step, repeats) * 1e3)
            out[cell] = res
    finally:
        _parallel.worth = real
        _blas.set_threads(threads)
    return out


def run_setting(spin, args):
    """measure() in a fresh process with OPENBLAS_THREAD_TIMEOUT=spin (None: OpenBLAS's default)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if spin is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = spin
    code = (f"import sys; sys.path.insert(0, {SRC!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"import json, bench_side_by_side as b\n"
            f"print(json.dumps(b.measure({args.cells.split(',')!r}, {args.repeats}, {args.rounds}, "
            f"{args.head}, force={spin is None})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"error: the run with spin {spin} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated: rnn, lstm, gru")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per round and path (median)")
    p.add_argument("--rounds", type=int, default=4, help="rounds of side/sequential per process")
    p.add_argument("--head", type=int, default=256, help="output width of the Linear head")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--one-thread", action="store_true",
                   help="the layer alone on one BLAS thread: side by side vs one after the other")
    a = p.parse_args(argv)
    unknown = set(a.cells.split(",")) - {"rnn", "lstm", "gru"}
    if unknown or a.repeats < 1 or a.rounds < 1 or a.head < 1:
        p.error(f"unknown cells {sorted(unknown)}" if unknown else "--repeats, --rounds, --head must be >= 1")
    if a.one_thread:
        import os
        before = os.getloadavg()[0]
        res = measure_one_thread(a.cells.split(","), a.repeats, a.rounds)
        print(f"2-layer bidirectional B32 T100 D64 H128, forward + backward, one BLAS thread; ms, median "
              f"of rounds (min-max); load average {before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
        print("| cell | side by side | one after the other | speed-up |")
        print("|---|---|---|---|")
        for cell, r in res.items():
            side, seq = statistics.median(r["side"]), statistics.median(r["seq"])
            print(f"| {cell.upper()} | {side:.1f} ({min(r['side']):.1f}-{max(r['side']):.1f}) | "
                  f"{seq:.1f} ({min(r['seq']):.1f}-{max(r['seq']):.1f}) | {seq / side:.2f}x |")
        if a.json:
            Path(a.json).write_text(json.dumps({"args": vars(a), "results": res}, indent=1))
        return
    settings = {"short spin (OPENBLAS_THREAD_TIMEOUT=22)": "22", "default spin": None}
    results = {name: run_setting(spin, a) for name, spin in settings.items()}
    print("2-layer bidirectional, B32 T100 D64 H128, Linear head of width "
          f"{a.head} between forward and backward; ms per step, median of rounds (min-max)\n")
    print("| setting | cell | side by side | one after the other | speed-up |")
    print("|---|---|---|---|---|")
    for name, res in results.items():
        for cell, r in res.items():
            side, seq = statistics.median(r["side"]), statistics.median(r["seq"])
            print(f"| {name} | {cell.upper()} | {side:.1f} ({min(r['side']):.1f}-{max(r['side']):.1f}) | "
                  f"{seq:.1f} ({min(r['seq']):.1f}-{max(r['seq']):.1f}) | {seq / side:.2f}x |")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "results": results}, indent=1))
        print(f"\nwrote {a.json}")


if __name__ == "__main__":
    main()
