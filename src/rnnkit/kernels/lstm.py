"""Fused LSTM sequence forward/backward/step: the equations of `rnnkit.cells.lstm`, one pass per step.

Forward, per step: r = h_{t-1} W_hh^T (one BLAS call into a reused (B, 4H) buffer), then one kernel
reads z = xw_t + r, writes the activated gates [i, f, g, o] over xw_t in place and h_t, c_t (masked).
tanh(c_t) is not stored: the backward recomputes it (one tanh per element is cheaper than H more floats
per step of memory). Backward, per step: one kernel turns the gates into dz_t, then dh_rec = dz_t W_hh.
The weight gradients are the same big products as in the NumPy cell (`_common.weight_grads`).

Memory kept between forward and backward: hs, cs (T+1, B, H) and gates (T, B, 4H): 6H per step and
row, against 7H + a (T, B, 4H) projection in the NumPy cell. The backward needs dz (T, B, 4H) beside
them: writing dz over the gates would save it, but the Module protocol allows a second backward for
the same forward (truncated BPTT passes a carried gradient back later), so the cache is left intact.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from . import register_cache
from ._seq import backward_in_chunks, mask_rows, project, step_reader
from ._math import JIT, sigmoid, tanh


class Cache(NamedTuple):
    x: np.ndarray          # (T, B, D)
    hs: np.ndarray         # (T+1, B, H); hs[0] = h_0
    cs: np.ndarray         # (T+1, B, H); cs[0] = c_0
    gates: np.ndarray      # (T, B, 4H) activated [i, f, g, o]
    mask: np.ndarray | None


register_cache(Cache, "lstm")


@njit(**JIT)
def forward_step(z, r, h_prev, c_prev, m, h_out, c_out):
    """z (B, 4H): projected input, overwritten with the gates; r (B, 4H): h_prev W_hh^T; m (B,) 0/1.

    Two loops per row rather than one: a loop that reads and writes few arrays is vectorised by
    LLVM without runtime alias checks (the single fused loop was 2.5x slower at H=512).
    """
    B, H = h_prev.shape
    for b in range(B):
        zb, rb = z[b], r[b]
        for j in range(2 * H):                                       # i, f
            zb[j] = sigmoid(zb[j] + rb[j])
        for j in range(H):                                           # g (a loop from 0: a range
            zb[2 * H + j] = tanh(zb[2 * H + j] + rb[2 * H + j])      # starting at 2H does not vectorise)
        for j in range(H):                                           # o
            zb[3 * H + j] = sigmoid(zb[3 * H + j] + rb[3 * H + j])
        mb = m[b]
        cp, hp, co, ho = c_prev[b], h_prev[b], c_out[b], h_out[b]
        for j in range(H):
            c = zb[H + j] * cp[j] + zb[j] * zb[2 * H + j]            # c = f * c_prev + i * g
            h = zb[3 * H + j] * tanh(c)                              # h = o * tanh(c)
            co[j] = cp[j] + mb * (c - cp[j])                         # padding carries the state
            ho[j] = hp[j] + mb * (h - hp[j])


@njit(**JIT)
def backward_step(gates, c, c_prev, dout, dh_rec, dpass, dc, m, dz, tc_row, dh_seq, record):
    """gates (B, 4H) -> dz (B, 4H). dh = dout*m + dh_rec + dpass (dpass: what padding passed on).

    Updates dc (B, H) to dL/dc_{t-1} and dpass to the part of dL/dh_{t-1} that skips W_hh.
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
        for j in range(H):                                           # tanh(c_t) in its own loop:
            tc_row[j] = tanh(cb[j])                                  # inside the big one it is not
        for j in range(H):                                           # vectorised (3x slower)
            dh = pb[j] * mb
            i = gb[j]
            f = gb[H + j]
            g = gb[2 * H + j]
            o = gb[3 * H + j]
            tc = tc_row[j]
            dcc = dcb[j] * mb + dh * o * (one - tc * tc)
            zb[j] = dcc * g * i * (one - i)
            zb[H + j] = dcc * cpb[j] * f * (one - f)
            zb[2 * H + j] = dcc * i * (one - g * g)
            zb[3 * H + j] = dh * tc * o * (one - o)
            dcb[j] = dcc * f + dcb[j] * (one - mb)
        for j in range(H):                                           # what padding passes on
            pb[j] = pb[j] * (one - mb)


def forward(params, x, state, mask=None):
    """Same contract as `rnnkit.cells.lstm.forward`."""
    T, B, _ = x.shape
    W_hh = params["weight_hh"]
    H = W_hh.shape[1]
    dtype = W_hh.dtype
    gates = project(params, x, np.empty((T, B, 4 * H), dtype), fold_hh_bias=True)
    hs = np.empty((T + 1, B, H), dtype)
    cs = np.empty((T + 1, B, H), dtype)
    hs[0], cs[0] = state
    W_hhT = np.ascontiguousarray(W_hh.T)                             # (H, 4H): no-trans BLAS per step
    r = np.empty((B, 4 * H), dtype)
    m = mask_rows(mask, T, B, dtype)
    for t in range(T):
        np.matmul(hs[t], W_hhT, out=r)
        forward_step(gates[t], r, hs[t], cs[t], m[t], hs[t + 1], cs[t + 1])
    out = hs[1:] if mask is None else hs[1:] * mask
    return out, (hs[T].copy(), cs[T].copy()), Cache(x, hs, cs, gates, mask)


def backward(params, cache: Cache, dout, dstate, dh_seq=None):
    """Same contract as `rnnkit.cells.lstm.backward` (the cache stays valid for another backward)."""
    x, hs, cs, gates, mask = cache
    T, B, H = cs.shape[0] - 1, cs.shape[1], cs.shape[2]
    W_hh = params["weight_hh"]
    dtype = W_hh.dtype
    dout_t = step_reader(dout, dtype)
    if dstate is None:
        dh_rec, dc = np.zeros((B, H), dtype), np.zeros((B, H), dtype)
    else:
        dh_rec, dc = (np.array(a, dtype=dtype) for a in dstate)
    dpass = np.zeros((B, H), dtype)
    m = mask_rows(mask, T, B, dtype)
    record = dh_seq is not None
    seq = dh_seq if record else dpass[None]
    tc_row = np.empty(H, dtype)

    def step(t, dz_t, _):
        backward_step(gates[t], cs[t + 1], cs[t], dout_t(t), dh_rec, dpass, dc, m[t], dz_t, tc_row,
                      seq[t if record else 0], record)
        np.matmul(dz_t, W_hh, out=dh_rec)

    dx, grads = backward_in_chunks(params, x, hs[:-1], 4 * H, step)
    dh_rec += dpass
    return dx, (dh_rec, dc), grads


def step(params, x_t, state):
    """Same contract as `rnnkit.cells.lstm.step`: x_t (B, D), (h, c) -> (h_t, c_t)."""
    h_prev, c_prev = state
    z = np.dot(x_t, params["weight_ih"].T)                           # (B, 4H); np.dot: less call
    # overhead than np.matmul for these small products
    r = np.dot(h_prev, params["weight_hh"].T)
    if "bias_ih" in params:                                          # added in place: fewer calls
        np.add(r, params["bias_ih"], out=r)                          # than a summed bias
        np.add(r, params["bias_hh"], out=r)
    h, c = np.empty_like(h_prev), np.empty_like(c_prev)
    forward_step(z, r, h_prev, c_prev, _ones(h_prev.shape[0], z.dtype), h, c)
    return h, c


_ONES: dict = {}


def _ones(B, dtype):
    """A reused all-ones mask row for step() (no allocation per generated token)."""
    key = (B, dtype)
    if key not in _ONES:
        _ONES[key] = np.ones(B, dtype)
    return _ONES[key]
