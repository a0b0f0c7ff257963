"""A layer's behaviour on every path it can take: the compiled time loops, the fused kernels' Python
loops, the two directions of a bidirectional layer side by side, and the NumPy reference. The same
numbers from the shared state buffer and from the concatenating path, backward without dx, outputs
that stay valid, a training loop that gives a fresh layer's numbers, a refused forward that keeps the
last cache.
"""
import copy

import numpy as np
import pytest

import rnnkit
from rnnkit import backends

needs_numba = pytest.mark.skipif(not backends.available("numba"), reason="numba is not installed")


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


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_backward_never_writes_into_dout(layer_path, cls, bidirectional):
    """The fused backward reads a contiguous dout in place (no per-step copy: 2% of the states the RNN
    keeps at B128 T50 H512, guarded by test_perf_memory.py) and a bidirectional layer's halves through
    a copy; neither writes into it."""
    layer = cls(3, 5, bidirectional=bidirectional, seed=0)
    rng = np.random.default_rng(0)
    out, _ = layer.forward(rng.standard_normal((4, 2, 3), dtype=np.float32))
    g = rng.standard_normal(out.shape, dtype=np.float32)
    before = g.copy()
    layer.backward(g)
    assert np.array_equal(g, before), f"{cls.__name__}.backward wrote into dout"
