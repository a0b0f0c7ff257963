"""The backend registry (`rnnkit.backends`): one dispatch point, resolved once per layer, no state
changed at import, buffers owned by the layer's workspaces.

Backend *equivalence* (the fused path against the reference on every shape) is guarded by
test_backends_equivalence.py, test_backends_layers.py and the differential fuzz suite; this file
guards the seam itself.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import backends

ROOT = Path(__file__).resolve().parents[1]
needs_numba = pytest.mark.skipif(not backends.available("numba"), reason="numba is not installed")


def _run(code, **env):
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("RNNKIT_")},
            "PYTHONPATH": str(ROOT / "src"), **env}
    done = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_changes_nothing_and_loads_no_kernels():
    """`import rnnkit` writes no environment variable and loads neither Numba nor any BLAS binding;
    the reference cells import nothing from the fused path."""
    out = _run("import os, sys\nbefore = dict(os.environ)\nimport rnnkit, rnnkit.cells\n"
               "print(dict(os.environ) == before, 'numba' in sys.modules,\n"
               "      sorted(m for m in sys.modules if m.startswith('rnnkit.kernels')))")
    assert out == "True False []", out


def test_the_default_is_the_fastest_available_and_the_environment_can_name_one():
    want = "numba" if backends.available("numba") else "numpy"
    assert _run("import rnnkit; print(rnnkit.LSTM(2, 3).backend)") == want
    assert _run("import rnnkit; print(rnnkit.LSTM(2, 3).backend)", RNNKIT_NO_NUMBA="1") == "numpy"
    assert _run("import rnnkit; print(rnnkit.GRU(2, 3).backend)", RNNKIT_BACKEND="numpy") == "numpy"


def test_unknown_backends_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"backend must be one of \['numba', 'numpy'\], got 'cupy'"):
        rnnkit.LSTM(2, 3, backend="cupy")
    with pytest.raises(ValueError, match="backend must be one of"):
        rnnkit.set_backend("torch")


def test_set_backend_is_a_context_that_restores_and_layers_keep_theirs():
    before = backends.default()
    with rnnkit.set_backend("numpy"):
        inside = rnnkit.RNN(2, 3)
        assert backends.default() == "numpy"
        with rnnkit.set_backend(before):
            assert rnnkit.RNN(2, 3).backend == before
        assert backends.default() == "numpy"
    assert backends.default() == before
    assert inside.backend == "numpy"                       # resolved once, at construction
    assert rnnkit.RNN(2, 3, backend="numpy").backend == "numpy"


@needs_numba
@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_the_cache_records_the_backend_that_made_it(cls):
    """A backward runs on the backend whose forward made the cache, even if the layer's backend was
    changed in between; both give the same numbers (float64)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, 3))
    dout = rng.standard_normal((6, 2, 8))
    results = {}
    for name in ("numpy", "numba"):
        layer = cls(3, 4, bidirectional=True, dtype=np.float64, seed=0, backend=name)
        out, _ = layer.forward(x)
        assert layer._cache.backend == name
        layer.backend = "numba" if name == "numpy" else "numpy"
        dx, _ = layer.backward(dout)
        results[name] = (out.copy(), dx.copy(), {k: g.copy() for k, g in layer.grads.items()})
    (o1, d1, g1), (o2, d2, g2) = results["numpy"], results["numba"]
    np.testing.assert_allclose(o1, o2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(d1, d2, rtol=0, atol=1e-12)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=0, atol=1e-12, err_msg=k)


def test_workspace_hands_back_its_buffer_while_shape_and_dtype_agree():
    ws = backends.Workspace()
    a = ws.buffer("gates", (3, 4), np.float32)
    a[...] = 7
    assert ws.buffer("gates", (3, 4), np.float32) is a      # the stated reuse: same name, shape, dtype
    b = ws.buffer("gates", (3, 5), np.float32)
    assert b is not a and b.shape == (3, 5)
    assert ws.buffer("gates", (3, 5), np.float64).dtype == np.float64
    assert np.all(a == 7)                                    # a replaced buffer is left alone
    assert ws.nbytes() == 3 * 5 * 8
    ws.clear()
    assert ws.nbytes() == 0


@needs_numba
def test_gradients_are_the_layers_and_copies_keep_their_values():
    """The stated ownership: a backward writes over the layer's gradient arrays (as torch's `.grad`),
    so a copy taken before keeps the old values and the arrays hold the new ones."""
    layer = rnnkit.LSTM(3, 4, seed=0, backend="numba")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    layer.forward(x)
    layer.backward(np.ones((5, 2, 4), np.float32))
    kept = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x)
    layer.backward(-np.ones((5, 2, 4), np.float32))
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, -kept[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_repr_names_the_backend():
    assert "backend='numpy'" in repr(rnnkit.GRU(2, 3, backend="numpy"))
