"""NumPy's own BLAS library found in the process, its thread count, and one thread while the machine is
oversubscribed (`when_oversubscribed`).

Plain ctypes, no Numba: the Trainer uses `when_oversubscribed` around every training step, whatever the
backend. Nothing is looked up until first asked (`blas()`).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import time

import numpy as np

_NAMES = [("scipy_cblas_", "64_", 64), ("cblas_", "64_", 64), ("scipy_cblas_", "", 32), ("cblas_", "", 32)]


def _loaded_libraries():
    """Paths of the shared libraries in this process whose name says BLAS (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if line.rstrip().endswith(".so") or ".so." in line}
    except OSError:  # not Linux: no lookup, the Python loops run
        return []
    keys = ("blas", "mkl", "blis")
    found = [p for p in paths if p.startswith("/") and any(k in os.path.basename(p).lower() for k in keys)]
    # NumPy's own first (numpy.libs/ beside the package): SciPy or torch may have loaded another BLAS,
    # whose separate thread pool would compete with NumPy's
    own = os.path.dirname(os.path.realpath(np.__file__))
    return sorted(found, key=lambda p: (not os.path.realpath(p).startswith(own), p))


def _find():
    """(sgemm address, dgemm address, integer width, the library) of NumPy's CBLAS, or None."""
    for path in _loaded_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pre, suf, width in _NAMES:
            try:
                s, d = getattr(lib, f"{pre}sgemm{suf}"), getattr(lib, f"{pre}dgemm{suf}")
            except AttributeError:
                continue
            return ctypes.cast(s, ctypes.c_void_p).value, ctypes.cast(d, ctypes.c_void_p).value, width, lib
    return None



_FOUND: list = []


def blas():
    """(sgemm address, dgemm address, integer width, the library) of NumPy's CBLAS, or None; looked up
    once."""
    if not _FOUND:
        _FOUND.append(_find())
    return _FOUND[0]


def _thread_functions():
    """OpenBLAS's (get_num_threads, set_num_threads) in NumPy's BLAS library, or None (another BLAS)."""
    found = blas()
    if found is None:
        return None
    lib = found[3]
    for pre, suf in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "64_"),
                     ("openblas_", "")):
        try:
            get, put = getattr(lib, f"{pre}get_num_threads{suf}"), getattr(lib, f"{pre}set_num_threads{suf}")
        except AttributeError:
            continue
        get.restype, get.argtypes, put.restype, put.argtypes = ctypes.c_int, [], None, [ctypes.c_int]
        return get, put
    return None


_THREADS: list = []


def _get_set():
    if not _THREADS:
        _THREADS.append(_thread_functions())
    return _THREADS[0]


class _Runnable:
    """A running average of how many threads of other processes are runnable on the machine
    (/proc/loadavg's fourth field less this process's own share), sampled at most every 10 ms.

    Why: with two BLAS threads every step's small product waits for its partner thread, and a busy
    machine deschedules that partner (the main job ran 18x slower beside a torch job, 1.7x with one
    thread), while on an idle machine two threads are faster. The field counts this thread and its
    spinning BLAS workers too: measured on 2 cores while an LSTM H256 trains on two threads, 2.0
    alone, 3.0 beside one busy process, 3.9 beside a torch job; on one thread one less each.
    """

    PERIOD = 0.01
    WEIGHT = 0.2           # of the newest sample in the average

    def __init__(self):
        self.others, self.last, self.single = None, -1.0, False
        try:
            self.cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cores = os.cpu_count() or 1

    def oversubscribed(self, n_threads: int) -> bool:
        """True when the other processes' runnable threads and this process's `n_threads` BLAS threads
        together are more than its cores (half a thread of margin)."""
        now = time.monotonic()
        if now - self.last >= self.PERIOD:
            self.last = now
            try:
                with open("/proc/loadavg") as f:
                    runnable = int(f.read().split()[3].split("/")[0])
            except (OSError, ValueError, IndexError):     # not Linux: never counted as oversubscribed
                return False
            own = 1 if self.single else n_threads       # ours, as the last decision left them
            x = runnable - own
            self.others = x if self.others is None else self.others + self.WEIGHT * (x - self.others)
        self.single = self.others is not None and self.others + n_threads > self.cores + 0.5
        return self.single


RUNNABLE = _Runnable()


@contextlib.contextmanager
def one_thread(when: bool = True):
    """NumPy's BLAS on one thread inside the block when `when` (and it has more), restored after; else
    nothing changes. Process-wide, as OpenBLAS's count is: only the owner of a loop uses this, around
    one step of it (the Trainer), never a layer call."""
    n = threads() if when else None
    if n is None or n < 2:
        yield
        return
    set_threads(1)
    try:
        yield
    finally:
        set_threads(n)


def when_oversubscribed():
    """`one_thread()` while the machine is oversubscribed (`RUNNABLE`); else nothing changes.
    OpenBLAS's thread count is the process's (its `openblas_set_num_threads_local` too: measured,
    another thread sees it), so only the owner of a loop uses this, around one step of it (the
    Trainer)."""
    n = threads()
    return one_thread(n is not None and n >= 2 and RUNNABLE.oversubscribed(n))


def threads() -> int | None:
    """How many threads NumPy's BLAS uses now (None: not OpenBLAS, unknown)."""
    f = _get_set()
    return None if f is None else int(f[0]())


def set_threads(n: int) -> None:
    """Set NumPy's BLAS thread count, process-wide (as threadpoolctl does; needs `threads()`)."""
    _get_set()[1](int(n))

