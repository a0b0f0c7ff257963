"""Synthetic short-term memory tasks, generated on the fly from a seed.

Three classic probes of how far back a recurrent network can carry information:

- **copy task** (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016, "Unitary evolution RNNs"):
  read `length` symbols, wait `delay` blank steps, see a delimiter, then write the symbols back.
- **adding problem** (Hochreiter & Schmidhuber 1997): a sequence of random numbers in [0, 1), two of them
  marked; the target is the sum of the two marked numbers (a regression read at the last step).
- **delayed recall**: one marked symbol at t = 0, `delay` steps of distractor symbols (same channels,
  unmarked) or blanks, a recall cue; the target, at the cue step, is the marked symbol. The gap between the evidence and the question is
  exactly `delay + 1` steps, so accuracy as a function of `delay` measures memory reach directly.

Shapes follow the library: T time, B batch, D input features, K symbols. Inputs are time-major
`(T, B, D)` float arrays (one-hot channels), so any `RNN`/`LSTM`/`GRU` layer reads them directly.
Every generator takes `rng` (a `numpy.random.Generator` or an int seed): the same seed gives the
same batch, so tasks need no files and runs are reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass
class MemoryBatch:
    """One batch of a memory task.

    x: (T, B, D) float input. y: targets, int class ids (T, B) for the copy task, (B,) int for delayed
    recall, (B,) float for the adding problem. mask: (T, B) bool, True where a target is scored
    (copy task only; None otherwise, the target is read at the last step).
    """
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray | None = None


# -- copy task ---------------------------------------------------------------------------------------
def copy_task(batch_size: int, length: int = 5, delay: int = 10, n_symbols: int = 8, rng=None,
              dtype=np.float32) -> MemoryBatch:
    """The copy task.

    Channels (D = n_symbols + 2): 0 blank, 1..K symbols, K+1 delimiter. Layout over T = 2*length +
    delay + 1 steps::

        input : s_1 .. s_L | blank * delay | delim | blank * L
        target: blank ...................................   | s_1 .. s_L

    `y` is (T, B) int (0 = blank, symbol k as k); `mask` is True on the last L steps only, where the
    symbols must be written back. Symbol s_j is shown at step j-1 and asked for at step
    L + delay + j, i.e. L + delay + 1 steps later.
    """
    B = _check_int("batch_size", batch_size, 1)
    L = _check_int("length", length, 1)
    delay = _check_int("delay", delay, 0)
    K = _check_int("n_symbols", n_symbols, 1)
    g = _rng(rng)
    T = 2 * L + delay + 1
    symbols = g.integers(1, K + 1, size=(L, B))                   # (L, B) in 1..K
    ids = np.zeros((T, B), dtype=np.int64)                        # input channel per step; 0 blank
    ids[:L] = symbols
    ids[L + delay] = K + 1                                        # delimiter
    x = np.eye(K + 2, dtype=dtype)[ids]                           # (T, B, K+2)
    y = np.zeros((T, B), dtype=np.int64)
    y[T - L:] = symbols
    mask = np.zeros((T, B), dtype=bool)
    mask[T - L:] = True
    return MemoryBatch(x, y, mask)


# -- adding problem ----------------------------------------------------------------------------------
def adding_problem(batch_size: int, length: int = 50, rng=None, dtype=np.float32) -> MemoryBatch:
    """The adding problem.

    Channels (D = 2): 0 a value uniform in [0, 1), 1 a marker that is 1 at exactly two steps, one in
    the first half of the sequence and one in the second, 0 elsewhere. `y` (B,) is the sum of the two
    marked values, read after the last step (regression; predicting 1.0 always gives MSE ~ 1/6).
    """
    B = _check_int("batch_size", batch_size, 1)
    T = _check_int("length", length, 2)
    g = _rng(rng)
    values = g.random((T, B))
    half = T // 2
    first = g.integers(0, half, size=B)
    second = g.integers(half, T, size=B)
    marker = np.zeros((T, B))
    cols = np.arange(B)
    marker[first, cols] = 1.0
    marker[second, cols] = 1.0
    x = np.stack([values, marker], axis=-1).astype(dtype)         # (T, B, 2)
    y = (values[first, cols] + values[second, cols]).astype(dtype)
    return MemoryBatch(x, y, None)


# -- delayed recall ----------------------------------------------------------------------------------
def delayed_recall(batch_size: int, delay: int = 10, n_symbols: int = 4, distractors: bool = True,
                   rng=None, dtype=np.float32) -> MemoryBatch:
    """Delayed recall of one marked symbol among distractors.

    Channels (D = K + 2): 0..K-1 symbols, K the "remember this" marker, K+1 the recall cue. Layout
    over T = delay + 2 steps::

        t = 0            : symbol s (one-hot in channels 0..K-1) and the marker (channel K)
        t = 1 .. delay   : a random distractor symbol each step, on the *same* channels 0..K-1
                           (or blank with distractors=False)
        t = delay + 1    : recall cue (channel K+1)

    `y` (B,) int in 0..K-1 is s, to be predicted from the output at the cue step; chance accuracy is
    1/K. Because the distractors use the same channels, a network cannot solve it by latching "any
    symbol seen": it must store the symbol when the marker is on and hold it, unchanged, through
    `delay` steps of input that look just like it (the gating problem LSTM's input gate addresses).
    """
    B = _check_int("batch_size", batch_size, 1)
    delay = _check_int("delay", delay, 0)
    K = _check_int("n_symbols", n_symbols, 2)
    g = _rng(rng)
    T = delay + 2
    s = g.integers(0, K, size=B)
    x = np.zeros((T, B, K + 2), dtype=dtype)
    cols = np.arange(B)
    x[0, cols, s] = 1.0
    x[0, :, K] = 1.0
    if distractors and delay > 0:
        d = g.integers(0, K, size=(delay, B))
        x[np.arange(1, delay + 1)[:, None], cols[None, :], d] = 1.0
    x[T - 1, :, K + 1] = 1.0
    return MemoryBatch(x, s.astype(np.int64), None)


# -- 3-bit flip-flop ---------------------------------------------------------------------------------
def flip_flop(batch_size: int, length: int = 100, bits: int = 3, p: float = 0.05, rng=None,
              dtype=np.float32) -> MemoryBatch:
    """The n-bit flip-flop of Sussillo & Barak (2013), "Opening the black box".

    Channels (D = bits): each step, each channel independently carries a pulse +1 or -1 with
    probability `p` (else 0); every channel has a pulse at t = 0. `y` (T, B, bits) float is, per
    channel, the sign of the latest pulse so far: the network must hold `bits` binary memories, so a
    trained one has 2**bits stable fixed points.
    """
    B = _check_int("batch_size", batch_size, 1)
    T = _check_int("length", length, 1)
    n = _check_int("bits", bits, 1)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    g = _rng(rng)
    pulse = np.where(g.random((T, B, n)) < p, np.where(g.random((T, B, n)) < 0.5, -1.0, 1.0), 0.0)
    pulse[0] = np.where(g.random((B, n)) < 0.5, -1.0, 1.0)
    idx = np.where(pulse != 0, np.arange(T)[:, None, None], 0)
    last = np.maximum.accumulate(idx, axis=0)                         # (T, B, n) step of the latest pulse
    y = np.take_along_axis(pulse, last, axis=0)
    return MemoryBatch(pulse.astype(dtype), y.astype(dtype), None)


TASKS = {"copy": copy_task, "adding": adding_problem, "recall": delayed_recall, "flipflop": flip_flop}
