"""The BLAS binding of the compiled time loops (`kernels._blas`, `kernels._threads`): NumPy's own
CBLAS is found where NumPy ships scipy-openblas, and `gemm` computes c = a @ b + beta c for every
operand layout the kernels pass."""
import os
import sys

import numpy as np
import pytest

from rnnkit import backends

needs_numba = pytest.mark.skipif(not backends.available("numba"), reason="numba is not installed")


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
