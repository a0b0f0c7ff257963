"""Single-step generation (`layer.step`) on each of its paths: the NumPy cells, one compiled call (small
layers), BLAS and the gate kernel: it reproduces `forward`, refuses NaN input and keeps the caller's
state, takes any layout, and follows weight changes, copies and `astype`."""
import numpy as np
import pytest

import rnnkit
from rnnkit import backends


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
