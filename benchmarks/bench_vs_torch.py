"""rnnkit vs `torch.nn` on the CPU: training step, forward pass, single-step generation, memory.

For each cell (RNN, LSTM, GRU) and size (B, T, D, H) this measures, alternating rnnkit and torch runs in
one process with the same thread count:

  (a) train   one training step: forward plus full BPTT with a random upstream gradient `dout`
              (rnnkit `forward` + `backward`; torch `out = m(x); out.backward(dout)` with parameter
              gradients on and `x.requires_grad`, so both sides produce dx and every weight gradient);
  (b) fwd     the forward pass alone (torch under `torch.no_grad()`, rnnkit `forward` as used in eval);
  (c) step    1,000 single steps as in generation, batch `--step-batch` (default 1): rnnkit
              `layer.step(x_t, state)`; torch takes the faster of `nn.<Cell>Cell` and the `nn.<Cell>`
              module called on a length-1 sequence, both under `no_grad` (the best torch can do).

For (c) it also times the floor of any step(): one BLAS product of the concatenated [W_ih | W_hh] with
[x_t; h] per token and nothing else (column "step floor"; torch / floor is the best reachable ratio).

Reported: medians over `--repeats` runs, the ratio torch_time / rnnkit_time (> 1 means rnnkit is faster),
rnnkit's achieved GFLOP/s on the training step against the machine's float32 matrix-product peak
(a 2048² `np.matmul`, measured at the start of the run and again just before and after each case's
training-step timing: the share uses the higher of the case's two, so a machine that gets busier
during a run does not make the share read low against a quiet start, nor high), and rnnkit's peak NumPy memory during forward plus
backward in a training loop (tracemalloc over the second step of a new layer, from before its first:
what the layer holds from step to step counts) against the activations BPTT must keep (per layer and direction: h_t for every
step plus the gate activations the backward needs: RNN H, LSTM 4H + c_t, GRU 3H + the recurrent part of
the candidate pre-activation H, all per step and batch row). That is with the returned dx (for the RNN
with D = H/2 dx alone is half the kept activations). Beside it, "mem on data": the same measured for
a training step on data, `backward(dout, input_grad=False)`, which skips dx as torch does for an
input that does not require grad (what rnnkit's tasks do for feature input). The JSON also has dx's
and the parameter gradients' sizes and the ratios with them subtracted (mem_ratio_wo_dx,
mem_ratio_wo_returned).

Usage: python3 benchmarks/bench_vs_torch.py [--cells lstm,gru] [--sizes 0,1] [--repeats 5]
       [--parts train,fwd,step,mem] [--threads 2] [--json out.json] [--quick]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import rnnkit  # noqa: E402,F401

import numpy as np  # noqa: E402

SIZES = [  # (B, T, D, H, num_layers, bidirectional)
    (16, 200, 32, 64, 1, False),
    (32, 100, 64, 128, 1, False),
    (64, 100, 128, 256, 1, False),
    (128, 50, 256, 512, 1, False),
    (32, 100, 64, 128, 2, True),
]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
KEPT_PER_STEP = {"rnn": 1, "lstm": 6, "gru": 5}  # floats per (step, batch row) / H, see module docstring
STEP_COUNT = 1000


def size_label(s):
    b, t, d, h, layers, bidi = s
    extra = f" L{layers}{' bi' if bidi else ''}" if (layers > 1 or bidi) else ""
    return f"B{b} T{t} D{d} H{h}{extra}"


def set_threads(n):
    """Same thread count for NumPy's BLAS and torch (threadpoolctl if present, else env at start)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
        how = "threadpoolctl"
    except ImportError:
        how = "OMP/OPENBLAS_NUM_THREADS env (set before numpy import)"
    import torch

    torch.set_num_threads(n)
    return how


def median_time(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


WARM_S = 0.03  # untimed calls after a switch of library, at least this long (see `_timed_after_warm`)


def _timed_after_warm(fn, warm_s=None):
    """Seconds of one call of `fn`, run after untimed calls of it that took at least `warm_s` in all
    (at least one call; see `bench_case`). One untimed call is not enough for short calls: the LSTM
    B16 T200 H64 forward took 3.25 ms alone, 7.2 ms after one untimed call following torch and 3.2 ms
    after three (torch's and OpenBLAS's worker threads still spin or sleep for milliseconds)."""
    warm_s = WARM_S if warm_s is None else warm_s
    t0 = time.perf_counter()
    fn()
    while time.perf_counter() - t0 < warm_s:
        fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def matmul_peak(repeats=5, n=2048):
    """Measured float32 matrix-product peak in GFLOP/s (median of `repeats` n x n products)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    t = median_time(lambda: np.matmul(a, b, out=out), repeats)
    return 2.0 * n**3 / t / 1e9


def train_flops(cell, s):
    """Matrix-product FLOPs of forward + BPTT (3x the forward products: dX, dW_ih, dW_hh, dh)."""
    b, t, d, h, layers, bidi = s
    nd = 2 if bidi else 1
    g = GATES[cell] * h
    total = 0
    for layer in range(layers):
        din = d if layer == 0 else nd * h
        total += nd * 2 * t * b * (din + h) * g
    return 3 * total


def required_activation_bytes(cell, s):
    b, t, d, h, layers, bidi = s
    nd = 2 if bidi else 1
    return layers * nd * t * b * h * KEPT_PER_STEP[cell] * 4


def make_pair(cell, s, seed=0):
    import torch

    import rnnkit

    b, t, d, h, layers, bidi = s
    cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell]
    ours = cls(d, h, num_layers=layers, bidirectional=bidi, dtype=np.float32, seed=seed)
    tcls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    theirs = tcls(d, h, num_layers=layers, bidirectional=bidi)
    with torch.no_grad():  # same weights, so both sides do the same arithmetic on the same numbers
        for k, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(ours.params[k])))
    return ours, theirs


def bench_case(cell, s, parts, repeats, step_batch, step_count=STEP_COUNT):
    import torch

    b, t, d, h, layers, bidi = s
    rng = np.random.default_rng(1)
    x = rng.standard_normal((t, b, d), dtype=np.float32)
    nd = 2 if bidi else 1
    dout = rng.standard_normal((t, b, nd * h), dtype=np.float32)
    ours, theirs = make_pair(cell, s)
    xt = torch.from_numpy(x)
    doutt = torch.from_numpy(dout)
    res = {"cell": cell, "size": size_label(s), "B": b, "T": t, "D": d, "H": h,
           "num_layers": layers, "bidirectional": bidi}

    def ours_train():
        out, _ = ours.forward(x)
        ours.backward(dout)

    def torch_train():
        xr = xt.detach().requires_grad_(True)
        for p in theirs.parameters():
            p.grad = None
        out, _ = theirs(xr)
        out.backward(doutt)

    def ours_fwd():
        ours.forward(x)

    def torch_fwd():
        with torch.no_grad():
            theirs(xt)

    pairs = {"train": (ours_train, torch_train), "fwd": (ours_fwd, torch_fwd)}
    if "step" in parts and not bidi and layers == 1:
        xs = rng.standard_normal((step_count, step_batch, d), dtype=np.float32)
        xs_t = torch.from_numpy(xs)
        tcell_cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell]
        tcell = tcell_cls(d, h)
        with torch.no_grad():
            for k, p in tcell.named_parameters():
                p.copy_(torch.from_numpy(np.ascontiguousarray(ours.params[k + "_l0"])))

        def ours_step():
            state = None
            for i in range(step_count):
                _, state = ours.step(xs[i], state)

        def torch_step_module():
            with torch.no_grad():
                state = None
                for i in range(step_count):
                    _, state = theirs(xs_t[i : i + 1], state)

        def torch_step_cell():
            with torch.no_grad():
                state = None
                for i in range(step_count):
                    state = tcell(xs_t[i], state)

        pairs["step"] = (ours_step, (torch_step_module, torch_step_cell))
        # The floor for any step(): per token the weights are read once, [W_ih | W_hh] times [x_t; h],
        # here as one BLAS product over the concatenated weights with nothing else (no gates, no
        # Python layer). For batch 1 at H >= 256 the weights no longer fit a core's L2 and this product
        # is bound by memory bandwidth; torch_time / this time is the best ratio reachable.
        w_cat = np.concatenate([ours.params["weight_ih_l0"], ours.params["weight_hh_l0"]], 1)  # C order
        v_cat = np.ascontiguousarray(rng.standard_normal((step_batch, d + h), dtype=np.float32))
        prod = np.empty((step_batch, w_cat.shape[0]), np.float32)

        def weight_read_bound():
            for _ in range(step_count):
                if step_batch == 1:
                    np.dot(w_cat, v_cat[0], out=prod[0])
                else:
                    np.matmul(v_cat, w_cat.T, out=prod)

        bound = [_timed_after_warm(weight_read_bound) for _ in range(repeats)]
    for part in parts:
        if part not in pairs:
            continue
        ofn, tfn = pairs[part]
        tfns = tfn if isinstance(tfn, tuple) else (tfn,)
        ot, tts = [], [[] for _ in tfns]
        ofn()  # warm-up (compiles / allocates workspaces)
        for f in tfns:
            f()
        if part == "train":  # the peak around this case's timing, not only at the start of the run
            peaks = [matmul_peak(repeats=3)]
        # Alternate the two libraries so drift on a shared machine hits both. Each timed call follows
        # untimed calls of the same function (>= WARM_S): after a switch, the other library's worker
        # threads still spin (OpenBLAS and torch's OpenMP both busy-wait after a parallel call) and
        # one's own pool has to wake up; both would be timed.
        for _ in range(repeats):
            ot.append(_timed_after_warm(ofn))
            for f, acc in zip(tfns, tts):
                acc.append(_timed_after_warm(f))
        if part == "train":
            peaks.append(matmul_peak(repeats=3))
            res["matmul_peak_gflops"] = max(peaks)                  # the higher: a lower share
        o_med = statistics.median(ot)
        t_meds = [statistics.median(a) for a in tts]
        res[f"{part}_rnnkit_s"] = o_med
        res[f"{part}_torch_s"] = min(t_meds)
        if part == "step":
            res["step_torch_module_s"], res["step_torch_cell_s"] = t_meds
            res["step_bound_s"] = statistics.median(bound)
            res["step_bound_ratio"] = min(t_meds) / res["step_bound_s"]
        res[f"{part}_ratio"] = min(t_meds) / o_med
    if "train" in parts:
        res["train_gflops"] = train_flops(cell, s) / res["train_rnnkit_s"] / 1e9
        res["train_torch_gflops"] = train_flops(cell, s) / res["train_torch_s"] / 1e9
    if "mem" in parts:
        def traced_peak(**kw):
            # A training step as it runs in a loop: the second step of a layer that has not run yet,
            # measured from before its first, so that what the layer holds from one step into the
            # next (its cache until the next forward, its gradients) counts; the kernels are compiled
            # (and lazily built workspaces exist) from a pair on `ours` first. (One step traced after
            # a warm-up pair on the same layer, the method until 1 Dec evening, missed the cache held
            # from the pair: 1.23x for an LSTM whose loop peaked at 2.06x while the layer kept its
            # last cache through the next forward.)
            ours.forward(x)
            ours.backward(dout, **kw)
            fresh = make_pair(cell, s)[0]
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(2):
                dx = None                                            # the caller's last dx goes too
                tracemalloc.reset_peak()
                fresh.forward(x)
                dx, _ = fresh.backward(dout, **kw)
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            return peak, dx, fresh

        peak_data, _, _ = traced_peak(input_grad=False)
        peak, dx, fresh = traced_peak()
        req = required_activation_bytes(cell, s)
        # Training on data (x needs no gradient, as torch with x.requires_grad False): measured.
        res["mem_peak_data_mb"] = peak_data / 2**20
        res["mem_ratio_data"] = peak_data / req
        res["mem_peak_mb"] = peak / 2**20
        res["mem_required_mb"] = req / 2**20
        res["mem_ratio"] = peak / req
        # What backward returns, which must exist beside the activations (sizes of the arrays): dx and
        # the parameter gradients.
        returned = {"dx": dx.nbytes, "grads": sum(g.nbytes for g in fresh.grads.values())}
        for k, v in returned.items():
            res[f"mem_{k}_mb"] = v / 2**20
        res["mem_ratio_wo_dx"] = (peak - returned["dx"]) / req
        res["mem_ratio_wo_returned"] = (peak - sum(returned.values())) / req
    return res


def fmt_row(r, peak):
    def cell(part, key="ratio"):
        if f"{part}_rnnkit_s" not in r:
            return ["-", "-", "-"]
        return [f"{r[f'{part}_rnnkit_s'] * 1e3:.2f}", f"{r[f'{part}_torch_s'] * 1e3:.2f}",
                f"{r[f'{part}_ratio']:.2f}x"]

    peak = r.get("matmul_peak_gflops", peak)                      # measured around the case
    gf = f"{r['train_gflops']:.1f} ({100 * r['train_gflops'] / peak:.0f}%)" if "train_gflops" in r else "-"
    mem = (f"{r['mem_peak_mb']:.1f}/{r['mem_required_mb']:.1f} ({r['mem_ratio']:.2f})"
           if "mem_ratio" in r else "-")
    mem_dx = (f"{r['mem_peak_data_mb']:.1f} ({r['mem_ratio_data']:.2f})" if "mem_ratio_data" in r
              else f"- ({r['mem_ratio_wo_dx']:.2f} w/o dx)" if "mem_ratio_wo_dx" in r else "-")
    bound = (f"{r['step_bound_s'] * 1e3:.2f} ({r['step_bound_ratio']:.2f}x)" if "step_bound_s" in r else "-")
    return [r["cell"].upper(), r["size"], *cell("train"), *cell("fwd"), *cell("step"), bound, gf, mem,
            mem_dx]


HEADER = ["cell", "size", "train rk ms", "train torch ms", "train x", "fwd rk ms", "fwd torch ms",
          "fwd x", "step rk ms", "step torch ms", "step x", "step floor ms (torch/floor)",
          "rk GFLOP/s (% peak)",
          "mem MB peak/req (ratio)", "mem on data MB (ratio)"]


def markdown_table(rows, peak):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        lines.append("| " + " | ".join(fmt_row(r, peak)) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma list of rnn,lstm,gru")
    p.add_argument("--sizes", default=",".join(str(i) for i in range(len(SIZES))),
                   help="comma list of indices into: " + "; ".join(
                       f"{i}={size_label(s)}" for i, s in enumerate(SIZES)))
    p.add_argument("--parts", default="train,fwd,step,mem", help="comma list of train,fwd,step,mem")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="threads for BLAS and torch (default: cores)")
    p.add_argument("--step-batch", type=int, default=1, help="batch size of the step() benchmark")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="sizes 0 and 3, repeats 3 (< 2 minutes)")
    a = p.parse_args(argv)
    if a.quick:
        a.sizes, a.repeats = "0,3", 3
    threads = a.threads or os.cpu_count() or 1
    how = set_threads(threads)
    import torch

    import rnnkit

    cells = [c.strip().lower() for c in a.cells.split(",") if c.strip()]
    for c in cells:
        if c not in GATES:
            p.error(f"unknown cell {c!r}; choose from rnn, lstm, gru")
    try:
        sizes = [SIZES[int(i)] for i in a.sizes.split(",") if i.strip()]
    except (ValueError, IndexError):
        p.error(f"--sizes takes indices 0..{len(SIZES) - 1}, got {a.sizes!r}")
    parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    peak = matmul_peak()
    from rnnkit import backends

    backend = backends.default()
    print(f"threads={threads} ({how}); torch {torch.__version__} threads={torch.get_num_threads()}; "
          f"numpy {np.__version__}; rnnkit backend={backend}; float32 matmul peak {peak:.1f} GFLOP/s; "
          f"repeats={a.repeats}; step batch={a.step_batch}", flush=True)
    rows = []
    for s in sizes:
        for c in cells:
            r = bench_case(c, s, parts, a.repeats, a.step_batch)
            rows.append(r)
            print("  " + " | ".join(fmt_row(r, peak)), flush=True)
    print()
    print(markdown_table(rows, peak))
    if a.json:
        meta = {"threads": threads, "thread_control": how, "torch": torch.__version__,
                "numpy": np.__version__, "backend": backend, "matmul_peak_gflops": peak,
                "repeats": a.repeats, "step_batch": a.step_batch, "step_count": STEP_COUNT,
                "machine": platform.processor() or platform.machine(), "argv": sys.argv[1:]}
        Path(a.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
