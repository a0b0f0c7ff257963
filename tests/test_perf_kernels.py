"""The fused Numba kernels (`rnnkit.kernels`) and the pure-NumPy fallback both stay exact.

The core tests (test_core_*.py) run on the default path, the fused kernels when Numba imports. Here the
float64 finite-difference grid and the torch-parity grid run again with the kernels switched off, the
two paths are compared in float32 (the fast activations) and float64, and the benchmark and profile
scripts are smoke-run on a tiny case.
"""
import copy
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import backends
from rnnkit.cells import CELLS
from core_cases import GRID, IDS

ROOT = Path(__file__).resolve().parents[1]
needs_numba = pytest.mark.skipif(not backends.available("numba"), reason="numba is not installed")


def _sbs(layer, T, B):
    """Would this layer run its two directions side by side at (T, B)?"""
    return layer._side_by_side(backends.get(layer.backend), T, B)


@pytest.fixture
def numpy_path():
    with backends.set_backend("numpy"):
        yield


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", GRID, ids=IDS)
@pytest.mark.slow
def test_numpy_fallback_matches_finite_differences(numpy_path, cell, num_layers, bidirectional,
                                                   use_lengths, use_h0, use_dstate):
    from test_core_gradcheck import test_bptt_matches_finite_differences as check

    assert backends.default() == "numpy"
    check(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", GRID, ids=IDS)
@pytest.mark.slow
def test_numpy_fallback_matches_torch(numpy_path, cell, num_layers, bidirectional, use_lengths, use_h0,
                                      use_dstate):
    pytest.importorskip("torch")
    from test_core_torch import test_matches_torch as check

    check(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)


def _both_paths(name, dtype, masked, bias=True, T=7, strided=False, **kw):
    """Every output of forward, backward (with dh_seq) and step, from the fused and the NumPy path.

    The fused path runs backward twice on the same forward ("again" holds the second dx and
    gradients); strided: dout is a non-contiguous half of a wider array (as in a bidirectional layer).
    """
    cell = CELLS[name]
    G, B, D, H = cell.GATES, 3, 5, 6
    rng = np.random.default_rng(0)
    p = {"weight_ih": rng.standard_normal((G * H, D)), "weight_hh": rng.standard_normal((G * H, H))}
    if bias:
        p.update(bias_ih=rng.standard_normal(G * H), bias_hh=rng.standard_normal(G * H))
    p = {k: (0.5 * v).astype(dtype) for k, v in p.items()}
    x = rng.standard_normal((T, B, D)).astype(dtype)
    state = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(cell.N_STATES))
    dstate = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(cell.N_STATES))
    dout = rng.standard_normal((T, B, 2 * H if strided else H)).astype(dtype)[:, :, :H]
    mask = None
    if masked:
        lengths = np.array([T, max(1, T - 4), max(1, T - 2)])
        mask = (np.arange(T)[:, None] < lengths[None]).astype(dtype)[:, :, None]
    results = []
    for fused in (True, False):
        be = backends.get("numba" if fused else "numpy")
        out, fin, cache = be.forward(name, p, x, state, mask, **kw)
        seq = np.empty((T, B, H), dtype)
        dx, d0, grads = be.backward(name, p, cache, dout, dstate, dh_seq=seq)
        again = be.backward(name, p, cache, dout, dstate) if fused else None
        stepped = tuple(np.empty_like(a) for a in state)
        assert be.stepper(name, p, B, **kw)(x[0], state, stepped)
        results.append({"out": out, "dx": dx, "dh_seq": seq, **{f"state{i}": s for i, s in enumerate(fin)},
                        **{f"dstate{i}": s for i, s in enumerate(d0)}, **grads,
                        **{f"step{i}": s for i, s in enumerate(stepped)}})
        if again is not None:
            assert np.array_equal(again[0], dx), "a second backward of the same forward changed dx"
            for k in grads:
                assert np.array_equal(again[2][k], grads[k]), f"a second backward changed {k}"
    return results


@pytest.fixture(params=["compiled loop", "python loop"])
def time_loop(request):
    """Both ways the fused kernels walk time: the whole loop compiled with NumPy's BLAS called from
    inside (`kernels._blas`, the default where the symbol is found) and the Python loop of np.matmul
    and one kernel call per step (the fallback for other BLAS libraries)."""
    if request.param == "python loop":
        from rnnkit.kernels import _blas

        with _blas.disabled():
            yield request.param
        return
    if backends.available("numba"):
        from rnnkit.kernels import _blas

        if not _blas.AVAILABLE:
            pytest.skip("NumPy's CBLAS gemm was not found in this process")
    yield request.param


@needs_numba
@pytest.mark.parametrize("name,kw", [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}),
                                     ("gru", {})])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 5e-6)])
def test_fused_kernels_match_the_numpy_cells(time_loop, name, kw, masked, dtype, tol):
    fused, ref = _both_paths(name, dtype, masked, **kw)
    assert fused.keys() == ref.keys()
    for k in ref:
        assert fused[k].dtype == ref[k].dtype == dtype, k
        err = np.abs(fused[k] - ref[k]).max() / max(1.0, np.abs(ref[k]).max())
        assert err < tol, f"{name} {k}: fused and NumPy paths differ by {err:.2e}"


@needs_numba
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_fused_kernels_without_bias(time_loop, name):
    fused, ref = _both_paths(name, np.float64, True, bias=False)
    for k in ref:
        np.testing.assert_allclose(fused[k], ref[k], atol=1e-12, err_msg=k)


@needs_numba
@pytest.mark.parametrize("name,kw", [("rnn", {}), ("lstm", {}), ("gru", {})])
@pytest.mark.parametrize("T,K", [(7, 1), (7, 3), (6, 3), (2, 3), (1, 3), (1, 1), (7, None)])
@pytest.mark.parametrize("masked", [False, True])
def test_chunked_weight_gradients_match_the_numpy_cells(monkeypatch, time_loop, name, kw, T, K, masked):
    """The fused backward takes the weight gradients K steps at a time (`kernels._seq`): forced small K,
    T not a multiple of K, T < K, T = 1, padding and a strided dout all give the NumPy cell's numbers,
    and a second backward on the same forward gives the same ones."""
    from rnnkit.kernels import _seq

    monkeypatch.setattr(_seq, "CHUNK_STEPS", K)
    monkeypatch.setattr(_seq, "SCRATCH_PARTS", 7)     # python loop: later chunks add in 7 row blocks
    fused, ref = _both_paths(name, np.float64, masked, T=T, strided=True, **kw)
    for k in ref:
        np.testing.assert_allclose(fused[k], ref[k], rtol=0, atol=1e-12, err_msg=k)


@needs_numba
@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", GRID, ids=IDS)
@pytest.mark.slow
def test_chunked_fused_path_matches_torch(monkeypatch, cell, num_layers, bidirectional, use_lengths,
                                          use_h0, use_dstate):
    """The torch-parity grid (T = 5) with 2-step chunks: three chunks, the first one short."""
    pytest.importorskip("torch")
    from rnnkit.kernels import _seq
    from test_core_torch import test_matches_torch as check

    monkeypatch.setattr(_seq, "CHUNK_STEPS", 2)
    check(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)


def _peak_bytes(layer, x, dout, **kw):
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


@needs_numba
def test_training_step_memory_stays_near_the_kept_activations():
    """tracemalloc peak of forward + backward (deterministic: no timing) for an LSTM against the 6H
    floats per step and row the forward keeps. Measured 1.24 with the chunked weight gradients; the
    whole-sequence dz it replaced gave 1.8, the NumPy cells 1.95."""
    T, B, D, H = 100, 32, 32, 64
    layer = rnnkit.LSTM(D, H, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, H), dtype=np.float32)
    ratio = _peak_bytes(layer, x, dout) / (T * B * 6 * H * 4)
    assert ratio < 1.35, f"peak memory {ratio:.2f}x the kept activations"


# -- bidirectional layers: both directions write their states into one buffer, the layer's output ----

@pytest.fixture(params=["compiled loop", "side by side", "python loop", "numpy cells"])
def layer_path(request):
    """A layer's four paths: the fused kernels with either time loop (see `time_loop`), the compiled
    loops with the two directions side by side (`core_cases.side_by_side`), the NumPy cells."""
    if request.param == "numpy cells":
        with backends.set_backend("numpy"):
            yield request.param
        return
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas

    if request.param == "python loop":
        with _blas.disabled():
            yield request.param
        return
    if request.param == "side by side":
        from core_cases import side_by_side

        with side_by_side():
            yield request.param
        return
    if not _blas.AVAILABLE:
        pytest.skip("NumPy's CBLAS gemm was not found in this process")
    yield request.param


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bidirectional_output_is_the_buffer_both_directions_keep(layer_path, cell):
    """Without lengths the output of each layer is the (T, B, 2H) buffer that holds both directions'
    states (no concatenated copy), and the next layer keeps that same buffer as its input; with lengths
    (a per-sequence reversal) the output is concatenated."""
    from core_cases import H, LENGTHS, make_inputs, make_layer

    layer = make_layer(cell, 2, True)
    x, state = make_inputs(cell, 2, True)
    out, _ = layer.forward(x, state)
    c = layer._cache.caches                             # caches of (layer, direction) 00, 01, 10, 11
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out[:, :, :H], c[2].hs[1:])
    np.testing.assert_array_equal(out[:, :, H:], c[3].hs[:0:-1])
    assert np.shares_memory(out, c[2].hs) and np.shares_memory(out, c[3].hs)
    assert np.shares_memory(c[2].x, c[0].hs) and np.shares_memory(c[2].x, c[1].hs)
    out_len, _ = layer.forward(x, state, lengths=LENGTHS)
    assert not any(np.shares_memory(out_len, cache.hs) for cache in layer._cache.caches)


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("num_layers,batch_first", [(1, False), (2, False), (2, True)])
def test_shared_buffer_matches_the_concatenating_path(layer_path, cell, num_layers, batch_first):
    """The shared-buffer path (no lengths) against the concatenating one (lengths all T: same numbers,
    an all-ones mask), float64: outputs, final states, dx, dstate0, every gradient and the recorded
    dL/dh, with h0, dstate and dropout between layers in training mode (both layers seeded alike, so
    the same masks); a second backward of the same forward gives the same numbers."""
    from core_cases import B, H, T, make_inputs, make_layer

    ours, ref = (make_layer(cell, num_layers, True, seed=5, dropout=0.3, batch_first=batch_first)
                 for _ in range(2))
    x, state = make_inputs(cell, num_layers, True)
    if batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    rng = np.random.default_rng(7)
    dout = rng.standard_normal((B, T, 2 * H) if batch_first else (T, B, 2 * H))
    dstate = tuple(rng.standard_normal(a.shape) for a in state) if cell == "lstm" else \
        rng.standard_normal(state.shape)

    def parts(name, s):                                 # an LSTM's (h, c) or a single array
        return {f"{name}{i}": a for i, a in enumerate(s if isinstance(s, tuple) else (s,))}

    def run(layer, lengths):
        layer.record_hidden_grads = True
        out, final = layer.forward(x, state, lengths=lengths)
        dx, dstate0 = layer.backward(dout, dstate)
        return {"out": out, "dx": dx, **parts("final", final), **parts("dstate0_", dstate0),
                **{f"grad {k}": g.copy() for k, g in layer.grads.items()},
                **{f"dh {k}": g for k, g in layer.hidden_grads.items()}}

    got = run(ours, None)
    again = ours.backward(dout, dstate)[0]
    assert np.array_equal(again, got["dx"]), "a second backward of the same forward changed dx"
    for k, g in ours.grads.items():
        assert np.array_equal(g, got[f"grad {k}"]), f"a second backward changed {k}"
    want = run(ref, np.full(B, T))
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional,lengths", [
    (1, False, False), (2, False, True), (1, True, False), (2, True, False), (2, True, True)])
def test_backward_without_input_grad_gives_the_same_gradients(layer_path, cell, num_layers,
                                                              bidirectional, lengths):
    """backward(dout, input_grad=False) returns None for dx and the same bits as a full backward for
    dstate0, every parameter gradient and the recorded dL/dh (the bottom layer's dx product is the
    only thing left out; upper layers still need theirs)."""
    from core_cases import LENGTHS, make_inputs, make_layer

    layer = make_layer(cell, num_layers, bidirectional, batch_first=num_layers == 2)
    layer.record_hidden_grads = True
    x, state = make_inputs(cell, num_layers, bidirectional)
    if num_layers == 2:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    nd = 2 if bidirectional else 1
    rng = np.random.default_rng(3)
    out, _ = layer.forward(x, state, lengths=LENGTHS if lengths else None)
    dout = rng.standard_normal(out.shape)

    def grads_of(**kw):
        dx, dstate0 = layer.backward(dout, **kw)
        flat = dstate0 if isinstance(dstate0, tuple) else (dstate0,)
        return dx, [a.copy() for a in flat], {k: g.copy() for k, g in layer.grads.items()}, \
            {k: g.copy() for k, g in layer.hidden_grads.items()}

    dx, *full = grads_of()
    assert dx.shape == x.shape
    none, *part = grads_of(input_grad=False)
    assert none is None
    for a, b in zip(full[0], part[0]):
        assert np.array_equal(a, b), "dstate0 differs"
    assert full[1].keys() == part[1].keys() and len(full[1]) == 4 * num_layers * nd
    for k in full[1]:
        assert np.array_equal(full[1][k], part[1][k]), k
    assert full[2].keys() == part[2].keys() and len(full[2]) == num_layers * nd
    for k in full[2]:
        assert np.array_equal(full[2][k], part[2][k]), k


@needs_numba
@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_backward_without_input_grad_keeps_no_dx(cls):
    """input_grad=False saves the (T, B, D) dx array at the peak (tracemalloc, float32; to within a
    few Python objects' bytes)."""
    T, B, D, H = 60, 16, 48, 32
    layer = cls(D, H, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, H), dtype=np.float32)
    full, part = _peak_bytes(layer, x, dout), _peak_bytes(layer, x, dout, input_grad=False)
    assert full - part >= 0.99 * T * B * D * 4, (full, part)


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_outputs_of_earlier_forwards_stay_valid(cls):
    """The returned output is a view of that forward's own buffer: a later forward and backward write
    elsewhere, so a caller may keep the outputs of several calls."""
    layer = cls(3, 4, num_layers=2, bidirectional=True, seed=0)
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((5, 2, 3)).astype(np.float32) for _ in range(2))
    out1, _ = layer.forward(x1)
    kept = out1.copy()
    out2, _ = layer.forward(x2)
    layer.backward(np.ones_like(out2))
    assert not np.shares_memory(out1, out2)
    np.testing.assert_array_equal(out1, kept)


def _fresh_step(layer, x, dout):
    """(out, dx, grads) of one training step of a copy of `layer` that has never run forward."""
    twin = copy.deepcopy(layer)
    twin._cache = None
    out, _ = twin.forward(x)
    dx, _ = twin.backward(dout)
    return out.copy(), dx.copy(), {k: g.copy() for k, g in twin.grads.items()}


@needs_numba
@pytest.mark.parametrize("cls,inner", [(rnnkit.LSTM, ("gates", "cs")), (rnnkit.GRU, ("gates", "hhn"))])
def test_a_training_loop_gives_the_numbers_of_a_fresh_layer(cls, inner):
    """Each forward writes over the workspace buffers of the cache it drops (gates, c_t / hh_n) and
    each backward over the last gradients; the numbers are those of a layer that never ran (bit for
    bit), with lengths changing between steps too. (The memory this saves: the peak-memory tests.)"""
    layer = cls(6, 8, num_layers=2, bidirectional=True, seed=0)
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((7, 3, 6)).astype(np.float32) for _ in range(2))
    dout = rng.standard_normal((7, 3, 16)).astype(np.float32)
    layer.forward(x1)
    layer.backward(dout)
    want = _fresh_step(layer, x2, dout)
    out, _ = layer.forward(x2)
    dx, _ = layer.backward(dout)
    np.testing.assert_array_equal(out, want[0])
    np.testing.assert_array_equal(dx, want[1])
    for k, g in want[2].items():
        np.testing.assert_array_equal(layer.grads[k], g, err_msg=k)
    lengths = np.array([7, 4, 2])
    layer.forward(x1, lengths=lengths)                               # (the reverse input is a gather)
    dx_l, _ = layer.backward(dout)
    twin = copy.deepcopy(layer)
    twin._cache = None
    twin.forward(x1, lengths=lengths)
    np.testing.assert_array_equal(twin.backward(dout)[0], dx_l)


def test_a_forward_refused_for_bad_input_keeps_the_last_cache():
    """The cache is dropped only once the input is checked: a backward after a refused forward is the
    last good forward's."""
    layer = rnnkit.LSTM(3, 4, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    dout = rng.standard_normal((5, 2, 4)).astype(np.float32)
    layer.forward(x)
    want, _ = layer.backward(dout)
    with pytest.raises(ValueError):
        layer.forward(x[:, :, :2])
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        layer.forward(bad)
    np.testing.assert_array_equal(layer.backward(dout)[0], want)


@needs_numba
def test_state_rows_address_the_views_a_layer_makes():
    """`_seq.state_rows` maps a states array to (buffer, first row, row step, column block) for its
    own array and both halves of a bidirectional buffer, and refuses views it cannot address; `project`
    writes into a time-reversed half (the RNN's reverse direction projects into its states)."""
    from rnnkit.kernels import _seq

    T, B, D, H = 4, 3, 2, 5
    buf = np.arange((T + 2) * B * 2 * H, dtype=np.float64).reshape(T + 2, B, 2 * H)
    own = np.arange((T + 1) * B * H, dtype=np.float64).reshape(T + 1, B, H)
    one = np.arange((T + 2) * 2 * H, dtype=np.float64).reshape(T + 2, 1, 2 * H)   # batch 1
    for hs in (own, buf[:-1, :, :H], buf[:0:-1, :, H:], one[:-1, :, :H], one[:0:-1, :, H:]):
        rows = _seq.state_rows(hs)
        for s in range(T + 1):
            np.testing.assert_array_equal(_seq.state_block(rows, s), hs[s])
            for b in range(hs.shape[1]):
                np.testing.assert_array_equal(_seq.state_row(rows, s, b), hs[s, b])
    wide = np.zeros((T + 1, 4, 2 * H))
    for bad in (buf[:-1, :, 1:H + 1], buf[:-1, ::2, :H], buf[:-1, :, :H].copy()[:, :, ::-1],
                wide[:, 1:3, :H]):                     # rows 1, 2 of 4: would start past column 2H
        with pytest.raises(ValueError, match="hs must"):
            _seq.state_rows(bad)
    rng = np.random.default_rng(0)
    params = {"weight_ih": rng.standard_normal((H, D))}
    x = rng.standard_normal((T, B, D))
    for out in (buf[1:T + 1, :, :H], buf[T:0:-1, :, H:]):
        _seq.project(params, x, out)
        np.testing.assert_allclose(out, x @ params["weight_ih"].T, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="one matrix"):
        _seq.project(params, x, buf[1:T + 1, ::-1, :H])


@needs_numba
@pytest.mark.parametrize("cls,kept", [(rnnkit.LSTM, 6), (rnnkit.GRU, 5)])
@pytest.mark.slow
def test_two_layer_bidirectional_memory_stays_within_the_goal(cls, kept):
    """tracemalloc peak of forward + backward for the benchmark's 2-layer bidirectional case against the
    kept activations (6H LSTM, 5H GRU per step, row, layer and direction). Measured 1.23 (LSTM) and
    1.25 (GRU) with the shared state buffer; concatenating each layer's output (kept again as the next
    layer's input) gave 1.30 and 1.33."""
    T, B, D, H = 100, 32, 64, 128
    layer = cls(D, H, num_layers=2, bidirectional=True, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, 2 * H), dtype=np.float32)
    ratio = _peak_bytes(layer, x, dout) / (2 * 2 * T * B * kept * H * 4)
    assert ratio < 1.28, f"peak memory {ratio:.2f}x the kept activations"


@needs_numba
@pytest.mark.slow
def test_rnn_memory_on_data_stays_within_the_goal():
    """The benchmark's largest RNN case, trained on data (input_grad=False): peak of forward + backward
    against the H floats per step and row it keeps. 1.303 while the backward copied each dout_t into
    a (B, H) buffer; 1.28 reading a contiguous dout in place (`_seq.dout_rows`)."""
    T, B, D, H = 50, 128, 256, 512
    layer = rnnkit.RNN(D, H, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, H), dtype=np.float32)
    ratio = _peak_bytes(layer, x, dout, input_grad=False) / (T * B * H * 4)
    assert ratio <= 1.3, f"peak memory {ratio:.3f}x the kept states"


@needs_numba
def test_backward_reads_a_contiguous_dout_in_place():
    from rnnkit.kernels import _seq

    dout = np.zeros((4, 3, 2 * 5), np.float32)
    whole, d = _seq.dout_rows(dout, 3, 10, np.float32)
    assert whole is dout and d.shape == (0, 10)                  # no copy buffer
    half = dout[:, :, :5]                                        # a bidirectional layer's half
    whole, d = _seq.dout_rows(half, 3, 5, np.float32)
    assert d.shape == (3, 5) and d.flags.c_contiguous and whole.shape == (1, 3, 5)
    whole, d = _seq.dout_rows(dout.astype(np.float64), 3, 10, np.float32)
    assert d.shape == (3, 10) and d.dtype == np.float32          # another dtype: copied per step
    rng = np.random.default_rng(0)
    for cls in (rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU):            # read in place, never written
        layer = cls(3, 5, seed=0)
        layer.forward(rng.standard_normal((4, 2, 3), dtype=np.float32))
        g = rng.standard_normal((4, 2, 5), dtype=np.float32)
        before = g.copy()
        layer.backward(g)
        assert np.array_equal(g, before), f"{cls.__name__}.backward wrote into dout"


@needs_numba
def test_float32_activations_are_accurate():
    from numba import njit

    from rnnkit.kernels._math import JIT, sigmoid, tanh

    @njit(**{**JIT, "cache": False})
    def apply(a, t, s):
        for i in range(a.shape[0]):
            t[i] = tanh(a[i])
            s[i] = sigmoid(a[i])

    a = np.linspace(-40, 40, 200_001).astype(np.float32)
    t, s = np.empty_like(a), np.empty_like(a)
    apply(a, t, s)
    a64 = a.astype(np.float64)
    assert np.abs(t - np.tanh(a64)).max() < 3e-7
    assert np.abs(s - 1 / (1 + np.exp(-a64))).max() < 3e-7
    assert np.all(np.abs(t) <= 1) and np.all((s >= 0) & (s <= 1))


def _load(script):
    spec = importlib.util.spec_from_file_location(script, ROOT / "benchmarks" / f"{script}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_benchmark_runs_a_tiny_case(tmp_path):
    pytest.importorskip("torch")
    bench = _load("bench_vs_torch")
    for cell in ("rnn", "lstm", "gru"):
        r = bench.bench_case(cell, (2, 5, 3, 4, 1, False), ["train", "fwd", "step", "mem"], 1, 1,
                             step_count=3)
        for part in ("train", "fwd", "step"):
            assert r[f"{part}_rnnkit_s"] > 0 and r[f"{part}_ratio"] > 0
        assert r["mem_peak_mb"] > 0 and r["train_gflops"] > 0 and r["matmul_peak_gflops"] > 0
        share = 100 * r["train_gflops"] / r["matmul_peak_gflops"]
        assert f"({share:.0f}%)" in bench.fmt_row(r, 1e-9)[12]     # the case's own peak, not the run's
        assert r["step_bound_s"] > 0 and r["step_bound_ratio"] > 0
        assert "x)" in bench.fmt_row(r, 100.0)[11]                   # the step floor column
    r = bench.bench_case("lstm", (2, 5, 3, 4, 2, True), ["train", "fwd", "step"], 1, 1, step_count=3)
    assert "step_ratio" not in r and r["train_ratio"] > 0
    assert "GFLOP" in bench.markdown_table([r], 100.0)


def test_bench_summary_reports_medians_and_goals(tmp_path, capsys):
    summary = _load("bench_summary")
    sizes = ("B16 T200 D32 H64", "B128 T50 D256 H512")
    for i, ratio in enumerate((1.2, 1.8, 1.6)):           # three runs; median train ratio 1.6
        results = [{"cell": "lstm", "size": size, "H": H, "train_ratio": ratio, "train_rnnkit_s": 0.01,
                    "train_gflops": 100.0, "step_ratio": 2.5 + i, "step_rnnkit_s": 0.001,
                    "mem_ratio": 1.25, "mem_ratio_wo_dx": 1.1, "mem_ratio_data": 1.31 + i / 100}
                   for size, H in zip(sizes, (64, 512))]
        run = {"meta": {"matmul_peak_gflops": 200.0}, "results": results}
        (tmp_path / f"run{i}.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    out = capsys.readouterr().out
    assert "| LSTM | B16 T200 D32 H64 | 1.60 (1.20-1.80) |" in out and "| 1.25 (1.32) |" in out
    assert "met    LSTM B16 T200 D32 H64         train >= 1.5x (H <= 128): 1.60" in out
    assert "met    LSTM B128 T50 D256 H512       train >= 1.0x (H = 512): 1.60" in out
    assert "MISSED LSTM B128 T50 D256 H512       train >= 70% of peak (H = 512): 50.00" in out
    run["results"][1]["matmul_peak_gflops"] = 125.0       # a case's own peak counts over the run's
    (tmp_path / "run2.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    assert "train >= 70% of peak (H = 512): 50.00" in capsys.readouterr().out  # median of 50, 50, 80
    for i in range(2):
        run["results"][1]["matmul_peak_gflops"] = 125.0
        (tmp_path / f"run{i}.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    assert "met    LSTM B128 T50 D256 H512       train >= 70% of peak (H = 512): 80.00" in capsys.readouterr().out
    assert "step >= 3x: 3.50" in out and "met    LSTM B16 T200 D32 H64         memory <= 1.3x (with dx): 1.25" in out
    assert "MISSED LSTM B16 T200 D32 H64         memory <= 1.3x (on data, no dx): 1.32" in out
    del run["results"][0]["mem_ratio_data"]               # runs from before input_grad: dx subtracted
    for i in range(3):
        (tmp_path / f"run{i}.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    out = capsys.readouterr().out
    assert "| 1.25 (1.10 w/o dx) |" in out and "H64         memory <= 1.3x (on data" not in out


def test_side_by_side_benchmark_measures_both_paths():
    """bench_side_by_side.measure: both paths per round (it asserts which one each took), positive
    times; bad options exit with a message."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    script = _load("bench_side_by_side")
    res = script.measure(["rnn"], 1, 1, 8)
    assert set(res["rnn"]) == {"side", "seq"} and all(v[0] > 0 for v in res["rnn"].values())
    with pytest.raises(SystemExit):
        script.main(["--cells", "lstm,cnn"])


def test_profile_runs_a_tiny_case(capsys):
    prof = _load("profile_core")
    prof.profile_case("gru", (2, 5, 3, 4), repeats=1, top=5)
    assert "cumulative" in capsys.readouterr().out


def test_step_skips_checks_only_for_its_own_state():
    layer = rnnkit.LSTM(3, 4, seed=0)
    x = np.ones((2, 3), np.float32)
    y1, s1 = layer.step(x)
    y2, s2 = layer.step(x, s1)                         # fast path: s1 is the layer's own output
    y2b, _ = layer.step(x, (s1[0].copy(), s1[1].copy()))   # checked path, same numbers
    np.testing.assert_array_equal(y2, y2b)
    with pytest.raises(ValueError, match="NaN"):
        layer.step(x, (np.full_like(s2[0], np.nan), s2[1]))
    with pytest.raises(ValueError):
        layer.step(np.ones((3, 3), np.float32), s2)    # batch changed: the state is checked again


STEP_PATHS = ["numpy", "fused-small", "fused-blas"]


@pytest.fixture(params=STEP_PATHS)
def step_path(request, monkeypatch):
    """The three ways a step runs: NumPy cells; one compiled call (small layers); BLAS + gate kernel."""
    from rnnkit.kernels import _seq

    if request.param != "numpy" and not backends.available("numba"):
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_seq, "SMALL_STEP_MACS", 10**12 if request.param == "fused-small" else 0)
    if request.param == "numpy":
        with backends.set_backend("numpy"):
            yield request.param
    else:
        yield request.param


@pytest.mark.parametrize("cls,kw", [(rnnkit.RNN, {}), (rnnkit.RNN, {"nonlinearity": "relu"}),
                                    (rnnkit.LSTM, {}), (rnnkit.GRU, {})])
@pytest.mark.parametrize("bias", [True, False])
def test_step_paths_reproduce_forward_in_float64(step_path, cls, kw, bias):
    layer = cls(3, 5, num_layers=2, bias=bias, dtype=np.float64, seed=0, **kw)
    x = np.random.default_rng(0).standard_normal((6, 4, 3))
    out, final = layer.forward(x)
    state = None
    for t in range(6):
        y, state = layer.step(x[t], state)
        np.testing.assert_allclose(y, out[t], rtol=0, atol=1e-12)
    for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (state, final))):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_step_refuses_nan_input_and_takes_any_layout(step_path, cls):
    layer = cls(3, 4, seed=0)
    xb = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)   # batch-first data
    y, s = layer.step(xb[:, 0])                       # a non-contiguous (B, D) slice
    y_list, _ = layer.step(xb[:, 0].tolist())         # nested lists of floats
    np.testing.assert_allclose(y, y_list, rtol=0, atol=1e-6)   # (BLAS may sum in another order)
    bad = xb[:, 1].copy()
    bad[1, 2] = np.inf
    before = [a.copy() for a in (s if isinstance(s, tuple) else (s,))]
    with pytest.raises(ValueError, match=r"x_t contains 1 NaN or Inf value"):
        layer.step(bad, s)
    for a, b in zip(before, s if isinstance(s, tuple) else (s,)):
        np.testing.assert_array_equal(a, b)           # the caller's state is untouched
    y2, _ = layer.step(xb[:, 1], s)                   # and still usable
    assert np.isfinite(y2).all()


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_step_follows_weight_changes_and_copies(cls):
    """step() keeps its set-up per layer; in-place updates, astype and copies must not see stale weights."""
    import copy
    import pickle

    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    layer = cls(3, 4, num_layers=2, seed=0)
    y0, _ = layer.step(x)
    twin = copy.deepcopy(layer)
    for p in layer.params.values():
        p *= 1.5                                          # an optimiser's in-place update
    y1, _ = layer.step(x)
    ref = cls(3, 4, num_layers=2, seed=0)
    ref.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(y1, ref.forward(x[None])[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(twin.step(x)[0], y0)   # the copy has its own (unchanged) weights
    clone = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(clone.step(x)[0], y1)
    layer.astype(np.float64)                             # new arrays of another dtype
    np.testing.assert_allclose(layer.step(x.astype(np.float64))[0], y1, rtol=1e-5, atol=1e-6)


@needs_numba
def test_numpys_blas_is_found_where_numpy_ships_scipy_openblas():
    """The compiled time loops need NumPy's own CBLAS; on Linux with the PyPI wheels (scipy-openblas)
    the lookup must succeed, or every fused forward silently falls back to the slower Python loop."""
    from rnnkit.kernels import _blas, _threads

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if not (sys.platform.startswith("linux") and blas.get("name") == "scipy-openblas"):
        pytest.skip(f"NumPy uses {blas.get('name')!r} on {sys.platform}: the lookup may not apply")
    if os.environ.get("RNNKIT_NO_BLAS_LOOP"):
        pytest.skip("RNNKIT_NO_BLAS_LOOP is set")
    assert _blas.AVAILABLE and _blas.enabled()
    pytest.importorskip("scipy.linalg")                # loads SciPy's own OpenBLAS into the process too
    own = os.path.dirname(os.path.realpath(np.__file__))
    libs = _threads._loaded_libraries()
    assert any("scipy.libs" in p or "scipy/" in p for p in libs[1:]) or len(libs) == 1
    assert os.path.realpath(libs[0]).startswith(own), f"NumPy's BLAS is not looked up first: {libs}"


@needs_numba
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-13)])
def test_blas_gemm_matches_matmul_for_views_and_beta(dtype, tol):
    """`_blas.gemm(a, b, c, beta)`: c = a @ b + beta c for row-major and transposed operands, single
    rows and columns, and strided row views (the chunked weight gradients pass z.T)."""
    from rnnkit.kernels import _blas

    if not _blas.AVAILABLE:
        pytest.skip("NumPy's CBLAS gemm was not found in this process")
    rng = np.random.default_rng(1)
    for M, K, N in [(5, 7, 3), (1, 7, 3), (5, 1, 3), (5, 7, 1), (1, 1, 1), (33, 17, 65)]:
        A, Bm = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
        for a in (A, np.asfortranarray(A)):
            for b in (Bm, np.asfortranarray(Bm)):
                for beta in (0.0, 1.0):
                    c = rng.standard_normal((M, N)).astype(dtype)
                    want = a @ b + beta * c
                    _blas.gemm(a, b, c, beta)
                    assert np.abs(c - want).max() < tol * max(1.0, np.abs(want).max()), (M, K, N, beta)
    X, W = rng.standard_normal((4, 10)).astype(dtype), rng.standard_normal((6, 5)).astype(dtype)
    C = np.zeros((4, 12), dtype)
    _blas.gemm(X[:, 2:8], W[:, :5], C[:, 3:8], 0.0)
    np.testing.assert_allclose(C[:, 3:8], X[:, 2:8] @ W[:, :5], rtol=tol * 10)
    assert not C[:, :3].any() and not C[:, 8:].any(), "gemm wrote outside the strided view"


@needs_numba
@pytest.mark.slow
def test_first_call_script_times_a_fresh_and_a_cached_run(capsys):
    script = _load("first_call")
    first, cached = script.main(["--cells", "rnn"])
    assert set(first) == set(cached) == {"import rnnkit", "rnn"}
    assert first["rnn"] > cached["rnn"] > 0       # the fresh copy compiles; the second run loads the cache
    assert "first use" in capsys.readouterr().out


# -- the two directions of a bidirectional layer side by side (kernels._parallel) ---------------------

@pytest.fixture
def parallel(monkeypatch):
    """`kernels._parallel`, where it can run (Numba, NumPy's OpenBLAS callable), switched on
    (`side_by_side()`); BLAS at >= 2 threads inside the test, its thread count restored after; the
    BLAS spin declared short (OPENBLAS_THREAD_TIMEOUT, as a user would export it)."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas, _parallel

    if not _blas.enabled() or _blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS rnnkit can call")
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "22")
    threads = _blas.threads()
    _blas.set_threads(max(2, threads))
    try:
        with _parallel.side_by_side():
            yield _parallel
    finally:
        _blas.set_threads(threads)


def test_pair_runs_the_second_job_in_a_worker_with_one_blas_thread(parallel):
    import threading

    from rnnkit.kernels import _blas

    before = _blas.threads()

    def other_thread_running():         # another thread meanwhile: not part of the pair
        out = []
        t = threading.Thread(target=lambda: out.append(parallel.running()))
        t.start()
        t.join()
        return out[0]

    seen = parallel.pair(
        lambda: (threading.current_thread().name, _blas.threads(), parallel.running(),
                 other_thread_running()),
        lambda: (threading.current_thread().name, _blas.threads(), parallel.running()))
    assert seen[0] == (threading.current_thread().name, 1, True, False)
    assert seen[1][0].startswith("rnnkit-direction") and seen[1][1:] == (1, True)
    assert _blas.threads() == before, "pair did not restore NumPy's BLAS thread count"
    assert not parallel.running()


def test_pair_raises_after_both_ended_and_restores_the_threads(parallel):
    import time

    from rnnkit.kernels import _blas

    before, done = _blas.threads(), []

    def slow():
        time.sleep(0.05)
        done.append(1)

    with pytest.raises(ZeroDivisionError):
        parallel.pair(lambda: 1 / 0, slow)
    assert done == [1], "pair returned before the worker's job ended"
    assert _blas.threads() == before
    with pytest.raises(KeyError):
        parallel.pair(lambda: None, lambda: {}["missing"])
    assert _blas.threads() == before


def test_pair_inside_pair_runs_one_after_the_other(parallel):
    """The BLAS thread count is process-wide: a second pair while one runs (another thread, or nested)
    does not touch it and runs its jobs in the calling thread."""
    import threading

    inner = parallel.pair(lambda: parallel.pair(threading.current_thread, threading.current_thread),
                          lambda: None)[0]
    assert inner[0] is inner[1] is threading.current_thread()


def test_side_by_side_only_where_it_pays(parallel):
    """At the benchmark's 2-layer bidirectional size (T100 B32 H128) and at B32 H256 every cell's
    directions run side by side; at B128 H = 512 (two-thread BLAS is efficient alone), for short or small sequences (the thread
    hand-offs cost more) and with one BLAS thread they do not."""
    from rnnkit.kernels import _blas

    assert parallel.worth(100, 32, 4, 128) and parallel.worth(100, 32, 3, 128)
    assert parallel.worth(100, 32, 1, 128) and parallel.worth(100, 32, 4, 256)
    assert not parallel.worth(50, 128, 4, 512)
    assert not parallel.worth(20, 1, 4, 128) and not parallel.worth(10, 4, 4, 64)
    threads = _blas.threads()
    _blas.set_threads(1)
    try:
        assert not parallel.worth(100, 32, 4, 128)
    finally:
        _blas.set_threads(threads)
    assert _sbs(rnnkit.LSTM(8, 128, bidirectional=True, backend="numba"), 100, 32)
    assert not _sbs(rnnkit.LSTM(8, 128, backend="numba"), 100, 32)
    assert not _sbs(rnnkit.LSTM(8, 128, bidirectional=True, backend="numpy"), 100, 32)
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "28"     # a long spin: one after the other (monkeypatched)
    assert not parallel.worth(100, 32, 4, 128)
    del os.environ["OPENBLAS_THREAD_TIMEOUT"]        # OpenBLAS's default spin (~0.1 s) too
    assert not parallel.worth(100, 32, 4, 128)
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "22"


def test_side_by_side_is_off_outside_its_block():
    """Without `rnnkit.side_by_side()` the directions run one after the other, whatever the size."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _parallel

    assert not _parallel.worth(100, 32, 4, 128)
    with rnnkit.side_by_side(force=True):
        assert _parallel.worth(100, 32, 4, 128) or not _parallel._blas.enabled()
    assert not _parallel.worth(100, 32, 4, 128)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.slow
def test_side_by_side_matches_one_after_the_other_at_benchmark_size(parallel, cell):
    """float32, T60 B32 H128, 2 layers: the same bits twice, and the same numbers (to float rounding:
    one-thread BLAS rounds differently) as the directions one after the other (outputs, dx, every
    gradient), and at most 5% more peak memory (both directions add into one dx with half-size chunks:
    before that, a second dx array cost +0.13x of the kept activations)."""
    layer = CELLS_BY_NAME[cell](16, 128, num_layers=2, bidirectional=True, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 32, 16)).astype(np.float32)
    dout = rng.standard_normal((60, 32, 256)).astype(np.float32)
    assert _sbs(layer, 60, 32)
    out, _ = layer.forward(x)
    out = out.copy()
    dx, _ = layer.backward(dout)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    again, _ = layer.forward(x)                         # side by side is deterministic: the same bits
    assert np.array_equal(again, out) and np.array_equal(layer.backward(dout)[0], dx)
    assert all(np.array_equal(layer.grads[k], g) for k, g in grads.items())
    peak = _peak_bytes(layer, x, dout)
    saved = parallel.MAX_STEP_MACS
    parallel.MAX_STEP_MACS = 0
    try:
        assert not _sbs(layer, 60, 32)
        out1, _ = layer.forward(x)
        dx1, _ = layer.backward(dout)
        peak1 = _peak_bytes(layer, x, dout)
    finally:
        parallel.MAX_STEP_MACS = saved
    np.testing.assert_allclose(out, out1, rtol=0, atol=1e-5)
    np.testing.assert_allclose(dx, dx1, rtol=0, atol=1e-4)
    for k, g in grads.items():
        assert np.abs(g - layer.grads[k]).max() <= 1e-5 * max(1.0, np.abs(g).max()), k
    assert peak <= 1.05 * peak1, f"side by side peaked at {peak / peak1:.3f}x one after the other"


CELLS_BY_NAME = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}
