"""The one dispatch point between the layers and the math: a registry of backends.

A backend runs one cell ("rnn", "lstm", "gru") for one layer and one direction over a whole sequence,
forward and backward, and builds single-step functions for generation:
    "numpy"  the reference cells (`rnnkit.cells`): plain NumPy, the oracle;
    "numba"  the fused kernels (`rnnkit.kernels`): compiled time loops, the fast path.
A layer resolves its backend once, at construction (`backend=` argument, else `default()`), records
its name in each cache and calls nothing else. A new backend (e.g. CuPy) is one more entry in
`BACKENDS` with the same methods (`reference.Reference` is the contract, written out).

The default is the innermost `set_backend(...)` in effect, else the environment variable
RNNKIT_BACKEND, else the fastest available (`PREFERENCE`); RNNKIT_NO_NUMBA=1 still means "numpy".
Nothing here is imported, loaded or configured until a backend is first asked for.
"""
from __future__ import annotations

import importlib
import os

from .workspace import Workspace, buffer

# name -> module (relative to this package) whose BACKEND is the backend object; loaded on first use
BACKENDS = {"numpy": ".reference", "numba": ".fused"}
PREFERENCE = ("numba", "numpy")  # fastest first: what `default()` picks when nothing is asked for

_loaded: dict = {}
_current: list[str] = []  # the stack of `set_backend` names in effect


def _module(name: str):
    mod = _loaded.get(name)
    if mod is None:
        mod = _loaded[name] = importlib.import_module(BACKENDS[name], __name__)
    return mod


def check_name(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {name!r}")
    return name


def available(name: str) -> bool:
    """True when backend `name` can run here (e.g. "numba": Numba imports)."""
    return _module(check_name(name)).BACKEND.available()


def names() -> list[str]:
    """The backends that can run here, fastest first."""
    return [n for n in PREFERENCE if available(n)]


def default() -> str:
    """The backend a layer built now without `backend=` gets (see the module docstring)."""
    if _current:
        return _current[-1]
    asked = os.environ.get("RNNKIT_BACKEND", "").strip()
    if asked:
        return resolve(asked)
    if os.environ.get("RNNKIT_NO_NUMBA", "").strip() in ("1", "true", "yes"):
        return "numpy"
    return names()[0]


def resolve(name: str | None) -> str:
    """The backend name a layer keeps: `name` checked (it must be available), or `default()`."""
    if name is None:
        return default()
    if not available(check_name(name)):
        raise ValueError(f"backend {name!r} cannot run here (for 'numba': pip install numba); "
                         f"available: {names()}")
    return name


def get(name: str):
    """The backend object registered under `name` (see `reference.Reference` for its methods)."""
    return _module(check_name(name)).BACKEND


class set_backend:
    """Make `name` the default for layers built from now on; as a context manager, until the block ends.

        rnnkit.set_backend("numpy")              # from here on
        with rnnkit.set_backend("numpy"): ...    # inside the block only, restored after
    Layers already built keep the backend they resolved.
    """

    def __init__(self, name: str):
        self.name = resolve(name)
        _current.append(self.name)
        self._depth = len(_current)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        del _current[self._depth - 1:]
        return False


__all__ = ["BACKENDS", "PREFERENCE", "Workspace", "available", "buffer", "default", "get", "names",
           "resolve", "set_backend"]
