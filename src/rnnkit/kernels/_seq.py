"""Helpers the fused sequence loops share: the padding mask as rows and the input projection into a
preallocated time-major buffer (the NumPy cells' `input_projection` allocates its own array)."""
from __future__ import annotations

import numpy as np


def mask_rows(mask, T: int, B: int, dtype) -> np.ndarray:
    """(T, B) 0/1 rows from the cells' (T, B, 1) mask; all ones when there is no padding."""
    return np.ones((T, B), dtype) if mask is None else np.ascontiguousarray(mask[:, :, 0], dtype=dtype)


def project(params: dict, x: np.ndarray, out: np.ndarray, fold_hh_bias: bool) -> np.ndarray:
    """out (T, B, G*H) = x W_ih^T + b_ih (+ b_hh): one BLAS product for all steps, written in place."""
    T, B, D = x.shape
    np.matmul(x.reshape(T * B, D), params["weight_ih"].T, out=out.reshape(T * B, out.shape[2]))
    if "bias_ih" in params:
        out += params["bias_ih"]
        if fold_hh_bias:
            out += params["bias_hh"]
    return out
