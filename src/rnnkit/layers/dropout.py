"""Dropout for recurrent networks: element-wise, variational (one mask for all time steps), and the
mask function the embedding and weight-drop options of `Embedding` and the recurrent layers share.

Inverted dropout (Srivastava et al. 2014): in training a unit is kept with probability 1 - p and the
kept ones are scaled by 1 / (1 - p), so the expectation of every output equals its input and evaluation
is the identity (nothing to rescale at test time):

    m = (u >= p) / (1 - p),   u ~ U[0, 1) element-wise        (`dropout_mask`)
    y = x * m                                                 (`dropout_forward`)
    dx = dy * m                                               (`dropout_backward`)

`Dropout` draws a new m for every element at every call. `VariationalDropout` (Gal & Ghahramani 2016,
"A Theoretically Grounded Application of Dropout in Recurrent Neural Networks") draws one m per sequence
and feature and uses it at every time step: x (T, B, D) gets m of shape (1, B, D), broadcast over T, so
the same units are dropped all along a sequence. Its backward then sums nothing: dx = dy * m has x's
shape, m broadcast over T again.

Randomness: each module owns its `np.random.Generator`, seeded from `seed`, and names it in
`random_generators`, so `Module.random_state_dict()` can save it in a checkpoint and a resumed run
draws the masks the uninterrupted run would have drawn.
Shapes: T time, B batch, D features.
"""
from __future__ import annotations

import numpy as np

from .base import Module


def check_probability(name: str, p) -> float:
    """p as a float in [0, 1); else one ValueError line naming the argument."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {p!r}")
    return float(p)


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype) -> np.ndarray:
    """m = (u >= p) / (1 - p) with u ~ U[0, 1) of `shape`: keep with probability 1 - p, scaled."""
    p = check_probability("p", p)
    keep = rng.random(shape) >= p
    return keep.astype(dtype) / (1.0 - p)                           # a Python float keeps dtype (NEP 50)


def dropout_forward(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """y = x * m; m has x's shape or one that broadcasts to it (e.g. (1, B, D) for x (T, B, D))."""
    return x * mask


def dropout_backward(mask: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dx = dy * m (m broadcast as in the forward; dy has x's shape, so dx does too)."""
    return dy * mask


def _float_input(owner: str, x) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{owner}: input must be a floating-point array, got dtype {x.dtype}")
    return x


class Dropout(Module):
    """`Dropout(p, seed=None)`: y = x * m with a new mask m for every element at every call in training
    mode; the identity in eval mode (`module.eval()`). As `torch.nn.Dropout`. No parameters."""

    random_generators = ("_rng",)

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        self.p = check_probability(f"{type(self).__name__}: p", p)
        self._rng = np.random.default_rng(seed)
        self._mask: np.ndarray | None = None

    def _mask_shape(self, x: np.ndarray) -> tuple:
        return x.shape

    def forward(self, x) -> np.ndarray:
        x = _float_input(type(self).__name__, x)
        if not self.training or self.p == 0.0:
            self._mask = None                                        # identity, and its backward too
            return x
        self._mask = dropout_mask(self._rng, self._mask_shape(x), self.p, x.dtype)
        return dropout_forward(x, self._mask)

    def backward(self, dy) -> np.ndarray:
        """dx for the last forward (the same mask; dy returned as is after an identity forward)."""
        dy = np.asarray(dy)
        return dy if self._mask is None else dropout_backward(self._mask, dy)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class VariationalDropout(Dropout):
    """`VariationalDropout(p, seed=None, batch_first=False)`: one mask per sequence and feature, the
    same at every time step (Gal & Ghahramani 2016).

    x (T, B, D) gets a mask (1, B, D) ((B, 1, D) for (B, T, D) with batch_first); x (B, D), one step or
    a vector per sequence, gets a mask (B, D). A new mask is drawn at each forward call, so a sequence
    fed step by step should be fed as one (T, B, D) array to keep its mask."""

    def __init__(self, p: float = 0.5, seed=None, batch_first: bool = False):
        super().__init__(p, seed)
        self.batch_first = bool(batch_first)

    def _mask_shape(self, x: np.ndarray) -> tuple:
        if x.ndim == 2:
            return x.shape                                           # (B, D)
        if x.ndim != 3:
            layout = "(batch, seq_len, features)" if self.batch_first else "(seq_len, batch, features)"
            raise ValueError(f"VariationalDropout: x must be {layout} or (batch, features), "
                             f"got shape {x.shape}")
        T_axis = 1 if self.batch_first else 0
        return tuple(1 if a == T_axis else n for a, n in enumerate(x.shape))  # (1, B, D) or (B, 1, D)

    def __repr__(self) -> str:
        return f"VariationalDropout(p={self.p}, batch_first={self.batch_first})"
