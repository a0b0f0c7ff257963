"""The "numpy" backend: the reference cells (`rnnkit.cells`) behind the backend methods.

This class is also the backend contract, written out: every backend has these methods with these
arguments. The arguments the reference does not need for its math (`hs`, `workspace`, `dx_add`,
`need_dx`) are served here around the pure cell functions, so the cells keep their plain
`(params, x, state) -> (out, state, cache)` form: the oracle stays readable, at the cost of a copy.
"""
from __future__ import annotations

import numpy as np

from ..cells import CELLS
from ..cells.activations import NONLINEARITIES


def _finite(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).all())


class Reference:
    name = "numpy"

    @staticmethod
    def available() -> bool:
        return True

    def forward(self, cell: str, params: dict, x, state: tuple, mask=None, *, hs=None, workspace=None,
                **cell_kwargs):
        """out (T, B, H), final state, cache for one layer and direction (`rnnkit.cells` contract).

        hs: None, or a (T+1, B, H) array of any strides to hold the states (hs[0] = h_0) and keep in
        the cache (a bidirectional layer passes views of one buffer for both directions, whose rows
        are then its output). workspace: the layer's `Workspace` for this direction (the reference
        allocates its own buffers and does not use it)."""
        out, final, cache = CELLS[cell].forward(params, x, state, mask, **cell_kwargs)
        if hs is not None:
            hs[...] = cache.hs
            cache = cache._replace(hs=hs)
            out = hs[1:] if mask is None else hs[1:] * mask
        return out, final, cache

    def backward(self, cell: str, params: dict, cache, dout, dstate, *, dh_seq=None, dx_add=None,
                 need_dx: bool = True, workspace=None):
        """dx (T, B, D), dstate0, grads by parameter name (`rnnkit.cells` contract).

        dx_add: a (T, B, D) array of any strides that dx is added into and returned as dx (a
        bidirectional layer sums both directions' dx there). need_dx=False: dx is returned as None
        (the input is data; the reference computes it anyway). workspace: as in `forward`."""
        dx, dstate0, grads = CELLS[cell].backward(params, cache, dout, dstate, dh_seq=dh_seq)
        if not need_dx:
            return None, dstate0, grads
        if dx_add is not None:
            dx_add += dx
            dx = dx_add
        return dx, dstate0, grads

    def stepper(self, cell: str, params: dict, B: int, **cell_kwargs):
        """run(x_t, state, out) -> bool: one generation step for batch B, written into `out` (the new
        state's (B, H) arrays); False, writing nothing, when x_t holds NaN/Inf (the caller reports it)."""
        step = CELLS[cell].step
        if "nonlinearity" in cell_kwargs and cell_kwargs["nonlinearity"] not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {sorted(NONLINEARITIES)}, "
                             f"got {cell_kwargs['nonlinearity']!r}")

        def run(x_t, state, out) -> bool:
            if not _finite(x_t):
                return False
            for a, s in zip(out, step(params, x_t, state, **cell_kwargs)):
                a[...] = s
            return True
        return run

    def pair(self, f0, f1) -> list:
        """[f0(), f1()]: the two directions of a bidirectional layer, one after the other."""
        return [f0(), f1()]

    def pairs(self, T: int, B: int, G: int, H: int) -> bool:
        """True when `pair` runs two directions of this size at once (never, here)."""
        return False

    def can_pair(self) -> bool:
        """True when `pair` can run two directions at once at some size once NumPy's BLAS is on one
        thread (the Trainer's `side_by_side` steps); never, here."""
        return False


BACKEND = Reference()
