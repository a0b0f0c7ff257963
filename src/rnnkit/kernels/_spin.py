"""How long NumPy's OpenBLAS threads spin after a multi-threaded call; made short where rnnkit can.

After each multi-threaded call OpenBLAS's worker threads busy-wait for new work for 2**THREAD_TIMEOUT
CPU cycles before they sleep: by default 2**28, about 0.1 s on this machine. A worker that spins takes
a core away from the two directions that `_parallel.pair` runs side by side, one thread each (set to
one BLAS thread, but the spinning worker is already waiting). A bidirectional layer in a model has
such calls right before it (the head's product before the backward), and there running the directions
side by side was slower than one after the other (2-layer bidirectional, B32 T100 D64 H128, a
Linear head of width 256 between forward and backward: LSTM 0.88x, GRU 0.79x, RNN 0.89x), while the
layer alone was 1.28x faster. With OPENBLAS_THREAD_TIMEOUT=22 (2**22 cycles, about 1.5 ms: still long
enough to keep the workers awake between the per-step products of a time loop) the model step was
1.27x, 1.19x, 1.21x faster side by side (`benchmarks/bench_side_by_side.py`, a process per setting).
The same spin had slowed torch's calls in the alternating benchmark too (docs/readme/performance.md).

OpenBLAS reads the variable once, when NumPy loads it. So rnnkit sets it, if it is unset, when rnnkit
is imported before NumPy (`import rnnkit` first, `python -m rnnkit`, the `rnnkit` command). It only
shortens how long idle BLAS threads burn a core. Where NumPy came first with the default spin, `SHORT`
is False and bidirectional layers run their directions one after the other, as before: to get the
side-by-side path there, import rnnkit before NumPy or export OPENBLAS_THREAD_TIMEOUT=22 (any value
up to `MAX_SHORT` counts as short). This module must not import NumPy.
"""
from __future__ import annotations

import os
import sys

VALUE = "22"        # 2**22 cycles, ~1.5 ms
MAX_SHORT = 24      # 2**24 cycles, ~6 ms: a value up to this counts as short


def configure(environ=os.environ, modules=sys.modules) -> bool:
    """Set OPENBLAS_THREAD_TIMEOUT to VALUE when it is unset and NumPy is not loaded yet; return True
    when the spin in effect is short (set here, or set by the user to at most MAX_SHORT)."""
    value = environ.get("OPENBLAS_THREAD_TIMEOUT")
    if value is None:
        if "numpy" in modules:
            return False                       # OpenBLAS has read its default already
        environ["OPENBLAS_THREAD_TIMEOUT"] = VALUE
        return True
    try:
        return int(value) <= MAX_SHORT
    except ValueError:
        return False                           # not a number: assume the default


SHORT = configure()
