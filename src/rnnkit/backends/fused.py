"""The "numba" backend: the fused kernels (`rnnkit.kernels`), same methods as `reference.Reference`.

Numba and the kernel modules are imported on first use, not when rnnkit is imported.
"""
from __future__ import annotations

import importlib


class Fused:
    name = "numba"
    _kernels: dict = {}

    @staticmethod
    def available() -> bool:
        from .. import kernels
        return kernels.available()

    def _cell(self, cell: str):
        mod = self._kernels.get(cell)
        if mod is None:
            mod = self._kernels[cell] = importlib.import_module(f"rnnkit.kernels.{cell}")
        return mod

    def forward(self, cell, params, x, state, mask=None, *, hs=None, workspace=None, **cell_kwargs):
        return self._cell(cell).forward(params, x, state, mask, hs=hs, workspace=workspace, **cell_kwargs)

    def backward(self, cell, params, cache, dout, dstate, *, dh_seq=None, dx_add=None, need_dx=True,
                 workspace=None):
        return self._cell(cell).backward(params, cache, dout, dstate, dh_seq=dh_seq, dx_add=dx_add,
                                         need_dx=need_dx, workspace=workspace)

    def stepper(self, cell, params, B, **cell_kwargs):
        return self._cell(cell).stepper(params, B, **cell_kwargs)

    def pair(self, f0, f1) -> list:
        from ..kernels import _parallel
        return _parallel.pair(f0, f1)

    def pairs(self, T: int, B: int, G: int, H: int) -> bool:
        from ..kernels import _parallel
        return _parallel.worth(T, B, G, H)

    def can_pair(self) -> bool:
        from ..kernels import _parallel
        return _parallel.possible()


BACKEND = Fused()
