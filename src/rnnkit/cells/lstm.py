"""LSTM cell (Hochreiter & Schmidhuber 1997; torch.nn.LSTM's form): one layer, one direction.

Gates stacked [i, f, g, o] along the G*H axis, as in torch:
    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh            (B, 4H)
    i = sigmoid(z_i)  f = sigmoid(z_f)  g = tanh(z_g)  o = sigmoid(z_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Backward, with dh = dL/dh_t (output + next step) and dc = dL/dc_t from step t+1:
    tc  = tanh(c_t)
    do  = dh * tc
    dc  = dc + dh * o * (1 - tc**2)
    di  = dc * g,  dg = dc * i,  df = dc * c_{t-1},  dc_{t-1} = dc * f
    dz  = [di * i*(1-i), df * f*(1-f), dg * (1-g**2), do * o*(1-o)]
    dh_{t-1} += dz W_hh
The cell path dc_{t-1} = dc * f is the "constant error carousel" that lets gradients survive many steps.

Shapes: x (T, B, D), state (h, c) each (B, H), out (T, B, H).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import input_projection, weight_grads
from .activations import sigmoid

GATES = 4
N_STATES = 2


class Cache(NamedTuple):
    x: np.ndarray          # (T, B, D)
    hs: np.ndarray         # (T+1, B, H); hs[0] = h_0
    cs: np.ndarray         # (T+1, B, H); cs[0] = c_0
    gates: np.ndarray      # (T, B, 4H) activated [i, f, g, o]
    tcs: np.ndarray        # (T, B, H) tanh(c_t)
    mask: np.ndarray | None


def step_forward(xw_t, h_prev, c_prev, W_hh, gates_out=None):
    """One step from the projected input xw_t (B, 4H). Returns h_t, c_t, tanh(c_t), gates (B, 4H)."""
    H = h_prev.shape[1]
    z = np.matmul(h_prev, W_hh.T, out=gates_out)                     # (B, 4H)
    z += xw_t
    sigmoid(z[:, :2 * H], out=z[:, :2 * H])                          # i, f
    np.tanh(z[:, 2 * H:3 * H], out=z[:, 2 * H:3 * H])                # g
    sigmoid(z[:, 3 * H:], out=z[:, 3 * H:])                          # o
    i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    return h, c, tc, z


def step_backward(dh, dc, c_prev, tc, gates, W_hh):
    """From dh = dL/dh_t, dc = dL/dc_t (next-step part): (dz (B, 4H), dh_{t-1}, dc_{t-1})."""
    H = tc.shape[1]
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    do = dh * tc
    dc = dc + dh * o * (1 - tc * tc)
    dz = np.empty_like(gates)
    dz[:, :H] = dc * g * i * (1 - i)                                 # di * i(1-i)
    dz[:, H:2 * H] = dc * c_prev * f * (1 - f)                       # df * f(1-f)
    dz[:, 2 * H:3 * H] = dc * i * (1 - g * g)                        # dg * (1-g^2)
    dz[:, 3 * H:] = do * o * (1 - o)
    return dz, dz @ W_hh, dc * f


def step(params, x_t, state):
    """One step for streaming/generation: x_t (B, D), state (h, c) -> (h_t, c_t)."""
    xw = x_t @ params["weight_ih"].T
    if "bias_ih" in params:
        xw += params["bias_ih"] + params["bias_hh"]
    h, c, _, _ = step_forward(xw, state[0], state[1], params["weight_hh"])
    return h, c


def forward(params, x, state, mask=None):
    """Run the whole sequence. Returns out (T, B, H), final state (h_T, c_T), cache.

    """
    T, B, _ = x.shape
    W_hh = params["weight_hh"]
    H = W_hh.shape[1]
    xw = input_projection(params, x, fold_hh_bias=True)             # (T, B, 4H)
    dtype = xw.dtype
    hs = np.empty((T + 1, B, H), dtype=dtype)
    cs = np.empty((T + 1, B, H), dtype=dtype)
    tcs = np.empty((T, B, H), dtype=dtype)
    gates = np.empty((T, B, 4 * H), dtype=dtype)
    hs[0], cs[0] = state
    for t in range(T):
        h, c, tcs[t], _ = step_forward(xw[t], hs[t], cs[t], W_hh, gates_out=gates[t])
        if mask is not None:                                         # padding: carry (h, c)
            m = mask[t]
            h = hs[t] + m * (h - hs[t])
            c = cs[t] + m * (c - cs[t])
        hs[t + 1], cs[t + 1] = h, c
    out = hs[1:] if mask is None else hs[1:] * mask
    return out, (hs[T].copy(), cs[T].copy()), Cache(x, hs, cs, gates, tcs, mask)


def backward(params, cache: Cache, dout, dstate, dh_seq=None):
    """BPTT. dout (T, B, H), dstate (dh_T, dc_T) or None -> dx, (dh_0, dc_0), grads.

    dh_seq, if given, is a (T, B, H) array filled with dL/dh_t (for gradient-flow diagnostics).
    """
    x, hs, cs, gates, tcs, mask = cache
    T = x.shape[0]
    W_hh = params["weight_hh"]
    dz = np.empty_like(gates)                                        # (T, B, 4H)
    if dstate is None:
        dh, dc = np.zeros_like(hs[0]), np.zeros_like(cs[0])
    else:
        dh, dc = (np.array(a, dtype=hs.dtype) for a in dstate)
    for t in reversed(range(T)):
        if mask is None:
            g = dout[t] + dh
            dz[t], dh, dc = step_backward(g, dc, cs[t], tcs[t], gates[t], W_hh)
        else:
            m = mask[t]
            g = dout[t] * m + dh
            dz[t], dh_rec, dc_rec = step_backward(g * m, dc * m, cs[t], tcs[t], gates[t], W_hh)
            dh = dh_rec + g * (1 - m)                                # padding passes straight through
            dc = dc_rec + dc * (1 - m)
        if dh_seq is not None:
            dh_seq[t] = g
    dx, grads = weight_grads(params, x, hs[:-1], dz)
    return dx, (dh, dc), grads
