"""Fused kernels for the cells' sequence loops (Numba): the "numba" backend (`rnnkit.backends.fused`).

The math core in `rnnkit.cells` is the readable reference: one NumPy expression per equation, several
temporaries per step. The modules here (`lstm`, `gru`, `rnn`) compute the same equations with one
compiled pass over the (B, G*H) gate block per step, activations written in place into the gate buffer,
the backward's gate gradients written into a buffer of a few steps whose weight-gradient products are
accumulated chunk by chunk (`_seq.backward_in_chunks`), and contiguous transposed weights so every
product is a plain BLAS call. Layers reach them only through `rnnkit.backends`; nothing here imports
the reference cells or the layers, and importing this package loads nothing (Numba and BLAS are
loaded when a kernel module is first imported, by the backend's first call).
"""
from __future__ import annotations

_available: bool | None = None


def available() -> bool:
    """True when Numba can be imported (checked once)."""
    global _available
    if _available is None:
        try:
            import numba  # noqa: F401
            _available = True
        except ImportError:  # the NumPy cells still work, only slower
            _available = False
    return _available
