"""Helpers the fused sequence loops and step kernels share: the padding mask as rows, the input
projection into a preallocated time-major buffer (biases are added inside the step kernels, not in a
separate pass over the (T, B, G*H) buffer), the bias vectors, and the small matrix-vector products of
single-step generation."""
from __future__ import annotations

import numpy as np
from numba import njit

from ._math import JIT

_SHARED: dict = {}  # zero biases and all-ones mask rows, by shape and dtype (never written)


def mask_rows(mask, T: int, B: int, dtype) -> np.ndarray:
    """(T, B) 0/1 rows from the cells' (T, B, 1) mask; all ones when there is no padding."""
    return np.ones((T, B), dtype) if mask is None else np.ascontiguousarray(mask[:, :, 0], dtype=dtype)


def zeros_cached(n: int, dtype) -> np.ndarray:
    """A shared zero vector (the bias of a layer built with bias=False); never written. Not flagged
    read-only: Numba would compile every kernel a second time for read-only arrays."""
    key = (n, np.dtype(dtype))
    z = _SHARED.get(key)
    if z is None:
        z = _SHARED[key] = np.zeros(n, dtype)
    return z


def ones_row(B: int, dtype) -> np.ndarray:
    """A shared all-ones mask row (step() without padding; no allocation per token)."""
    key = ("ones", B, np.dtype(dtype))
    o = _SHARED.get(key)
    if o is None:
        o = _SHARED[key] = np.ones(B, dtype)
    return o


def refuse_nonfinite(x_t: np.ndarray):
    """Raise the layers' one-line NaN/Inf error for a step input (the kernels found one)."""
    from ..layers.checks import check_finite  # lazy: rnnkit.layers imports the cells, which import us
    check_finite("x_t", x_t)
    raise AssertionError("a step kernel reported NaN/Inf that check_finite did not find")


def project(params: dict, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out (T, B, G*H) = x W_ih^T: one BLAS product for all steps, written in place, no bias."""
    T, B, D = x.shape
    np.matmul(x.reshape(T * B, D), params["weight_ih"].T, out=out.reshape(T * B, out.shape[2]))
    return out


def biases(params: dict, GH: int, dtype):
    """(b_ih, b_hh), which the step kernels add; shared zeros for a layer built with bias=False."""
    if "bias_ih" not in params:
        z = zeros_cached(GH, dtype)
        return z, z
    return params["bias_ih"], params["bias_hh"]


# Single-step generation (batch 1, small layers): the two products inside one compiled call beat two
# BLAS calls plus the gate kernel, whose call overheads dominate there. Above SMALL_STEP_MACS
# multiply-adds the weights no longer sit in one core's cache and two-thread BLAS is faster.
SMALL_STEP_MACS = 400_000


def small_step(B: int, W_ih: np.ndarray, W_hh: np.ndarray) -> bool:
    return B * (W_ih.size + W_hh.size) <= SMALL_STEP_MACS


@njit(**JIT)
def matvec_rows(W, v, out):
    """out[g] = W[g] . v for a row-major W (G, K): one dot product per row (reduction vectorised)."""
    G, K = W.shape
    zero = np.zeros(1, W.dtype)[0]                                   # in W's dtype (a loop from 1 with
    for g in range(G):                                               # acc = w[0] v[0] was 2x slower)
        wr = W[g]
        acc = zero
        for k in range(K):
            acc += wr[k] * v[k]
        out[g] = acc


@njit(**JIT)
def all_finite(a):
    """True when no element of `a` is NaN or +-Inf, read from the exponent bits (fastmath may assume
    finite floats and fold a float comparison away)."""
    flat = a.reshape(-1)
    if flat.itemsize == 4:
        v = flat.view(np.uint32)
        e32 = np.uint32(0x7F800000)
        for k in range(v.size):
            if (v[k] & e32) == e32:
                return False
    else:
        v = flat.view(np.uint64)
        e64 = np.uint64(0x7FF0000000000000)
        for k in range(v.size):
            if (v[k] & e64) == e64:
                return False
    return True
