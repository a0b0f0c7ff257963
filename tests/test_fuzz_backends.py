"""Differential tests: every backend of a recurrent layer gives the NumPy reference's numbers.

The NumPy cells (`rnnkit.cells`) are the oracle; the fused Numba kernels must reproduce them on every
shape and memory layout a user can hand in. All comparisons go through `run_on(backend, ...)`, the one
place that knows how a backend is selected, so a new backend is one entry in `BACKENDS`.
"""
import contextlib
import copy

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

LAYERS = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}


def _numba():
    if not kernels.available():
        pytest.skip("numba is not installed")
    return contextlib.nullcontext()


def _numba_python_loop():
    """The fused kernels with their Python time loops (np.matmul per step): the path for a BLAS that
    rnnkit cannot call from compiled code."""
    if not kernels.available():
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas
    return _blas.disabled()


def _numba_compiled_loop():
    """The fused kernels with the whole time loop compiled and BLAS called from inside (the default)."""
    if not kernels.available():
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas
    if not _blas.AVAILABLE:
        pytest.skip("NumPy's CBLAS gemm was not found in this process")
    return contextlib.nullcontext()


# backend name -> a context manager factory under which a layer runs on that backend
BACKENDS = {"numpy": kernels.disabled, "numba": _numba_compiled_loop, "numba-python-loop": _numba_python_loop}
REFERENCE = "numpy"


def run_on(backend: str, layer, x, state=None, lengths=None, dout=None, dstate=None, input_grad=True):
    """{quantity: array} of one forward and backward of a copy of `layer` on `backend`: out, the final
    states (h_n, c_n), dx, the initial-state gradients (dh_0, dc_0) and every named gradient.
    dout=None: a fixed random upstream gradient of out's shape."""
    layer = copy.deepcopy(layer)
    with BACKENDS[backend]():
        out, final = layer.forward(x, state, lengths=lengths)
        if dout is None:
            dout = np.random.default_rng(12345).standard_normal(out.shape)
        dx, dfirst = layer.backward(dout, dstate, input_grad=input_grad)
    final, dfirst = (final if isinstance(final, tuple) else (final,)), (
        dfirst if isinstance(dfirst, tuple) else (dfirst,))
    got = {"out": out, "dx": dx}
    for name, a, da in zip("hc", final, dfirst):
        got[f"{name}_n"], got[f"d{name}_0"] = a, da
    got.update(layer._grads)
    return {k: None if v is None else np.array(v, copy=True) for k, v in got.items()}


def assert_same(got: dict, want: dict, rtol: float, what: str = "") -> None:
    """Every quantity agrees to rtol relative to its largest magnitude; the message names it."""
    assert got.keys() == want.keys(), f"{what}: quantities differ: {sorted(got)} vs {sorted(want)}"
    for k, w in want.items():
        g = got[k]
        if w is None or g is None:
            assert g is None and w is None, f"{what}: {k} is None on one backend only"
            continue
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what}: {k} {g.shape} {g.dtype} vs {w.shape} {w.dtype}"
        scale = max(float(np.abs(w).max(initial=0.0)), 1e-30)
        err = float(np.abs(g.astype(np.float64) - w).max(initial=0.0)) / scale
        assert np.isfinite(g).all() == np.isfinite(w).all() and err <= rtol, \
            f"{what}: {k} differs from the reference by {err:.2e} (relative; tolerance {rtol:g})"


# -- regressions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numba", "numba-python-loop"])
@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_bidirectional_batch_one_beyond_one_chunk(backend, cell):
    """Issue 16: at B = 1 the reverse direction's time-reversed input and states reshape to (T, D) views
    with a negative row stride, which the chunked weight gradients handed to BLAS as positive ones
    (wrong weight_ih/weight_hh_reverse from T = 514 on: the second 512-step chunk, garbage or a
    segfault further on)."""
    layer = LAYERS[cell](2, 3, bidirectional=True, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((600, 1, 2))
    assert_same(run_on(backend, layer, x), run_on(REFERENCE, layer, x), 1e-10, f"{cell} T=600 B=1")


def test_blas_gemm_reads_and_writes_any_strides():
    """`_blas.gemm` on operands BLAS cannot address in place (negative, zero, non-unit and
    non-element strides) copies them instead of reading past the array."""
    if not kernels.available():
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas
    if not _blas.AVAILABLE:
        pytest.skip("NumPy's CBLAS gemm was not found in this process")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 88))
    X = rng.standard_normal((600, 2))
    raw = np.zeros(88 * 16 + 1, np.uint8)[1:1 + 88 * 16].view(np.float64).reshape(88, 2)  # misaligned
    raw[...] = X[:88]
    odd = np.ndarray((88, 2), np.float64, buffer=np.zeros(88 * 24 + 4), offset=4, strides=(20, 8))
    odd[...] = X[:88]
    operands = {"reversed": X[::-1][:88], "reversed tail": X[::-1][500:588], "broadcast":
                np.broadcast_to(X[0], (88, 2)), "column stride 2": rng.standard_normal((88, 4))[:, ::2],
                "3-D slice": rng.standard_normal((88, 2, 2))[:, :, 0], "misaligned": raw,
                "row stride of 2.5 elements": odd}
    for name, b in operands.items():
        c = np.full((12, 2), 0.5)
        _blas.gemm(A, b, c, 1.0)
        np.testing.assert_allclose(c, A @ b + 0.5, rtol=1e-13, atol=1e-13, err_msg=name)
        c = np.zeros((2, 12))
        _blas.gemm(b.T, A.T, c, 0.0)
        np.testing.assert_allclose(c, b.T @ A.T, rtol=1e-13, atol=1e-13, err_msg=f"{name}, transposed")
    for name, c in {"Fortran order": np.zeros((12, 2), order="F"), "reversed": np.zeros((12, 2))[::-1],
                    "column stride 2": np.zeros((12, 4))[:, ::2]}.items():
        c += 1.0
        _blas.gemm(A, X[:88], c, 1.0)
        np.testing.assert_allclose(c, A @ X[:88] + 1.0, rtol=1e-13, atol=1e-13, err_msg=f"out {name}")
