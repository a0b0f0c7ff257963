"""Closed-form step Jacobians and per-step recurrent-weight gradients of the RNN, LSTM and GRU cells.

For a cell with state s_t = F(x_t, s_{t-1}) (s = h for RNN and GRU, s = [h; c] for LSTM), the
gradient reaching s_t from a loss at step T is a product of step Jacobians,
dL/ds_t = (J_{t+1}^T ... J_T^T) dL/ds_T with J_t = ds_t/ds_{t-1}. Their singular values decide
whether gradients vanish (< 1) or explode (> 1) (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov &
Bengio 2013, "On the difficulty of training RNNs").

Each function below takes one layer/direction's parameters (torch names without the `_l0` suffix:
`weight_ih (G*H, D)`, `weight_hh (G*H, H)`, optional `bias_ih`, `bias_hh`), one step's input
`x (B, D)` and previous state, and the total loss gradient `dh (B, H)` into this step's output
h_t. It returns a `StepTerms`: the state Jacobian `J (B, S, S)` (rows: outputs, columns: inputs; only
for the first `n_jac` sequences, to bound cost), this step's contribution to dL/dW_hh
(`dz^T h_{t-1}`, summed over the batch) and, for LSTM, the cell-state gradient handed to step t-1.
Gate order and equations follow torch.nn (RNN, LSTM i,f,g,o, GRU r,z,n) and the rnnkit cells.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class StepTerms(NamedTuple):
    J: np.ndarray            # (n_jac, S, S) ds_t/ds_{t-1}
    dW_hh: np.ndarray        # (G*H, H) this step's term of dL/dW_hh
    dc_prev: np.ndarray | None  # (B, H) LSTM: dL/dc_{t-1} through c_t (None for RNN, GRU)
    state: tuple             # the new state (h,) or (h, c), recomputed here


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _affine(p, x, h_prev):
    """(gi, gh) = (x W_ih^T + b_ih, h_prev W_hh^T + b_hh), each (B, G*H)."""
    gi = x @ p["weight_ih"].T
    gh = h_prev @ p["weight_hh"].T
    if "bias_ih" in p:
        gi = gi + p["bias_ih"]
        gh = gh + p["bias_hh"]
    return gi, gh


def rnn_step(p, x, state, dh, n_jac, nonlinearity="tanh"):
    """h = act(x W_ih^T + b_ih + h_prev W_hh^T + b_hh);  J = diag(act'(z)) W_hh;  dz = dh * act'(z)."""
    (h_prev,) = state[:1]
    gi, gh = _affine(p, x, h_prev)
    z = gi + gh
    if nonlinearity == "tanh":
        h = np.tanh(z)
        d = 1.0 - h ** 2                                           # tanh' from the output
    elif nonlinearity == "relu":
        h = np.maximum(z, 0.0)
        d = (z > 0).astype(z.dtype)
    else:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    J = d[:n_jac, :, None] * p["weight_hh"][None]                 # (n, H, H)
    dz = dh * d
    return StepTerms(J, dz.T @ h_prev, None, (h,))


def lstm_step(p, x, state, dh, n_jac, dc_next=None):
    """LSTM, torch gate order i, f, g, o.

    i = s(z_i), f = s(z_f), g = tanh(z_g), o = s(z_o);  c = f*c_prev + i*g;  h = o*tanh(c).
    dc/dh_prev = diag(c_prev f(1-f)) W_f + diag(g i(1-i)) W_i + diag(i(1-g^2)) W_g;  dc/dc_prev = diag(f)
    dh/dh_prev = diag(tanh(c) o(1-o)) W_o + diag(o(1-tanh(c)^2)) dc/dh_prev;  dh/dc_prev = diag(o(1-tanh(c)^2) f)
    With dc = dh*o*(1-tanh(c)^2) + dc_next (dc_next = dL/dc_t arriving from step t+1):
    dz = [dc*g*i(1-i), dc*c_prev*f(1-f), dc*i*(1-g^2), dh*tanh(c)*o(1-o)];  dc_prev = dc*f.
    """
    h_prev, c_prev = state
    H = h_prev.shape[1]
    gi, gh = _affine(p, x, h_prev)
    z = gi + gh
    i, f, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), _sigmoid(z[:, 3 * H:])
    g = np.tanh(z[:, 2 * H:3 * H])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    W = p["weight_hh"]
    Wi, Wf, Wg, Wo = W[:H], W[H:2 * H], W[2 * H:3 * H], W[3 * H:]
    n = slice(0, n_jac)
    dc_dh = ((c_prev * f * (1 - f))[n, :, None] * Wf + (g * i * (1 - i))[n, :, None] * Wi
             + (i * (1 - g ** 2))[n, :, None] * Wg)                # (n, H, H)
    oc = o * (1 - tc ** 2)
    dh_dh = (tc * o * (1 - o))[n, :, None] * Wo + oc[n, :, None] * dc_dh
    eye = np.eye(H, dtype=z.dtype)
    J = np.block([[dh_dh, (oc * f)[n, :, None] * eye], [dc_dh, f[n, :, None] * eye]])  # (n, 2H, 2H)
    dc = dh * oc + (0.0 if dc_next is None else dc_next)
    dz = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh * tc * o * (1 - o)], axis=1)            # (B, 4H)
    return StepTerms(J, dz.T @ h_prev, dc * f, (h, c))


def gru_step(p, x, state, dh, n_jac):
    """GRU, torch gate order r, z, n.

    r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r*gh_n), h = (1-z)*n + z*h_prev,
    with gh = h_prev W_hh^T + b_hh. dh/dh_prev = diag(z) + diag((h_prev-n) z(1-z)) W_hz
    + diag((1-z)(1-n^2)) (diag(r) W_hn + diag(gh_n r(1-r)) W_hr).
    """
    (h_prev,) = state[:1]
    H = h_prev.shape[1]
    gi, gh = _affine(p, x, h_prev)
    r = _sigmoid(gi[:, :H] + gh[:, :H])
    zg = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    ghn = gh[:, 2 * H:]
    nn = np.tanh(gi[:, 2 * H:] + r * ghn)
    h = (1 - zg) * nn + zg * h_prev
    W = p["weight_hh"]
    Wr, Wz, Wn = W[:H], W[H:2 * H], W[2 * H:]
    s = slice(0, n_jac)
    an = (1 - zg) * (1 - nn ** 2)                                  # dh/d(pre-activation of n)
    J = (zg[s, :, None] * np.eye(H, dtype=h.dtype) + ((h_prev - nn) * zg * (1 - zg))[s, :, None] * Wz
         + an[s, :, None] * (r[s, :, None] * Wn + (ghn * r * (1 - r))[s, :, None] * Wr))
    dan = dh * an
    dgh = np.concatenate([dan * ghn * r * (1 - r), dh * (h_prev - nn) * zg * (1 - zg), dan * r], axis=1)
    return StepTerms(J, dgh.T @ h_prev, None, (h,))


def _cell_kind(layer) -> str:
    for cls in type(layer).__mro__:
        name = cls.__name__.upper()
        if name in ("RNN", "LSTM", "GRU"):
            return name
    raise TypeError(f"expected an rnnkit RNN, LSTM or GRU layer, got {type(layer).__name__}")


# cell kind -> (step function, names of the gate blocks of weight_hh, state size multiplier)
CELLS = {
    "RNN": (rnn_step, ("hh",), 1),
    "LSTM": (lstm_step, ("i", "f", "g", "o"), 2),
    "GRU": (gru_step, ("r", "z", "n"), 1),
}
