"""Pieces every cell's sequence loop shares: the input projection before the loop and the
weight gradients after it.

Only the recurrence is sequential. Everything that does not depend on h_{t-1} is done for all T steps
as one large matrix product (T*B rows), which runs near the machine's matmul peak:
  forward:  XW = X W_ih^T + b           (T*B, D) x (D, G*H)
  backward: dW_ih = dZi^T X,  dW_hh = dZh^T H_prev,  dX = dZi W_ih
"""
from __future__ import annotations

import numpy as np


def input_projection(params: dict, x: np.ndarray, fold_hh_bias: bool) -> np.ndarray:
    """XW = x W_ih^T + b_ih (+ b_hh when the cell adds it outside any gate product). (T, B, G*H)."""
    T, B, D = x.shape
    W_ih = params["weight_ih"]
    xw = (x.reshape(T * B, D) @ W_ih.T).reshape(T, B, W_ih.shape[0])  # (T, B, G*H)
    if "bias_ih" in params:
        xw += params["bias_ih"]
        if fold_hh_bias:
            xw += params["bias_hh"]
    return xw


def weight_grads(params: dict, x: np.ndarray, h_prev: np.ndarray, dzi: np.ndarray,
                 dzh: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Shared-weight gradients summed over all steps, and dx, from the per-step pre-activation grads.

    x: (T, B, D) inputs; h_prev: (T, B, H) the state entering each step; dzi: (T, B, G*H) gradient of
    the input pre-activations; dzh: the same for the recurrent pre-activations (GRU), None when equal.
    """
    T, B, D = x.shape
    GH = dzi.shape[2]
    H = h_prev.shape[2]
    dzi2 = dzi.reshape(T * B, GH)                                    # (T*B, G*H)
    dzh2 = dzi2 if dzh is None else dzh.reshape(T * B, GH)
    grads = {
        "weight_ih": dzi2.T @ x.reshape(T * B, D),                   # (G*H, D)
        "weight_hh": dzh2.T @ h_prev.reshape(T * B, H),              # (G*H, H)
    }
    if "bias_ih" in params:
        grads["bias_ih"] = dzi2.sum(axis=0)
        grads["bias_hh"] = grads["bias_ih"].copy() if dzh is None else dzh2.sum(axis=0)
    dx = (dzi2 @ params["weight_ih"]).reshape(T, B, D)              # (T, B, D)
    return dx, grads

