"""The token-by-token loop shared by the decoders' greedy and sampled generation."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def decode_until_eos(step: Callable[[np.ndarray], np.ndarray], B: int, max_len: int, bos: int, eos: int,
                     choose: Callable[[np.ndarray], np.ndarray] | None = None) -> list[list[int]]:
    """Feed <bos>, then each chosen token, to `step(tokens (B,)) -> logp (B, V)` until every row has
    chosen <eos> or `max_len` steps passed. `choose(logp) -> tokens` defaults to argmax (greedy).
    Returns each row's tokens without <bos>/<eos>; `step` carries the recurrent state itself."""
    choose = choose or (lambda logp: np.argmax(logp, axis=1))
    tokens = np.full(B, bos)
    out: list[list[int]] = [[] for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    for _ in range(max_len):
        tokens = choose(step(tokens))
        for b in np.flatnonzero(~done):
            if tokens[b] == eos:
                done[b] = True
            else:
                out[b].append(int(tokens[b]))
        if done.all():
            break
    return out
