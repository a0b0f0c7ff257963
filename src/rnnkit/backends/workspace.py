"""Buffers a layer owns and lends to its backend (cuDNN's workspace/reserve, oneDNN's scratchpad).

Why: a layer's next forward needs internal buffers of the same sizes as the cache it drops, and its
next backward gradients of the same sizes as the last ones; new arrays beside them cost memory (the
gradients 0.12x of the RNN's states at H=512) and, above 32 MB, page faults (glibc maps such arrays
fresh from the OS each time: 8-12 ms of system time per forward at B128 T50 H512).

Ownership, stated once: a `Workspace` belongs to one (layer, direction) of one layer object. A buffer
it hands out under a name is written over by the next call that asks for the same name, so
  - the internal buffers of a forward's cache (gates, c_t, hh_n) are valid until the layer's next
    forward, which drops that cache first;
  - the parameter gradients are valid until the layer's next backward (a layer's `grads` are these
    arrays: copy them to keep them, as with torch's `.grad`).
The states (the layer's outputs) never come from a workspace: a caller may keep several forwards'.
"""
from __future__ import annotations

import numpy as np


class Workspace:
    """Named buffers, reused while the shape and dtype asked for stay the same."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def buffer(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """The buffer `name` of this shape and dtype (uninitialised when new): the same array as the
        last call for `name` asked for when its shape and dtype agree, else a new one that replaces it."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        a = self._buffers.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._buffers[name] = np.empty(shape, dtype)
        return a

    def clear(self) -> None:
        """Forget every buffer (arrays still referred to elsewhere stay valid)."""
        self._buffers.clear()

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._buffers.values())


def buffer(workspace: Workspace | None, name: str, shape: tuple, dtype) -> np.ndarray:
    """`workspace.buffer(name, shape, dtype)`, or a new array when there is no workspace."""
    return np.empty(shape, dtype) if workspace is None else workspace.buffer(name, shape, dtype)
