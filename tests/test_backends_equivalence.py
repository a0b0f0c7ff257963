"""Backend equivalence: the fused kernels ("numba", both ways they walk time) give the NumPy reference's
numbers, cell by cell and through the layer, and the float64 finite-difference and torch grids hold on
the reference backend too (test_core_*.py run them on the default backend).

The differential fuzz suite (test_fuzz_backends.py) draws layer cases at random; the tests here pin the
cases the kernels were built around: padding, no bias, forced chunk lengths, a strided dout, a second
backward of the same forward.
"""
import numpy as np
import pytest

from rnnkit import backends
from rnnkit.cells import CELLS
from core_cases import GRID, IDS

needs_numba = pytest.mark.skipif(not backends.available("numba"), reason="numba is not installed")


@pytest.fixture
def numpy_path():
    with backends.set_backend("numpy"):
        yield


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", GRID, ids=IDS)
@pytest.mark.slow
def test_reference_backend_matches_finite_differences(numpy_path, cell, num_layers, bidirectional,
                                                   use_lengths, use_h0, use_dstate):
    from test_core_gradcheck import test_bptt_matches_finite_differences as check

    assert backends.default() == "numpy"
    check(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", GRID, ids=IDS)
@pytest.mark.slow
def test_reference_backend_matches_torch(numpy_path, cell, num_layers, bidirectional, use_lengths, use_h0,
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
