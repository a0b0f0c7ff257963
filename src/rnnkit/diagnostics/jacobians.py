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
The equations are not restated here: each function runs the reference cell's own step functions
(`rnnkit.cells.<cell>.step_forward` / `step_backward`), and the Jacobian's rows are vector-Jacobian
products of the cell's backward with the unit vectors (row k of J = e_k^T J, one batch row per k).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..cells import gru as _gru
from ..cells import lstm as _lstm
from ..cells import rnn as _rnn


class StepTerms(NamedTuple):
    J: np.ndarray            # (n_jac, S, S) ds_t/ds_{t-1}
    dW_hh: np.ndarray        # (G*H, H) this step's term of dL/dW_hh
    dc_prev: np.ndarray | None  # (B, H) LSTM: dL/dc_{t-1} through c_t (None for RNN, GRU)
    state: tuple             # the new state (h,) or (h, c), recomputed here


def _projected(p, x, fold_hh_bias):
    """x W_ih^T + b_ih (+ b_hh when the cell adds it outside any gate product). (B, G*H)."""
    xw = x @ p["weight_ih"].T
    if "bias_ih" in p:
        xw = xw + p["bias_ih"]
        if fold_hh_bias:
            xw = xw + p["bias_hh"]
    return xw


def _rows(a, n_jac, S):
    """The first n_jac rows of a (B, ...) array, each repeated S times: (n_jac * S, ...)."""
    return np.repeat(a[:n_jac], S, axis=0)


def _basis(n_jac, S, dtype):
    """n_jac stacked S x S identities: the unit vectors e_k, one per batch row. (n_jac * S, S)."""
    return np.tile(np.eye(S, dtype=dtype), (n_jac, 1))


def rnn_step(p, x, state, dh, n_jac, nonlinearity="tanh"):
    """h = act(x W_ih^T + b_ih + h_prev W_hh^T + b_hh);  J = diag(act'(z)) W_hh;  dz = dh * act'(z)."""
    (h_prev,) = state[:1]
    W = p["weight_hh"]
    H = W.shape[1]
    h = _rnn.step_forward(_projected(p, x, True), h_prev, W, nonlinearity)
    da, _ = _rnn.step_backward(dh, h, W, nonlinearity)
    _, rows = _rnn.step_backward(_basis(n_jac, H, h.dtype), _rows(h, n_jac, H), W, nonlinearity)
    return StepTerms(rows.reshape(n_jac, H, H), da.T @ h_prev, None, (h,))


def lstm_step(p, x, state, dh, n_jac, dc_next=None):
    """LSTM (torch gate order i, f, g, o); s = [h; c], so J is (2H, 2H): rows k < H are the VJP of
    dh = e_k, dc = 0, rows k >= H of dh = 0, dc = e_{k-H}; dc_next = dL/dc_t arriving from step t+1."""
    h_prev, c_prev = state
    W = p["weight_hh"]
    H = W.shape[1]
    h, c, tc, gates = _lstm.step_forward(_projected(p, x, True), h_prev, c_prev, W)
    dc = np.zeros_like(c) if dc_next is None else dc_next
    dz, _, dc_prev = _lstm.step_backward(dh, dc, c_prev, tc, gates, W)
    e = _basis(n_jac, 2 * H, h.dtype)                                # (n_jac * 2H, 2H)
    _, jh, jc = _lstm.step_backward(e[:, :H], e[:, H:], _rows(c_prev, n_jac, 2 * H),
                                    _rows(tc, n_jac, 2 * H), _rows(gates, n_jac, 2 * H), W)
    J = np.concatenate([jh, jc], axis=1).reshape(n_jac, 2 * H, 2 * H)
    return StepTerms(J, dz.T @ h_prev, dc_prev, (h, c))


def gru_step(p, x, state, dh, n_jac):
    """GRU (torch gate order r, z, n; b_hn inside the reset product): J = dh_t/dh_{t-1} (H, H)."""
    (h_prev,) = state[:1]
    W = p["weight_hh"]
    H = W.shape[1]
    h, gates, hhn = _gru.step_forward(_projected(p, x, False), h_prev, W, p.get("bias_hh"))
    _, dhh, _ = _gru.step_backward(dh, h_prev, gates, hhn, W)
    _, _, rows = _gru.step_backward(_basis(n_jac, H, h.dtype), _rows(h_prev, n_jac, H),
                                    _rows(gates, n_jac, H), _rows(hhn, n_jac, H), W)
    return StepTerms(rows.reshape(n_jac, H, H), dhh.T @ h_prev, None, (h,))


def _cell_kind(layer) -> str:
    name = getattr(layer, "cell_name", None)
    if name not in ("rnn", "lstm", "gru"):
        raise TypeError(f"expected an rnnkit RNN, LSTM or GRU layer, got {type(layer).__name__}")
    return name.upper()


# cell kind -> (step function, names of the gate blocks of weight_hh, state size multiplier)
CELLS = {
    "RNN": (rnn_step, ("hh",), _rnn.N_STATES),
    "LSTM": (lstm_step, ("i", "f", "g", "o"), _lstm.N_STATES),
    "GRU": (gru_step, ("r", "z", "n"), _gru.N_STATES),
}
