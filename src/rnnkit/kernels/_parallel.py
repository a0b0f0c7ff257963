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
reverse direction runs in a second Python thread truly in parallel, each direction's BLAS calls on
one thread (see "When" below). Both directions add their dx into one zeroed (T, B, D) array, a chunk
at a time under `ADD_LOCK` (`_seq.backward_in_chunks`): no second dx array (it was +0.13x of the kept
activations at the 2-layer bidirectional LSTM), and each takes half the rows per chunk (`running`),
so the two directions' chunk buffers together are the size of one (measured: no slower at B32 H128).

When, by default: where NumPy's BLAS already runs on one thread (`_blas.threads()` == 1, read, not
changed: the user's OPENBLAS_NUM_THREADS=1 or threadpoolctl, or the Trainer's one-thread steps,
`rnnkit.train.Trainer.side_by_side` and `one_thread_when_busy`), the compiled loops run, the process
may use two or more cores, and the sequence is long enough to pay for the hand-offs (`MIN_SEQ_MACS`),
busy machine or not (measured in one process at one BLAS thread, B32 T100 H128 2 layers, forward +
backward, the paths alternated: 1.08-1.47x faster side by side in three runs at load 9-13 on 2 cores,
0.81-1.04x in two runs at load 3-5; `docs/performance_log.md`). Then `pair` changes nothing: each
direction's BLAS calls already run on their caller's core. A layer call never changes the thread
count itself (issue 17): with two-thread BLAS and no block below, the directions run one after the
other.

An explicit option for two-thread BLAS: `with rnnkit.side_by_side(): ...` (this module's
`side_by_side`) lets `pair` set NumPy's OpenBLAS to one thread while a pair runs (for the whole
process, as threadpoolctl does; restored after), where the per-step product is small enough that
two-thread BLAS does not use both cores well (`MAX_STEP_MACS`) and the user set OpenBLAS's idle spin
short (OPENBLAS_THREAD_TIMEOUT <= 24, exported before NumPy loads: with OpenBLAS's default ~0.1 s spin
its idle worker competes with the second direction, and a bidirectional layer in a model was slower
side by side; rnnkit does not set it). Other threads that use NumPy's BLAS meanwhile get one thread.

Results: each path gives the same bits every time (each dx element is +0 plus the two directions'
products, added in either order: the same sum). The two paths agree to float rounding only: the
weight gradients are summed in chunks of half the rows, and one-thread BLAS rounds differently from
two-thread BLAS, the forward outputs included (the tests run the finite-difference and torch grids
both ways). In a program where several threads run bidirectional layers at once, which path a call
takes depends on timing.
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


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def possible() -> bool:
    """True when `pair` can run two directions side by side here at all (the compiled loops, an
    OpenBLAS rnnkit can call, two or more cores): what the Trainer asks before a one-thread step."""
    return _blas.enabled() and _blas.threads() is not None and _cores() >= 2


def worth(T: int, B: int, G: int, H: int) -> bool:
    """True when `pair` would run two directions of this size side by side (G gate blocks of H)."""
    if not _blas.enabled() or _cores() < 2:
        return False
    n = _blas.threads()
    step, force = B * G * H * H, getattr(_on, "force", False)
    if n == 1:                         # nothing to change: each direction's BLAS runs on its own core
        return force or T * step >= MIN_SEQ_MACS
    if not getattr(_on, "depth", 0) or n is None:
        return False
    return force or (short_spin() and step <= MAX_STEP_MACS and T * step >= MIN_SEQ_MACS)


def _worker() -> ThreadPoolExecutor:
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="rnnkit-direction"))
    return _pool[1]


def pair(f0, f1) -> list:
    """[f0(), f1()]: side by side (f1 in the worker thread) with single-threaded BLAS when no other
    `pair` is running, else one after the other; the thread count is changed (and restored) only when
    it was not one already (inside `side_by_side()`). An exception from either is raised after both
    ended."""
    if not _lock.acquire(blocking=False):
        return [f0(), f1()]
    try:
        before = _blas.threads()
        if before != 1:                                 # only inside `side_by_side()` (`worth`)
            _blas.set_threads(1)
        try:
            job = _worker().submit(_flagged, f1)
            try:
                r0 = _flagged(f0)
            finally:
                r1 = job.result()                                    # waits even when f0 raised
        finally:
            if before != 1:
                _blas.set_threads(before)
        return [r0, r1]
    finally:
        _lock.release()
