"""Fused Elman RNN sequence forward/backward/step: the equations of `rnnkit.cells.rnn`.

Forward: the input projection x_t W_ih^T is written straight into hs[1:], and per step one kernel
replaces it with f(x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh) (masked): no (T, B, H) projection array
besides the states. Backward: one kernel per step for da_t = g_t * f'(h_t), then dh_rec = da_t W_hh;
the weight gradients are taken K steps at a time (`_seq.backward_in_chunks`), so da is kept for K
steps only.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from . import _blas
from ._blas import gemm
from ._seq import (all_finite, backward_in_chunks, biases, bind_step, dout_rows, dout_step, mask_rows,
                   matvec_rows, project, state_block, state_row, state_rows)
from ._math import JIT, tanh

RELU = {"tanh": False, "relu": True}  # nonlinearity name -> the kernels' flag


class Cache(NamedTuple):
    x: np.ndarray          # (T, B, D) input
    hs: np.ndarray         # (T+1, B, H) states; hs[0] = h_0, hs[t+1] = h_t
    mask: np.ndarray | None
    nonlinearity: str



@njit(inline="always", **JIT)
def _step_row(ab, rb, b_ih, b_hh, hp, mb, relu):
    """One batch row: ab (H) = x_t W_ih^T, replaced by h_t = f(ab + rb + b_ih + b_hh) (masked).
    Inlined by Numba: called once per row, the loop over B16 H64 rows was 10% slower (an RNN row is
    little work)."""
    for j in range(hp.shape[0]):
        s = ab[j] + rb[j] + b_ih[j] + b_hh[j]
        h = max(s, 0.0) if relu else tanh(s)
        ab[j] = hp[j] + mb * (h - hp[j])


@njit(**JIT)
def forward_step(a, rh, b_ih, b_hh, h_prev, m, relu):
    """a (B, H): x_t W_ih^T, replaced by h_t = f(a + rh + b_ih + b_hh) (masked); rh: h_prev W_hh^T."""
    for b in range(h_prev.shape[0]):
        _step_row(a[b], rh[b], b_ih, b_hh, h_prev[b], m[b], relu)


@njit(**JIT)
def forward_rows(t, rh, b_ih, b_hh, rows, m, relu):
    """`forward_step` for step t, with hs (x_t W_ih^T in hs[t+1]) addressed through `rows`
    (`_seq.state_rows`)."""
    for b in range(rh.shape[0]):
        _step_row(state_row(rows, t + 1, b), rh[b], b_ih, b_hh, state_row(rows, t, b), m[t, b], relu)


@njit(**JIT)
def step_small(x, W_ih, W_hh, b_ih, b_hh, h_prev, h_out, relu):
    """A whole generation step for small layers in one call (see lstm.step_small); False on NaN/Inf."""
    if not all_finite(x):
        return False
    H = W_hh.shape[0]
    rh = np.empty(H, x.dtype)
    for b in range(x.shape[0]):
        hb = h_out[b]
        matvec_rows(W_ih, x[b], hb)
        matvec_rows(W_hh, h_prev[b], rh)
        for j in range(H):
            s = hb[j] + rh[j] + b_ih[j] + b_hh[j]
            hb[j] = max(s, 0.0) if relu else tanh(s)
    return True


@njit(**JIT)
def backward_step(rows, t, dout, dh_rec, dpass, m, da, dh_seq, record, relu):
    """da (B, H) = g_t * m * f'(h_t) with g_t = dout*m + dh_rec + dpass; dpass = g_t * (one - m).
    h_t is hs[t+1], addressed through `rows` (`_seq.state_rows`)."""
    B, H = dout.shape
    one = np.ones(1, m.dtype)[0]                                     # 1 in the data's dtype: a
    # literal 1 would promote float32 arithmetic to float64 and halve the vector width
    for b in range(B):
        mb = m[b]
        h = state_row(rows, t + 1, b)
        for j in range(H):
            g_t = dout[b, j] * mb + dh_rec[b, j] + dpass[b, j]
            if record:
                dh_seq[b, j] = g_t
            y = h[j]
            d = (one if y > 0 else one - one) if relu else one - y * y
            da[b, j] = g_t * mb * d
            dpass[b, j] = g_t * (one - mb)


@njit(**JIT)
def forward_seq(rows, rh, b_ih, b_hh, m, relu, W_hhT):
    """All T steps in one call (`forward`'s loop, with NumPy's BLAS called from compiled code)."""
    for t in range(m.shape[0]):
        gemm(state_block(rows, t), W_hhT, rh, 0.0)                  # h_{t-1} W_hh^T
        forward_rows(t, rh, b_ih, b_hh, rows, m, relu)


@njit(**JIT)
def backward_seq(t0, t1, rows, dout, whole, d, dh_rec, dpass, m, da, seq, record, relu, W_hh):
    """Steps t1-1 .. t0 of `backward` in one call; da holds those steps (index t - t0). dout (T, B, H)
    may be strided: then each step is copied into d (B, H) first (`_seq.dout_rows`)."""
    for t in range(t1 - 1, t0 - 1, -1):
        backward_step(rows, t, dout_step(dout, whole, d, t), dh_rec, dpass, m[t], da[t - t0],
                      seq[t if record else 0], record, relu)
        gemm(da[t - t0], W_hh, dh_rec, 0.0)                          # dh_rec = da_t W_hh


def forward(params, x, state, mask=None, nonlinearity="tanh", hs=None, workspace=None):
    """`rnnkit.backends.reference.Reference.forward` for this cell (hs: see `_seq.state_rows`)."""
    if nonlinearity not in RELU:
        raise ValueError(f"nonlinearity must be one of {sorted(RELU)}, got {nonlinearity!r}")
    T, B, _ = x.shape
    W_hh = params["weight_hh"]
    H = W_hh.shape[1]
    dtype = W_hh.dtype
    hs = np.empty((T + 1, B, H), dtype) if hs is None else hs
    rows = state_rows(hs)
    hs[0] = state[0]
    project(params, x, hs[1:])                                       # straight into the states
    b_ih, b_hh = biases(params, H, dtype)
    W_hhT = np.ascontiguousarray(W_hh.T)
    rh = np.empty((B, H), dtype)
    m = mask_rows(mask, T, B, dtype)
    relu = RELU[nonlinearity]
    if _blas.enabled():
        forward_seq(rows, rh, b_ih, b_hh, m, relu, W_hhT)
    else:
        for t in range(T):
            np.matmul(hs[t], W_hhT, out=rh)
            forward_rows(t, rh, b_ih, b_hh, rows, m, relu)
    out = hs[1:] if mask is None else hs[1:] * mask
    return out, (hs[T].copy(),), Cache(x, hs, mask, nonlinearity)


def backward(params, cache: Cache, dout, dstate, dh_seq=None, dx_add=None, need_dx=True,
             workspace=None):
    """`rnnkit.backends.reference.Reference.backward` for this cell."""
    x, hs, mask, nonlinearity = cache
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    W_hh = params["weight_hh"]
    dtype = W_hh.dtype
    whole, d = dout_rows(dout, B, H, dtype)
    dh_rec = np.zeros((B, H), dtype) if dstate is None else np.array(dstate[0], dtype=dtype)
    dpass = np.zeros((B, H), dtype)
    m = mask_rows(mask, T, B, dtype)
    relu = RELU[nonlinearity]
    record = dh_seq is not None
    seq = dh_seq if record else dpass[None]
    rows = state_rows(hs)

    def steps(t0, t1, da, _):
        if _blas.enabled():
            backward_seq(t0, t1, rows, dout, whole, d, dh_rec, dpass, m, da, seq, record, relu, W_hh)
            return
        for t in range(t1 - 1, t0 - 1, -1):
            backward_step(rows, t, dout_step(dout, whole, d, t), dh_rec, dpass, m[t], da[t - t0],
                          seq[t if record else 0], record, relu)
            np.matmul(da[t - t0], W_hh, out=dh_rec)

    dx, grads = backward_in_chunks(params, x, hs[:-1], H, steps, dx_add=dx_add, need_dx=need_dx,
                                   workspace=workspace)
    dh_rec += dpass
    return dx, (dh_rec,), grads



def stepper(params, B, nonlinearity="tanh"):
    """run(x_t, (h,), (h_out,)) for batch B with these weights bound (see `lstm.stepper`)."""
    relu = RELU[nonlinearity]

    def small(x, W_ih, W_hh, b_ih, b_hh, st, out):
        return step_small(x, W_ih, W_hh, b_ih, b_hh, st[0], out[0], relu)

    def large(a, rh, b_ih, b_hh, st, out, ones):
        forward_step(a, rh, b_ih, b_hh, st[0], ones, relu)           # h_t written over a
        out[0][...] = a

    return bind_step(params, B, small, large)
