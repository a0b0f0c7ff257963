"""The two directions of a bidirectional layer at once, one core each.

Why: per time step a direction does one small product (B, H) x (H, G*H) and one gate kernel. With
two BLAS threads the product is split in two halves (a thread handshake per step, each half small)
and the gate kernel runs on one core while the other waits. The two directions are independent, in
the forward and in the backward (only their dx are summed afterwards), so each can run on a core of
its own with single-threaded BLAS and no core waits. Measured for two T100 layers, forward plus
backward, one after the other with two BLAS threads against side by side with one each: B32 H128
LSTM 1.25x, GRU 1.35x, RNN 1.30x faster (D = 64), LSTM with D = 256 1.13x; B32 H256 LSTM 1.27x, GRU
1.52x, RNN 1.50x; B48-64 H256 LSTM 1.15-1.21x (one earlier run 0.99-1.06x), GRU 1.19x. At B128 H512
two-thread BLAS is efficient on its own and side by side was slower (0.94-0.95x), and so it is for
short or small sequences, so `worth` says no there.

How: the compiled time loops release the GIL (`nogil`) and call BLAS from inside (`_blas`), so the
reverse direction runs in a second Python thread truly in parallel. NumPy's OpenBLAS is set to one
thread for the duration (process-wide, as threadpoolctl does) and set back after. Both directions
add their dx into one zeroed (T, B, D) array, a chunk at a time under `ADD_LOCK` (`_seq.
backward_in_chunks`): no second dx array (it was +0.13x of the kept activations at the 2-layer
bidirectional LSTM), and each takes half the rows per chunk (`running`), so the two directions' chunk
buffers together are the size of one (measured: no slower at B32 H128).

An explicit option, off by default: `with rnnkit.kernels._parallel.side_by_side(): ...` (exported as
`rnnkit.side_by_side`) switches it on inside the block. Why not by default: `pair` changes the thread
count of NumPy's OpenBLAS for the whole process while it runs (restored after), so other threads that
use NumPy's BLAS meanwhile get one thread, and on a machine whose second core is busy the two
directions wait on each other. Inside the block it is used when the compiled loops run, NumPy's BLAS
is OpenBLAS with two or more threads whose idle spin is short (the user's OPENBLAS_THREAD_TIMEOUT
<= 24, exported before NumPy loads: with OpenBLAS's default ~0.1 s spin a bidirectional layer in a
model was slower side by side; rnnkit does not set it), the layer is in the size range where it
pays, and no other thread is inside `pair`; otherwise the directions run one after the other.

Results: each path gives the same bits every time (each dx element is +0 plus the two directions'
products, added in either order: the same sum). The two paths agree to float rounding only:
one-thread BLAS rounds differently from two-thread BLAS, the forward outputs included (the tests run
the finite-difference and torch grids both ways). In a program where several threads run
bidirectional layers at once, which path a call takes depends on timing.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import contextlib

from . import _blas

# per direction, B * G*H * H multiply-adds per step in the recurrent product, T steps: below MIN_SEQ
# for the whole sequence the thread hand-offs (two per forward + backward, ~0.1 ms each here) cost more
# than they save (measured 0.8-0.96x at 0.7-30M, 1.11-1.23x at 20-210M); above MAX_STEP (B64 LSTM
# H256) per step two-thread BLAS uses both cores well enough.
MIN_SEQ_MACS = 30_000_000
MAX_STEP_MACS = 64 * 4 * 256 * 256

MAX_SHORT_SPIN = 24  # OPENBLAS_THREAD_TIMEOUT up to this (2**24 cycles, ~6 ms) counts as short
_on = threading.local()   # .depth: how many `side_by_side()` blocks this thread is inside
_lock = threading.Lock()
_inside = threading.local()  # .on: this thread is running one of a pair's two jobs
ADD_LOCK = threading.Lock()  # held while a direction adds its chunk of dx into the layer's shared dx
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid, one worker): a forked child makes its own


def running() -> bool:
    """True in the two threads of a running `pair` (only there): each backward then takes half the
    usual rows per weight-gradient chunk (`_seq.chunk_steps`), so the two directions' chunk buffers
    together are one's size."""
    return getattr(_inside, "on", False)


def _flagged(f):
    """f() with `running()` True in this thread meanwhile."""
    _inside.on = True
    try:
        return f()
    finally:
        _inside.on = False


@contextlib.contextmanager
def side_by_side(force: bool = False):
    """Run bidirectional layers' two directions at once inside the block (this thread only); `force`
    also at sizes where `worth` would say no (tests)."""
    before = getattr(_on, "depth", 0), getattr(_on, "force", False)
    _on.depth, _on.force = before[0] + 1, before[1] or force
    try:
        yield
    finally:
        _on.depth, _on.force = before


def short_spin(environ=os.environ) -> bool:
    """True when the user set OpenBLAS's idle spin short (OPENBLAS_THREAD_TIMEOUT <= MAX_SHORT_SPIN)."""
    try:
        return int(environ.get("OPENBLAS_THREAD_TIMEOUT", "")) <= MAX_SHORT_SPIN
    except ValueError:
        return False


def worth(T: int, B: int, G: int, H: int) -> bool:
    """True when `pair` would run two directions of this size side by side (G gate blocks of H)."""
    if not getattr(_on, "depth", 0) or not _blas.enabled():
        return False
    step = B * G * H * H
    if not getattr(_on, "force", False) and not (short_spin() and step <= MAX_STEP_MACS
                                                 and T * step >= MIN_SEQ_MACS):
        return False
    n = _blas.threads()
    return n is not None and n >= 2


def _worker() -> ThreadPoolExecutor:
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="rnnkit-direction"))
    return _pool[1]


def pair(f0, f1) -> list:
    """[f0(), f1()]: side by side (f1 in the worker thread) with single-threaded BLAS when no other
    `pair` is running, else one after the other. An exception from either is raised after both ended."""
    if not _lock.acquire(blocking=False):
        return [f0(), f1()]
    try:
        before = _blas.threads()
        _blas.set_threads(1)
        try:
            job = _worker().submit(_flagged, f1)
            try:
                r0 = _flagged(f0)
            finally:
                r1 = job.result()                                    # waits even when f0 raised
        finally:
            _blas.set_threads(before)
        return [r0, r1]
    finally:
        _lock.release()
