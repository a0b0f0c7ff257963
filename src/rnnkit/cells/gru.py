"""GRU cell (Cho et al. 2014; torch.nn.GRU's form): one layer, one direction.

Gates stacked [r, z, n] along the G*H axis, as in torch; b_hn sits *inside* the reset product, so the
recurrent projection is kept separate from the input projection:
    xi_t = x_t W_ih^T + b_ih                  (B, 3H)   all steps at once, before the loop
    hh_t = h_{t-1} W_hh^T + b_hh              (B, 3H)
    r = sigmoid(xi_r + hh_r)
    z = sigmoid(xi_z + hh_z)
    n = tanh(xi_n + r * hh_n)
    h_t = (1 - z) * n + z * h_{t-1}  =  n + z * (h_{t-1} - n)   (the code's form: one product)

Backward, with dh = dL/dh_t (output + next step):
    dn = dh * (1 - z),  dz = dh * (h_{t-1} - n)
    dan = dn * (1 - n**2)
    dar = dan * hh_n * r*(1-r),  daz = dz * z*(1-z)
    dxi = [dar, daz, dan]        dhh = [dar, daz, dan * r]
    dh_{t-1} = dh * z + dhh W_hh
    dW_ih = sum dxi^T x,  dW_hh = sum dhh^T h_{t-1},  db_ih = sum dxi,  db_hh = sum dhh

Shapes: x (T, B, D), state (h,) with h (B, H), out (T, B, H).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import input_projection, weight_grads
from .activations import sigmoid

GATES = 3
N_STATES = 1


class Cache(NamedTuple):
    x: np.ndarray          # (T, B, D)
    hs: np.ndarray         # (T+1, B, H); hs[0] = h_0
    gates: np.ndarray      # (T, B, 3H) activated [r, z, n]
    hhn: np.ndarray        # (T, B, H) hh_n = h_{t-1} W_hn^T + b_hn, needed for dr
    mask: np.ndarray | None


def step_forward(xi_t, h_prev, W_hh, b_hh=None, gates_out=None):
    """One step from the projected input xi_t (B, 3H). Returns h_t, gates [r, z, n] (B, 3H), hh_n."""
    H = h_prev.shape[1]
    hh = h_prev @ W_hh.T                                             # (B, 3H)
    if b_hh is not None:
        hh += b_hh
    gates = np.add(xi_t[:, :2 * H], hh[:, :2 * H], out=None if gates_out is None else gates_out[:, :2 * H])
    sigmoid(gates, out=gates)                                        # r, z
    r, z = gates[:, :H], gates[:, H:]
    hhn = hh[:, 2 * H:]
    n = np.tanh(xi_t[:, 2 * H:] + r * hhn)
    h = n + z * (h_prev - n)
    if gates_out is None:
        gates_out = np.concatenate([gates, n], axis=1)
    else:
        gates_out[:, 2 * H:] = n
    return h, gates_out, hhn


def step_backward(dh, h_prev, gates, hhn, W_hh):
    """From dh = dL/dh_t: (dxi (B, 3H), dhh (B, 3H), dh_{t-1})."""
    H = h_prev.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dan = dh * (1 - z) * (1 - n * n)
    dxi = np.empty_like(gates)
    dxi[:, :H] = dan * hhn * r * (1 - r)                             # dar
    dxi[:, H:2 * H] = dh * (h_prev - n) * z * (1 - z)                # daz
    dxi[:, 2 * H:] = dan
    dhh = dxi.copy()
    dhh[:, 2 * H:] *= r
    return dxi, dhh, dh * z + dhh @ W_hh


def step(params, x_t, state):
    """One step for streaming/generation: x_t (B, D), state (h,) -> (h_t,)."""
    xi = x_t @ params["weight_ih"].T
    if "bias_ih" in params:
        xi += params["bias_ih"]
    h, _, _ = step_forward(xi, state[0], params["weight_hh"], params.get("bias_hh"))
    return (h,)


def forward(params, x, state, mask=None):
    """Run the whole sequence. Returns out (T, B, H), final state (h_T,), cache.

    """
    T, B, _ = x.shape
    W_hh, b_hh = params["weight_hh"], params.get("bias_hh")
    H = W_hh.shape[1]
    xi = input_projection(params, x, fold_hh_bias=False)            # (T, B, 3H)
    hs = np.empty((T + 1, B, H), dtype=xi.dtype)
    gates = np.empty((T, B, 3 * H), dtype=xi.dtype)
    hhn = np.empty((T, B, H), dtype=xi.dtype)
    hs[0] = state[0]
    for t in range(T):
        h, _, hhn[t] = step_forward(xi[t], hs[t], W_hh, b_hh, gates_out=gates[t])
        if mask is not None:                                         # padding: carry the state
            h = hs[t] + mask[t] * (h - hs[t])
        hs[t + 1] = h
    out = hs[1:] if mask is None else hs[1:] * mask
    return out, (hs[T].copy(),), Cache(x, hs, gates, hhn, mask)


def backward(params, cache: Cache, dout, dstate, dh_seq=None):
    """BPTT. dout (T, B, H), dstate (dh_T,) or None -> dx (T, B, D), (dh_0,), grads.

    dh_seq, if given, is a (T, B, H) array filled with dL/dh_t (for gradient-flow diagnostics).
    """
    x, hs, gates, hhn, mask = cache
    T = x.shape[0]
    W_hh = params["weight_hh"]
    dxi = np.empty_like(gates)                                       # (T, B, 3H)
    dhh = np.empty_like(gates)                                       # (T, B, 3H)
    dh = np.zeros_like(hs[0]) if dstate is None else np.array(dstate[0], dtype=hs.dtype)
    for t in reversed(range(T)):
        if mask is None:
            g = dout[t] + dh
            dxi[t], dhh[t], dh = step_backward(g, hs[t], gates[t], hhn[t], W_hh)
        else:
            m = mask[t]
            g = dout[t] * m + dh
            dxi[t], dhh[t], dh_rec = step_backward(g * m, hs[t], gates[t], hhn[t], W_hh)
            dh = dh_rec + g * (1 - m)
        if dh_seq is not None:
            dh_seq[t] = g
    dx, grads = weight_grads(params, x, hs[:-1], dxi, dhh)
    return dx, (dh,), grads
