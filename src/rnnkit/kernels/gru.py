"""Fused GRU sequence forward/backward/step: the equations of `rnnkit.cells.gru`, one pass per step.

Forward, per step: r_h = h_{t-1} W_hh^T into a reused (B, 3H) buffer; one kernel adds b_ih and b_hh,
writes the gates [r, z, n] over the projected input xi_t in place, hh_n and h_t (masked). Backward, per
step: one kernel writes dxi_t = [dar, daz, dan], dan * r (so dhh = [dar, daz, dan * r] is kept without a
second (T, B, 3H) array) and the same dhh_t contiguously for the recurrent product dh_rec = dhh_t W_hh.
The weight gradients are the NumPy cell's products, taken K steps at a time
(`_seq.backward_in_chunks`): dxi and dan * r are kept for K steps only.
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
    gates: np.ndarray      # (T, B, 3H) activated [r, z, n]
    hhn: np.ndarray        # (T, B, H) h_{t-1} W_hn^T + b_hn
    mask: np.ndarray | None



@njit(**JIT)
def _gates_row(xb, rb, b_ih, b_hh, hp, mb, nb, ho):
    """One batch row: xb (3H) = x W_ih^T, overwritten with [r, z, n]; rb (3H) = h_prev W_hh^T;
    nb (H) gets hh_n = W_hn h_prev + b_hn, ho (H) gets h_t (masked).

    Short loops with few arrays each vectorise without runtime alias checks (see lstm._gates_row).
    """
    H = hp.shape[0]
    for j in range(2 * H):                                           # r, z
        xb[j] = sigmoid(xb[j] + b_ih[j] + rb[j] + b_hh[j])
    for j in range(H):
        nb[j] = rb[2 * H + j] + b_hh[2 * H + j]                      # hh_n
    for j in range(H):                                               # n into h_out first: a loop that
        ho[j] = tanh(xb[2 * H + j] + b_ih[2 * H + j] + xb[j] * nb[j])  # writes the array it reads at
    for j in range(H):                                               # other offsets is not vectorised
        xb[2 * H + j] = ho[j]
    for j in range(H):
        n = ho[j]
        h = n + xb[H + j] * (hp[j] - n)                              # h = (1 - z) n + z h_prev
        ho[j] = hp[j] + mb * (h - hp[j])                             # padding carries the state


@njit(**JIT)
def forward_step(xi, rh, b_ih, b_hh, h_prev, m, hhn_out, h_out):
    """xi (B, 3H): x_t W_ih^T, overwritten with [r, z, n]; rh (B, 3H): h_prev W_hh^T; m (B,) 0/1."""
    for b in range(h_prev.shape[0]):
        _gates_row(xi[b], rh[b], b_ih, b_hh, h_prev[b], m[b], hhn_out[b], h_out[b])


@njit(**JIT)
def step_small(x, W_ih, W_hh, b_ih, b_hh, h_prev, h_out):
    """A whole generation step for small layers in one call (see lstm.step_small); False on NaN/Inf."""
    if not all_finite(x):
        return False
    one = np.ones(1, x.dtype)[0]
    G, H = W_hh.shape[0], W_hh.shape[1]
    xi, rh, nb = np.empty(G, x.dtype), np.empty(G, x.dtype), np.empty(H, x.dtype)
    for b in range(x.shape[0]):
        matvec_rows(W_ih, x[b], xi)
        matvec_rows(W_hh, h_prev[b], rh)
        _gates_row(xi, rh, b_ih, b_hh, h_prev[b], one, nb, h_out[b])
    return True


@njit(**JIT)
def backward_step(gates, hhn, rows, t, dout, dh_rec, dpass, m, dxi, dhn, dhh, dh_seq, record):
    """From the gates (B, 3H): dxi = [dar, daz, dan], dhn = dan * r, dhh (B, 3H) = [dar, daz, dan * r].

    h_{t-1} is hs[t], addressed through `rows` (`_seq.state_rows`). dh = dout*m + dh_rec + dpass;
    dpass becomes the part of dL/dh_{t-1} that skips W_hh (dh * z and what padding passes on).
    """
    B, H = dout.shape
    one = np.ones(1, m.dtype)[0]                                     # 1 in the data's dtype (a literal
    for b in range(B):                                               # 1 would promote to float64)
        mb = m[b]
        gb, nb, db, hb, pb, sb = gates[b], hhn[b], dout[b], dh_rec[b], dpass[b], dhh[b]
        hp = state_row(rows, t, b)
        xb, qnb = dxi[b], dhn[b]
        for j in range(H):                                           # dL/dh_t, both paths
            pb[j] = db[j] * mb + hb[j] + pb[j]
        if record:
            qb = dh_seq[b]
            for j in range(H):
                qb[j] = pb[j]
        for j in range(H):
            g_t = pb[j]
            dh = g_t * mb
            r = gb[j]
            z = gb[H + j]
            n = gb[2 * H + j]
            dan = dh * (one - z) * (one - n * n)
            dar = dan * nb[j] * r * (one - r)
            daz = dh * (hp[j] - n) * z * (one - z)
            xb[j] = dar
            xb[H + j] = daz
            xb[2 * H + j] = dan
            sb[j] = dar
            sb[H + j] = daz
            sb[2 * H + j] = dan * r
            qnb[j] = dan * r
            pb[j] = dh * z + g_t * (one - mb)


@njit(**JIT)
def forward_rows(t, gates, rh, b_ih, b_hh, rows, m, hhn):
    """`forward_step` for step t with the states hs addressed through `rows` (`_seq.state_rows`)."""
    for b in range(rh.shape[0]):
        _gates_row(gates[t, b], rh[b], b_ih, b_hh, state_row(rows, t, b), m[t, b], hhn[t, b],
                   state_row(rows, t + 1, b))


@njit(**JIT)
def forward_seq(gates, rh, b_ih, b_hh, rows, m, hhn, W_hhT):
    """All T steps in one call (`forward`'s loop, with NumPy's BLAS called from compiled code)."""
    for t in range(gates.shape[0]):
        gemm(state_block(rows, t), W_hhT, rh, 0.0)                  # r_h = h_{t-1} W_hh^T
        forward_rows(t, gates, rh, b_ih, b_hh, rows, m, hhn)


@njit(**JIT)
def backward_seq(t0, t1, gates, hhn, rows, dout, whole, d, dh_rec, dpass, m, dxi, dhn, dhh, seq, record,
                 W_hh):
    """Steps t1-1 .. t0 of `backward` in one call; dxi and dhn hold those steps (index t - t0). dout
    (T, B, H) may be strided: then each step is copied into d (B, H) first (`_seq.dout_rows`)."""
    for t in range(t1 - 1, t0 - 1, -1):
        k = t - t0
        backward_step(gates[t], hhn[t], rows, t, dout_step(dout, whole, d, t), dh_rec, dpass, m[t], dxi[k],
                      dhn[k], dhh, seq[t if record else 0], record)
        gemm(dhh, W_hh, dh_rec, 0.0)                                 # dh_rec = dhh_t W_hh


def forward(params, x, state, mask=None, hs=None, workspace=None):
    """`rnnkit.backends.reference.Reference.forward` for this cell (hs: see `_seq.state_rows`); the
    gates and hhn come from `workspace`, the states never (they are the layer's output)."""
    T, B, _ = x.shape
    W_hh = params["weight_hh"]
    H = W_hh.shape[1]
    dtype = W_hh.dtype
    gates = project(params, x, buffer(workspace, "gates", (T, B, 3 * H), dtype))
    b_ih, b_hh = biases(params, 3 * H, dtype)
    hs = np.empty((T + 1, B, H), dtype) if hs is None else hs
    rows = state_rows(hs)
    hhn = buffer(workspace, "hhn", (T, B, H), dtype)
    hs[0] = state[0]
    W_hhT = np.ascontiguousarray(W_hh.T)                             # (H, 3H): no-trans BLAS per step
    rh = np.empty((B, 3 * H), dtype)
    m = mask_rows(mask, T, B, dtype)
    if _blas.enabled():
        forward_seq(gates, rh, b_ih, b_hh, rows, m, hhn, W_hhT)
    else:
        for t in range(T):
            np.matmul(hs[t], W_hhT, out=rh)
            forward_rows(t, gates, rh, b_ih, b_hh, rows, m, hhn)
    out = hs[1:] if mask is None else hs[1:] * mask
    return out, (hs[T].copy(),), Cache(x, hs, gates, hhn, mask)


def backward(params, cache: Cache, dout, dstate, dh_seq=None, dx_add=None, need_dx=True,
             workspace=None):
    """`rnnkit.backends.reference.Reference.backward` for this cell (the cache stays valid for another backward)."""
    x, hs, gates, hhn, mask = cache
    T, B, H = hhn.shape
    W_hh = params["weight_hh"]
    dtype = W_hh.dtype
    whole, d = dout_rows(dout, B, H, dtype)
    dh_rec = np.zeros((B, H), dtype) if dstate is None else np.array(dstate[0], dtype=dtype)
    dpass = np.zeros((B, H), dtype)
    dhh = np.empty((B, 3 * H), dtype)
    m = mask_rows(mask, T, B, dtype)
    record = dh_seq is not None
    seq = dh_seq if record else dpass[None]
    rows = state_rows(hs)

    def steps(t0, t1, dxi, dhn):
        if _blas.enabled():
            backward_seq(t0, t1, gates, hhn, rows, dout, whole, d, dh_rec, dpass, m, dxi, dhn, dhh, seq,
                         record, W_hh)
            return
        for t in range(t1 - 1, t0 - 1, -1):
            k = t - t0
            backward_step(gates[t], hhn[t], rows, t, dout_step(dout, whole, d, t), dh_rec, dpass, m[t],
                          dxi[k], dhn[k], dhh, seq[t if record else 0], record)
            np.matmul(dhh, W_hh, out=dh_rec)

    # the recurrent pre-activation gradient is [dxi[..., :2H], dan * r]: the tail gives dW_hh[2H:]
    dx, grads = backward_in_chunks(params, x, hs[:-1], 3 * H, steps, tail=H, dx_add=dx_add, need_dx=need_dx,
                                   workspace=workspace)
    dh_rec += dpass
    return dx, (dh_rec,), grads



def stepper(params, B):
    """run(x_t, (h,), (h_out,)) for batch B with these weights bound (see `lstm.stepper`)."""
    def small(x, W_ih, W_hh, b_ih, b_hh, st, out):
        return step_small(x, W_ih, W_hh, b_ih, b_hh, st[0], out[0])

    def large(xi, rh, b_ih, b_hh, st, out, ones):
        forward_step(xi, rh, b_ih, b_hh, st[0], ones, np.empty_like(out[0]), out[0])

    return bind_step(params, B, small, large)
