"""The modern (dense) Hopfield network of Ramsauer et al. (2020), "Hopfield Networks is All You Need":
continuous states, the stored patterns X (P, N) kept as they are, and the update

    xi <- X^T softmax(beta X xi)

which is attention with the state as the query and the patterns as keys and values. It minimises

    E(xi) = -lse(beta, X xi) + 1/2 xi^T xi + log(P) / beta + M^2 / 2,   M = max_mu ||x_mu||,

(lse(beta, z) = log(sum exp(beta z)) / beta) and never raises it (a concave-convex procedure step).
Its storage grows exponentially with N instead of the 0.138 N of the Hebbian network, and retrieval
usually takes one update.

Shapes: P patterns, N units; a state is (N,) or (B, N).
"""
from __future__ import annotations

import numpy as np

from ..losses import softmax


def update(X: np.ndarray, beta: float, xi: np.ndarray) -> np.ndarray:
    """One update: xi (B, N) -> (B, N) = softmax(beta xi X^T) X."""
    return softmax(beta * (xi @ X.T), axis=-1) @ X


def energy(X: np.ndarray, beta: float, xi: np.ndarray) -> np.ndarray:
    """Ramsauer et al.'s energy: (N,) -> scalar array, (B, N) -> (B,)."""
    z = beta * (xi @ X.T)                                                   # (B, P)
    zmax = z.max(-1, keepdims=True)
    lse = (np.log(np.exp(z - zmax).sum(-1)) + zmax[..., 0]) / beta
    M2 = float((X * X).sum(1).max())
    return -lse + 0.5 * (xi * xi).sum(-1) + np.log(X.shape[0]) / beta + 0.5 * M2


class ModernHopfield:
    """`ModernHopfield(beta=1.0)`; `fit(patterns)` (any real (P, N) array), `recall(x, max_steps=None)`
    (the same shape back), `energy(x)`. Learned: `patterns_` (P, N)."""

    def __init__(self, beta: float = 1.0):
        self.beta = beta

    def fit(self, patterns) -> "ModernHopfield":
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta!r}")
        X = np.asarray(patterns, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1 or not np.all(np.isfinite(X)):
            raise ValueError(f"patterns must be a finite (P, N) array, got shape {X.shape}")
        self.patterns_ = X
        return self

    def _states(self, x):
        x = np.asarray(x, dtype=np.float64)
        N = self.patterns_.shape[1]
        if x.shape[-1] != N or x.ndim not in (1, 2):
            raise ValueError(f"x must be (N,) or (B, N) with N = {N}, got shape {x.shape}")
        return x

    def energy(self, x) -> np.ndarray:
        return energy(self.patterns_, self.beta, self._states(x))

    def recall(self, x, max_steps: int | None = None) -> np.ndarray:
        """Updates until the state stops moving (1e-12) or `max_steps` (default 10) are done."""
        x0 = self._states(x)
        s = np.atleast_2d(x0)
        for _ in range(10 if max_steps is None else max_steps):
            new = update(self.patterns_, self.beta, s)
            done = np.max(np.abs(new - s)) < 1e-12
            s = new
            if done:
                break
        return s.reshape(x0.shape)
