"""Fused LSTM sequence forward/backward/step: the equations of `rnnkit.cells.lstm`, one pass per step.

Forward, per step: r = h_{t-1} W_hh^T (one BLAS call into a reused (B, 4H) buffer), then one kernel
reads z = x_t W_ih^T + r + b_ih + b_hh, writes the activated gates [i, f, g, o] over the projected
input in place and h_t, c_t (masked). tanh(c_t) is not stored: the backward recomputes it (one tanh
per element is cheaper than H more floats per step of memory). Backward, per step: one kernel turns
the gates into dz_t, then dh_rec = dz_t W_hh; the weight gradients are big products over K steps at
a time (`_seq.backward_in_chunks`). Generation (`step`) of small layers is one compiled call.

Memory kept between forward and backward: hs, cs (T+1, B, H) and gates (T, B, 4H): 6H per step and
row, against 7H + a (T, B, 4H) projection in the NumPy cell. The backward adds dz for K steps only,
and never writes the cache (the Module protocol allows a second backward for the same forward:
truncated BPTT passes a carried gradient back later).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from . import _blas
from ._blas import gemm
from ._seq import (all_finite, backward_in_chunks, biases, bind_step, buffer, dout_rows, dout_step, mask_rows,
                   matvec_rows, project, state_block, state_row, state_rows)
from ._math import JIT, sigmoid, tanh


class Cache(NamedTuple):
    x: np.ndarray          # (T, B, D)
    hs: np.ndarray         # (T+1, B, H); hs[0] = h_0
    cs: np.ndarray         # (T+1, B, H); cs[0] = c_0
    gates: np.ndarray      # (T, B, 4H) activated [i, f, g, o]
    mask: np.ndarray | None



@njit(**JIT)
def _gates_row(zb, rb, bi, bh, cp, hp, mb, co, ho):
    """One batch row: zb (4H) = x W_ih^T, rb (4H) = h_prev W_hh^T, biases bi, bh (4H); zb becomes
    the gates, then h, c.

    Several loops that each read and write few arrays: LLVM vectorises them without runtime alias
    checks (one fused loop was 2.5x slower at H=512).
    """
    H = cp.shape[0]
    for j in range(2 * H):                                           # i, f
        zb[j] = sigmoid(zb[j] + rb[j] + bi[j] + bh[j])
    for j in range(H):                                               # g (a loop from 0: a range
        k = 2 * H + j                                                # from 2H does not vectorise)
        zb[k] = tanh(zb[k] + rb[k] + bi[k] + bh[k])
    for j in range(H):                                               # o
        k = 3 * H + j
        zb[k] = sigmoid(zb[k] + rb[k] + bi[k] + bh[k])
    for j in range(H):
        c = zb[H + j] * cp[j] + zb[j] * zb[2 * H + j]                # c = f * c_prev + i * g
        h = zb[3 * H + j] * tanh(c)                                  # h = o * tanh(c)
        co[j] = cp[j] + mb * (c - cp[j])                             # padding carries the state
        ho[j] = hp[j] + mb * (h - hp[j])


@njit(**JIT)
def forward_step(z, r, b_ih, b_hh, h_prev, c_prev, m, h_out, c_out):
    """z (B, 4H): x_t W_ih^T, overwritten with the gates; r (B, 4H): h_prev W_hh^T; m (B,) 0/1."""
    for b in range(h_prev.shape[0]):
        _gates_row(z[b], r[b], b_ih, b_hh, c_prev[b], h_prev[b], m[b], c_out[b], h_out[b])


@njit(**JIT)
def step_small(x, W_ih, W_hh, b_ih, b_hh, h_prev, c_prev, h_out, c_out):
    """A whole generation step for small layers: both products (row dot products) and the gates in
    one call. Returns False, computing nothing, when x holds NaN/Inf."""
    if not all_finite(x):
        return False
    one = np.ones(1, x.dtype)[0]
    z, r = np.empty(W_hh.shape[0], x.dtype), np.empty(W_hh.shape[0], x.dtype)
    for b in range(x.shape[0]):
        matvec_rows(W_ih, x[b], z)
        matvec_rows(W_hh, h_prev[b], r)
        _gates_row(z, r, b_ih, b_hh, c_prev[b], h_prev[b], one, c_out[b], h_out[b])
    return True


@njit(**JIT)
def backward_step(gates, c, c_prev, dout, dh_rec, dpass, dc, m, dz, tc_row, dh_seq, record):
    """gates (B, 4H) -> dz (B, 4H). dh = dout*m + dh_rec + dpass (dpass: what padding passed on).

    Updates dc (B, H) to dL/dc_{t-1} and dpass to the part of dL/dh_{t-1} that skips W_hh. One
    short loop per output slice (LLVM vectorises a loop that writes one array; the single loop
    writing all four gate gradients and dc was 1.4-2x slower at H <= 128).
    """
    B, H = c.shape
    one = np.ones(1, m.dtype)[0]                                     # 1 in the data's dtype: a
    # literal 1 would promote float32 arithmetic to float64 and halve the vector width
    for b in range(B):
        mb = m[b]
        gb, cb, cpb, db, hb, pb, dcb = gates[b], c[b], c_prev[b], dout[b], dh_rec[b], dpass[b], dc[b]
        zb = dz[b]
        for j in range(H):                                           # dL/dh_t, both paths, kept
            pb[j] = db[j] * mb + hb[j] + pb[j]                       # in dpass for this step
        if record:
            sb = dh_seq[b]
            for j in range(H):
                sb[j] = pb[j]
        for j in range(H):                                           # tanh(c_t), recomputed
            tc_row[j] = tanh(cb[j])
        for j in range(H):                                           # do * o(1-o)
            o = gb[3 * H + j]
            zb[3 * H + j] = pb[j] * mb * tc_row[j] * o * (one - o)
        for j in range(H):                                           # dc_t (into tc_row)
            tc = tc_row[j]
            tc_row[j] = dcb[j] * mb + pb[j] * mb * gb[3 * H + j] * (one - tc * tc)
        for j in range(H):                                           # di * i(1-i)
            i = gb[j]
            zb[j] = tc_row[j] * gb[2 * H + j] * i * (one - i)
        for j in range(H):                                           # df * f(1-f)
            f = gb[H + j]
            zb[H + j] = tc_row[j] * cpb[j] * f * (one - f)
        for j in range(H):                                           # dg * (1-g^2)
            g = gb[2 * H + j]
            zb[2 * H + j] = tc_row[j] * gb[j] * (one - g * g)
        for j in range(H):                                           # dL/dc_{t-1}
            dcb[j] = tc_row[j] * gb[H + j] + dcb[j] * (one - mb)
        for j in range(H):                                           # what padding passes on
            pb[j] = pb[j] * (one - mb)


@njit(**JIT)
def forward_rows(t, gates, r, b_ih, b_hh, rows, cs, m):
    """`forward_step` for step t with the states hs addressed through `rows` (`_seq.state_rows`)."""
    for b in range(r.shape[0]):
        _gates_row(gates[t, b], r[b], b_ih, b_hh, cs[t, b], state_row(rows, t, b), m[t, b], cs[t + 1, b],
                   state_row(rows, t + 1, b))


@njit(**JIT)
def forward_seq(gates, r, b_ih, b_hh, rows, cs, W_hhT, m):
    """All T steps in one call (`forward`'s loop, with NumPy's BLAS called from compiled code)."""
    for t in range(gates.shape[0]):
        gemm(state_block(rows, t), W_hhT, r, 0.0)                   # r = h_{t-1} W_hh^T
        forward_rows(t, gates, r, b_ih, b_hh, rows, cs, m)


@njit(**JIT)
def backward_seq(t0, t1, gates, cs, dout, whole, d, dh_rec, dpass, dc, m, dz, tc_row, seq, record, W_hh):
    """Steps t1-1 .. t0 of `backward` in one call; dz holds those steps (index t - t0). dout (T, B, H)
    may be strided: then each step is copied into d (B, H) first (`_seq.dout_rows`)."""
    for t in range(t1 - 1, t0 - 1, -1):
        backward_step(gates[t], cs[t + 1], cs[t], dout_step(dout, whole, d, t), dh_rec, dpass, dc, m[t],
                      dz[t - t0], tc_row, seq[t if record else 0], record)
        gemm(dz[t - t0], W_hh, dh_rec, 0.0)                          # dh_rec = dz_t W_hh


def forward(params, x, state, mask=None, hs=None, workspace=None):
    """`rnnkit.backends.reference.Reference.forward` for this cell (hs: see `_seq.state_rows`); the
    gates and cs come from `workspace`, the states never (they are the layer's output)."""
    T, B, _ = x.shape
    W_hh = params["weight_hh"]
    H = W_hh.shape[1]
    dtype = W_hh.dtype
    gates = project(params, x, buffer(workspace, "gates", (T, B, 4 * H), dtype))
    b_ih, b_hh = biases(params, 4 * H, dtype)
    hs = np.empty((T + 1, B, H), dtype) if hs is None else hs
    rows = state_rows(hs)
    cs = buffer(workspace, "cs", (T + 1, B, H), dtype)
    hs[0], cs[0] = state
    W_hhT = np.ascontiguousarray(W_hh.T)                             # (H, 4H): no-trans BLAS per step
    r = np.empty((B, 4 * H), dtype)
    m = mask_rows(mask, T, B, dtype)
    if _blas.enabled():
        forward_seq(gates, r, b_ih, b_hh, rows, cs, W_hhT, m)
    else:
        for t in range(T):
            np.matmul(hs[t], W_hhT, out=r)
            forward_rows(t, gates, r, b_ih, b_hh, rows, cs, m)
    out = hs[1:] if mask is None else hs[1:] * mask
    return out, (hs[T].copy(), cs[T].copy()), Cache(x, hs, cs, gates, mask)


def backward(params, cache: Cache, dout, dstate, dh_seq=None, dx_add=None, need_dx=True,
             workspace=None):
    """`rnnkit.backends.reference.Reference.backward` for this cell (the cache stays valid for another backward)."""
    x, hs, cs, gates, mask = cache
    T, B, H = cs.shape[0] - 1, cs.shape[1], cs.shape[2]
    W_hh = params["weight_hh"]
    dtype = W_hh.dtype
    whole, d = dout_rows(dout, B, H, dtype)
    if dstate is None:
        dh_rec, dc = np.zeros((B, H), dtype), np.zeros((B, H), dtype)
    else:
        dh_rec, dc = (np.array(a, dtype=dtype) for a in dstate)
    dpass = np.zeros((B, H), dtype)
    m = mask_rows(mask, T, B, dtype)
    record = dh_seq is not None
    seq = dh_seq if record else dpass[None]
    tc_row = np.empty(H, dtype)

    def steps(t0, t1, dz, _):
        if _blas.enabled():
            backward_seq(t0, t1, gates, cs, dout, whole, d, dh_rec, dpass, dc, m, dz, tc_row, seq, record,
                         W_hh)
            return
        for t in range(t1 - 1, t0 - 1, -1):
            backward_step(gates[t], cs[t + 1], cs[t], dout_step(dout, whole, d, t), dh_rec, dpass, dc,
                          m[t], dz[t - t0], tc_row, seq[t if record else 0], record)
            np.matmul(dz[t - t0], W_hh, out=dh_rec)

    dx, grads = backward_in_chunks(params, x, hs[:-1], 4 * H, steps, dx_add=dx_add, need_dx=need_dx,
                                   workspace=workspace)
    dh_rec += dpass
    return dx, (dh_rec, dc), grads



def stepper(params, B):
    """run(x_t, (h, c), (h_out, c_out)) for batch B with these weights bound: one generation step
    written into the out arrays (the layer keeps one per layer and batch size). Raises ValueError when
    x_t holds NaN/Inf (checked in the kernel)."""
    def small(x, W_ih, W_hh, b_ih, b_hh, st, out):
        return step_small(x, W_ih, W_hh, b_ih, b_hh, st[0], st[1], out[0], out[1])

    def large(z, r, b_ih, b_hh, st, out, ones):
        forward_step(z, r, b_ih, b_hh, st[0], st[1], ones, out[0], out[1])

    return bind_step(params, B, small, large)
