"""Elman RNN cell: one layer, one direction; forward and backpropagation through time.

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
    h_t = f(a_t)                       f = tanh or relu  (torch.nn.RNN's `nonlinearity`)

Backward, with g_t = dL/dh_t the total gradient into h_t (from the output at t *and* from step t+1):
    da_t      = g_t * f'(h_t)          (f' from the output: 1 - h**2, or h > 0)
    dh_{t-1} += da_t W_hh              (the recurrent path, added to dout[t-1])
    dW_ih = sum_t da_t^T x_t,  dW_hh = sum_t da_t^T h_{t-1},  db_ih = db_hh = sum_t da_t

Shapes: x (T, B, D), h (B, H), out (T, B, H). See `rnnkit.cells` for the parameter names and masks.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import input_projection, weight_grads
from .activations import NONLINEARITIES

GATES = 1
N_STATES = 1


class Cache(NamedTuple):
    x: np.ndarray          # (T, B, D) input
    hs: np.ndarray         # (T+1, B, H) states; hs[0] = h_0, hs[t+1] = h_t
    mask: np.ndarray | None
    nonlinearity: str


def step_forward(xw_t, h_prev, W_hh, nonlinearity="tanh"):
    """h_t = f(xw_t + h_{t-1} W_hh^T), xw_t = x_t W_ih^T + b_ih + b_hh already projected. (B, H)."""
    act, _ = NONLINEARITIES[nonlinearity]
    a = xw_t + h_prev @ W_hh.T
    return act(a, out=a)


def step_backward(g, h, W_hh, nonlinearity="tanh"):
    """From g = dL/dh_t: (da_t, dh_{t-1} through the recurrence). h is h_t, the step's output."""
    _, dact = NONLINEARITIES[nonlinearity]
    da = g * dact(h)
    return da, da @ W_hh


def step(params, x_t, state, nonlinearity="tanh"):
    """One step for streaming/generation: x_t (B, D), state (h,) -> (h_t,)."""
    xw = x_t @ params["weight_ih"].T
    if "bias_ih" in params:
        xw += params["bias_ih"] + params["bias_hh"]
    return (step_forward(xw, state[0], params["weight_hh"], nonlinearity),)


def forward(params, x, state, mask=None, nonlinearity="tanh"):
    """Run the whole sequence. Returns out (T, B, H), final state (h_T,), cache.

    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}")
    T, B, _ = x.shape
    W_hh = params["weight_hh"]
    H = W_hh.shape[1]
    xw = input_projection(params, x, fold_hh_bias=True)             # (T, B, H)
    hs = np.empty((T + 1, B, H), dtype=xw.dtype)
    hs[0] = state[0]
    for t in range(T):
        h = step_forward(xw[t], hs[t], W_hh, nonlinearity)
        if mask is not None:                                         # padding: carry the state
            h = hs[t] + mask[t] * (h - hs[t])
        hs[t + 1] = h
    out = hs[1:] if mask is None else hs[1:] * mask
    return out, (hs[T].copy(),), Cache(x, hs, mask, nonlinearity)


def backward(params, cache: Cache, dout, dstate, dh_seq=None):
    """BPTT. dout (T, B, H), dstate (dh_T,) or None -> dx (T, B, D), (dh_0,), grads.

    dh_seq, if given, is a (T, B, H) array filled with g_t = dL/dh_t (for gradient-flow diagnostics).
    """
    x, hs, mask, nonlinearity = cache
    T, B, _ = x.shape
    W_hh = params["weight_hh"]
    da = np.empty_like(hs[1:])                                       # (T, B, H)
    dh = np.zeros_like(hs[0]) if dstate is None else np.array(dstate[0], dtype=hs.dtype)
    for t in reversed(range(T)):
        if mask is None:
            g = dout[t] + dh                                         # both paths into h_t
            da[t], dh = step_backward(g, hs[t + 1], W_hh, nonlinearity)
        else:
            m = mask[t]
            g = dout[t] * m + dh
            da[t], dh_rec = step_backward(g * m, hs[t + 1], W_hh, nonlinearity)
            dh = dh_rec + g * (1 - m)                                # padding passes g straight through
        if dh_seq is not None:
            dh_seq[t] = g
    dx, grads = weight_grads(params, x, hs[:-1], da)
    return dx, (dh,), grads
