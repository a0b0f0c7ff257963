"""The discrete Hopfield network (Hopfield 1982): +-1 units, symmetric weights, an energy that
asynchronous updates never raise.

Shapes: P patterns, N units, B states in a batch. Patterns are +-1 arrays (P, N); a state is (N,) or
(B, N). Pure functions first (storage rules, energy, one update), the `DiscreteHopfield` estimator on top.

- Hebbian storage: W = (1/N) sum_mu xi_mu xi_mu^T with a zero diagonal; capacity alpha = P/N ~ 0.138
  for random patterns (Amit, Gutfreund & Sompolinsky 1985).
- Pseudo-inverse (projection) storage (Personnaz, Guyon & Dreyfus 1985; Kanter & Sompolinsky 1987):
  W = X^T (X X^T)^+ X, the projection onto the patterns' span, diagonal zeroed; every stored pattern
  is a fixed point while P < N, correlated patterns included.
- Energy E(x) = -1/2 x^T W x. With W symmetric and diag(W) >= 0, the asynchronous update
  x_i <- sign(W_i . x) changes E by -|W_i . x| |dx_i| / 2 <= 0, so the dynamics end in a fixed point;
  synchronous updates may instead end in a 2-cycle.
"""
from __future__ import annotations

import numpy as np


def _patterns(patterns, name="patterns") -> np.ndarray:
    X = np.asarray(patterns, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 2:
        raise ValueError(f"{name} must be a (P, N) array with P >= 1 and N >= 2, got shape {X.shape}")
    if not np.all(np.abs(X) == 1):
        raise ValueError(f"{name} must hold only -1 and +1")
    return X


def hebbian_weights(X: np.ndarray) -> np.ndarray:
    """W (N, N) = X^T X / N with a zero diagonal (no self-coupling)."""
    W = X.T @ X / X.shape[1]
    np.fill_diagonal(W, 0.0)
    return W


def pseudoinverse_weights(X: np.ndarray) -> np.ndarray:
    """W (N, N) = X^T (X X^T)^+ X, diagonal zeroed; a fixed point for every pattern while W_ii < 1."""
    W = X.T @ np.linalg.pinv(X @ X.T) @ X
    np.fill_diagonal(W, 0.0)
    return W


RULES = {"hebbian": hebbian_weights, "pseudoinverse": pseudoinverse_weights}


def energy(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """E = -1/2 x^T W x per state: x (N,) -> scalar array, (B, N) -> (B,)."""
    return -0.5 * np.einsum("...i,ij,...j->...", x, W, x)


def _sign(field: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sign(field), keeping the current value where the field is exactly 0 (no spurious flips)."""
    return np.where(field > 0, 1.0, np.where(field < 0, -1.0, x))


def sync_step(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """All units at once: x <- sign(W x); x (B, N)."""
    return _sign(x @ W, x)


def async_sweep(W: np.ndarray, x: np.ndarray, order: np.ndarray) -> int:
    """One asynchronous sweep in place: units one at a time in `order`, each seeing the others' new
    values. x (B, N). Returns how many unit flips happened."""
    flips = 0
    for i in order:
        new = _sign(x @ W[:, i], x[:, i])
        flips += int(np.count_nonzero(new != x[:, i]))
        x[:, i] = new
    return flips


class DiscreteHopfield:
    """`DiscreteHopfield(n_units, rule="hebbian"|"pseudoinverse", seed=None)`; `fit(patterns)`,
    `recall(x, mode="async"|"sync", max_steps=None)`, `energy(x)`. Learned: `weight_` (N, N),
    `patterns_` (P, N). `seed` orders the asynchronous updates (a new random order every sweep)."""

    def __init__(self, n_units: int, rule: str = "hebbian", seed=None):
        self.n_units, self.rule, self.seed = n_units, rule, seed

    def fit(self, patterns) -> "DiscreteHopfield":
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {sorted(RULES)}, got {self.rule!r}")
        X = _patterns(patterns)
        if X.shape[1] != self.n_units:
            raise ValueError(f"patterns have {X.shape[1]} units, the network {self.n_units}")
        self.patterns_ = X
        self.weight_ = RULES[self.rule](X)
        self._rng = np.random.default_rng(self.seed)
        return self

    def _states(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.n_units or x.ndim not in (1, 2):
            raise ValueError(f"x must be (N,) or (B, N) with N = {self.n_units}, got shape {x.shape}")
        return x

    def energy(self, x) -> np.ndarray:
        return energy(self.weight_, self._states(x))

    def recall(self, x, mode: str = "async", max_steps: int | None = None) -> np.ndarray:
        """Run the dynamics from x until no unit changes (async: a sweep without flips; sync: a fixed
        point or a 2-cycle) or for `max_steps` sweeps (default 100). Returns the same shape as x."""
        if mode not in ("async", "sync"):
            raise ValueError(f"mode must be 'async' or 'sync', got {mode!r}")
        x0 = self._states(x)
        s = np.array(x0, dtype=np.float64, ndmin=2, copy=True)             # (B, N)
        prev = None
        for _ in range(100 if max_steps is None else max_steps):
            if mode == "async":
                if async_sweep(self.weight_, s, self._rng.permutation(self.n_units)) == 0:
                    break
            else:
                new = sync_step(self.weight_, s)
                if np.array_equal(new, s) or (prev is not None and np.array_equal(new, prev)):
                    s = new
                    break
                prev, s = s, new
        return s.reshape(x0.shape)
