"""NumPy's own BLAS `gemm`, callable from inside the Numba kernels and with `beta` (C = A B + beta C).

Why: the fused sequence loops did one Python iteration per time step (a `np.matmul` call and a kernel
call, about 3.5 us of dispatch per step), and the chunked weight gradients of the backward added each
chunk's product through a scratch buffer (`out += a @ b` is a second pass over `out`). BLAS itself
does both better: called from compiled code there is no per-step dispatch (the whole time loop is one
Numba call), and `beta = 1` accumulates in the product's own write pass.

How: NumPy's BLAS library is already loaded in the process (for the wheels: scipy-openblas, whose
symbols carry a `scipy_` prefix and a `64_` suffix, 64-bit integers). We look the `cblas_?gemm`
symbol up in the loaded libraries, hand its address to LLVM under a name of ours (`add_symbol`), and
declare it to Numba as an external function. Compiled code refers to the symbol by name, so Numba's
on-disk cache stays valid across processes (the address is bound again at every import). It is the
very library `np.matmul` uses: the same thread pool, so nothing competes with NumPy's own BLAS threads.

When no such symbol is found (another BLAS, another OS), `AVAILABLE` is False and the kernels keep
their Python loops with `np.matmul` (tests force that path with `_blas.disabled()`; the environment
variable RNNKIT_NO_BLAS_LOOP=1 skips the lookup).
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
from numba import njit, types

from ._math import JIT
from ._threads import blas, set_threads, threads  # noqa: F401  (threads, set_threads: _parallel's)

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

_found = blas() if os.environ.get("RNNKIT_NO_BLAS_LOOP", "").strip() not in ("1", "true", "yes") else None
AVAILABLE = _found is not None
_enabled = AVAILABLE

_i32, _f32, _f64, _ptr = types.int32, types.float32, types.float64, types.intp
_int = types.int64 if _found is None or _found[2] == 64 else types.int32
_args = (_i32, _i32, _i32, _int, _int, _int)                        # order, trans_a, trans_b, M, N, K
if AVAILABLE:
    import llvmlite.binding as llvm

    llvm.add_symbol("rnnkit_cblas_sgemm", _found[0])
    llvm.add_symbol("rnnkit_cblas_dgemm", _found[1])
_sgemm = types.ExternalFunction("rnnkit_cblas_sgemm", types.void(
    *_args, _f32, _ptr, _int, _ptr, _int, _f32, _ptr, _int))
_dgemm = types.ExternalFunction("rnnkit_cblas_dgemm", types.void(
    *_args, _f64, _ptr, _int, _ptr, _int, _f64, _ptr, _int))


def enabled() -> bool:
    """True when the kernels run their time loops compiled, with BLAS called from inside."""
    return _enabled


@contextlib.contextmanager
def disabled():
    """`with _blas.disabled(): ...` runs the kernels' Python loops with np.matmul inside the block
    (tests), and restores what was in effect after."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


@njit(**JIT)
def _operand(rows, cols, s0, s1, shift):
    """(transpose flag, leading dimension) under which BLAS reads a (rows, cols) array with byte
    strides (s0, s1) and items of 1 << shift bytes in place, or (-1, 0) when it cannot: BLAS
    addresses a matrix as a pointer, one unit stride and a positive leading dimension at least the
    other extent, so a time-reversed view (negative row stride, what a reshaped reverse direction is
    at batch 1), a stride-0 broadcast, a strided column view or a stride that is not a whole number
    of elements must be copied first (`gemm`). Shifts and masks, not `//` and `%` by the item size:
    in a loop of (1, 16) x (16, 16) products, division by the variable item size made each call 2-4x
    slower (measured on a busy machine)."""
    if (s0 | s1) & ((1 << shift) - 1):
        return np.int32(-1), 0
    s0, s1 = s0 >> shift, s1 >> shift                                # exact: whole elements
    if (s1 == 1 or cols == 1) and (rows == 1 or s0 >= cols):        # row-major rows
        return np.int32(_NO_TRANS), max(s0 if rows > 1 else cols, cols, 1)
    if (s0 == 1 or rows == 1) and (cols == 1 or s1 >= rows):        # a column-major (transposed) view
        return np.int32(_TRANS), max(s1 if cols > 1 else rows, rows, 1)
    return np.int32(-1), 0


@njit(**JIT)
def gemm(a, b, c, beta):
    """c = a @ b + beta * c for 2-D a (M, K), b (K, N), c (M, N) of one float dtype, any strides: an
    operand BLAS cannot read in place (`_operand`) is copied first, a c it cannot write is computed
    in a contiguous copy and written back (`_gemm_copied`). No shape checks: the callers' shapes."""
    M, K = a.shape
    N = b.shape[1]
    shift = 2 if c.itemsize == 4 else 3                              # float32, float64
    ta, lda = _operand(M, K, a.strides[0], a.strides[1], shift)
    tb, ldb = _operand(K, N, b.strides[0], b.strides[1], shift)
    tc, ldc = _operand(M, N, c.strides[0], c.strides[1], shift)
    if ta < 0 or tb < 0 or tc != _NO_TRANS:                          # views of the caller's arrays
        _gemm_copied(a, b, c, beta)
    elif shift == 2:
        _sgemm(np.int32(_ROW_MAJOR), ta, tb, M, N, K, np.float32(1.0), a.ctypes.data, lda,
               b.ctypes.data, ldb, np.float32(beta), c.ctypes.data, ldc)
    else:
        _dgemm(np.int32(_ROW_MAJOR), ta, tb, M, N, K, 1.0, a.ctypes.data, lda,
               b.ctypes.data, ldb, np.float64(beta), c.ctypes.data, ldc)


@njit(**JIT)
def _gemm_copied(a, b, c, beta):
    """`gemm` through C-contiguous copies of a, b and c, c's written back (kept out of `gemm`, which
    the time loops call every step)."""
    ac, bc, cc = a.copy(), b.copy(), c.copy()                        # .copy(): C-contiguous
    _gemm_c(ac, bc, cc, beta)
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            c[i, j] = cc[i, j]


@njit(**JIT)
def _gemm_c(a, b, c, beta):
    """c = a @ b + beta * c for C-contiguous arrays; they are arguments, so copies made by the caller
    stay alive while BLAS reads their pointers."""
    M, K = a.shape
    N = b.shape[1]
    if c.itemsize == 4:
        _sgemm(np.int32(_ROW_MAJOR), np.int32(_NO_TRANS), np.int32(_NO_TRANS), M, N, K, np.float32(1.0),
               a.ctypes.data, max(K, 1), b.ctypes.data, max(N, 1), np.float32(beta), c.ctypes.data, max(N, 1))
    else:
        _dgemm(np.int32(_ROW_MAJOR), np.int32(_NO_TRANS), np.int32(_NO_TRANS), M, N, K, 1.0,
               a.ctypes.data, max(K, 1), b.ctypes.data, max(N, 1), np.float64(beta), c.ctypes.data, max(N, 1))
