"""The configuration grid shared by the core engine's finite-difference and PyTorch-parity tests."""
import contextlib
import copy
import itertools

import numpy as np
import pytest

import rnnkit
from rnnkit import backends

CELLS = {"rnn": rnnkit.RNN, "rnn_relu": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}
T, B, D, H = 5, 3, 3, 4
LENGTHS = [5, 2, 4]  # unsorted, one full-length, one short: exercises packing order and padding

GRID = list(itertools.product(CELLS, (1, 2), (False, True), (False, True), (False, True), (False, True)))
IDS = [f"{c}-L{l}-{'bi' if bi else 'uni'}-{'len' if ln else 'full'}-{'h0' if h0 else 'noh0'}-"
       f"{'dstate' if ds else 'nodstate'}" for c, l, bi, ln, h0, ds in GRID]
# the bidirectional cases again, with the two directions run side by side (`side_by_side`)
BIDI = [g for g in GRID if g[2]]
BIDI_IDS = [f"{i}-side-by-side" for g, i in zip(GRID, IDS) if g[2]]


@contextlib.contextmanager
def side_by_side():
    """Bidirectional layers run their two directions at once on two threads (`kernels._parallel`)
    inside the block, also at the tests' small sizes (where `worth` would say no); skips where that
    path cannot run (no Numba, no callable OpenBLAS). Yields the list that counts `pair` calls."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas, _parallel

    if not _blas.enabled() or _blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS rnnkit can call")
    threads = _blas.threads()
    _blas.set_threads(max(2, threads))
    calls = []
    pair = _parallel.pair
    _parallel.pair = lambda f0, f1: calls.append(1) or pair(f0, f1)
    try:
        with backends.set_backend("numba"), _parallel.side_by_side(force=True):
            yield calls
    finally:
        _parallel.pair = pair
        _blas.set_threads(threads)


def make_layer(cell, num_layers, bidirectional, dtype=np.float64, seed=0, **kw):
    extra = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    return CELLS[cell](D, H, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype,
                       seed=seed, **extra, **kw)


def make_inputs(cell, num_layers, bidirectional, seed=1):
    rng = np.random.default_rng(seed)
    nd = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, D))
    h0 = rng.standard_normal((num_layers * nd, B, H)) * 0.5
    state = (h0, rng.standard_normal(h0.shape) * 0.5) if cell == "lstm" else h0
    return x, state


def peak_bytes(layer, x, dout, **kw):
    """Peak traced bytes of a training step as it runs in a loop: the second forward + backward of a
    fresh copy of `layer`, so that what the layer holds from the first step (its cache, until the next
    forward) counts, measured from before the first step. The kernels are compiled, and lazily built
    workspaces exist, from the same pair on `layer` first. (One step traced after a warm-up pair on
    the same layer missed the cache it held: 1.23x for an LSTM whose loop peak was 2.06x.)"""
    import gc
    import tracemalloc

    twin = copy.deepcopy(layer)
    twin._cache = None                                               # a used layer's copy carries its cache
    layer.forward(x)
    layer.backward(dout, **kw)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(2):
            tracemalloc.reset_peak()
            twin.forward(x)
            twin.backward(dout, **kw)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
