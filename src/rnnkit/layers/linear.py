"""Linear (affine) map over the last axis: `y = x @ weight.T + bias`.

Shapes: x (..., D); weight (O, D); bias (O,); y (..., O). Applied to a sequence (T, B, H) this is the
time-distributed output layer `y_t = W_hy h_t + b_y`; all leading axes are flattened into one matrix
product, so the whole sequence costs one GEMM. Naming and initialisation follow `torch.nn.Linear`
(U(-1/sqrt(D), 1/sqrt(D)) for both).

Backward: dx = dy @ weight; dweight = dy^T x (summed over all leading positions); dbias = sum dy.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import Module
from .checks import float_dtype


class LinearCache(NamedTuple):
    x2: np.ndarray          # (N, D) the input with leading axes flattened
    lead_shape: tuple       # the leading axes of x


def linear_forward(weight, bias, x) -> tuple[np.ndarray, LinearCache]:
    """y = x @ weight.T + bias; x (..., D) -> y (..., O)."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])  # (N, D)
    y = x2 @ weight.T                # (N, O)
    if bias is not None:
        y += bias
    return y.reshape(*lead, weight.shape[0]), LinearCache(x2, lead)


def linear_backward(weight, cache: LinearCache, dy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (dx (..., D), dweight (O, D), dbias (O,))."""
    dy2 = dy.reshape(-1, weight.shape[0])  # (N, O)
    dx = (dy2 @ weight).reshape(*cache.lead_shape, weight.shape[1])
    dweight = dy2.T @ cache.x2
    dbias = dy2.sum(axis=0)
    return dx, dweight, dbias


class Linear(Module):
    """`Linear(in_features D, out_features O, bias=True)`: params `weight` (O, D), `bias` (O,)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32, seed=None):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Linear: sizes must be >= 1, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = float_dtype("Linear", dtype)
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(self.in_features)
        self._params["weight"] = rng.uniform(-k, k, (self.out_features, self.in_features)).astype(self.dtype)
        if bias:
            self._params["bias"] = rng.uniform(-k, k, (self.out_features,)).astype(self.dtype)
        self._grads = {n: np.zeros_like(p) for n, p in self._params.items()}
        self._cache: LinearCache | None = None

    def forward(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input last axis must be {self.in_features}, got shape {x.shape}")
        y, self._cache = linear_forward(self._params["weight"], self._params.get("bias"), x)
        return y

    def backward(self, dy) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("Linear.backward called before forward")
        dx, dw, db = linear_backward(self._params["weight"], self._cache, np.asarray(dy))
        self._grads["weight"] = dw.astype(self.dtype, copy=False)
        if "bias" in self._params:
            self._grads["bias"] = db.astype(self.dtype, copy=False)
        return dx
