"""Fused kernels for the cells' sequence loops (Numba), with the pure-NumPy cells as the fallback.

The math core in `rnnkit.cells` is the readable reference: one NumPy expression per equation, several
temporaries per step. The modules here (`lstm`, `gru`, `rnn`) compute the same equations with one
compiled pass over the (B, G*H) gate block per step, activations written in place into the gate buffer,
the backward's gate gradients written into a buffer of a few steps whose weight-gradient products are
accumulated chunk by chunk (`_seq.backward_in_chunks`), and contiguous transposed weights so every
product is a plain BLAS call. `rnnkit.cells.<cell>.forward` asks `get(name)` for a fused module and runs
its own NumPy code when there is none.

The fused path is used when Numba imports and it is not switched off, either by the environment
variable RNNKIT_NO_NUMBA=1 (read at import) or by `set_enabled(False)` / `with disabled(): ...`
(tests run both paths). A cache made by one path is always finished by the same path (`made_by`).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys

_enabled = os.environ.get("RNNKIT_NO_NUMBA", "").strip() not in ("1", "true", "yes")
_available: bool | None = None
_CACHE_TYPES: dict[type, str] = {}  # fused cache type -> cell name; filled as kernel modules import


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


def enabled() -> bool:
    return _enabled and available()


def set_enabled(flag: bool) -> None:
    """Switch the fused kernels on or off for this process (off: the pure-NumPy reference path)."""
    global _enabled
    _enabled = bool(flag)


@contextlib.contextmanager
def switched_off(module, flag: str = "_enabled"):
    """Set `module.<flag>` to False inside the block and restore it after (the `disabled()` switches
    of this package and of `_blas`)."""
    before = getattr(module, flag)
    setattr(module, flag, False)
    try:
        yield
    finally:
        setattr(module, flag, before)


def disabled():
    """`with kernels.disabled(): ...` runs the pure-NumPy reference code inside the block."""
    return switched_off(sys.modules[__name__])


def backend() -> str:
    return "numba" if enabled() else "numpy"


_MODULES: dict = {}


def get(name: str):
    """The fused module for cell `name` ("rnn", "lstm", "gru"), or None to use the NumPy cells."""
    if not (_enabled and (_available or available())):
        return None
    mod = _MODULES.get(name)
    if mod is None:
        mod = _MODULES[name] = importlib.import_module(f"{__name__}.{name}")
    return mod


def register_cache(cache_type: type, name: str) -> None:
    _CACHE_TYPES[cache_type] = name


def made_by(cache):
    """The fused module that made `cache`, or None when the NumPy cells made it."""
    name = _CACHE_TYPES.get(type(cache))
    return None if name is None else importlib.import_module(f"{__name__}.{name}")

