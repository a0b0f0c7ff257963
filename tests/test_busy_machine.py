"""Busy machine (issue 16 section 4): the Trainer's steps run NumPy's BLAS on one thread while other
processes fill the cores, and leave it alone otherwise. Speed is measured by benchmarks/busy_machine.py."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnkit.kernels import _threads

needs_openblas = pytest.mark.skipif((_threads.threads() or 1) < 2,
                                    reason="NumPy's BLAS is not OpenBLAS with two or more threads here")
needs_proc = pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs Linux's /proc/loadavg")


def _spinners(n):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _stop(ps):
    for p in ps:
        p.kill()
        p.wait()


@needs_openblas
@needs_proc
def test_one_thread_while_other_processes_fill_the_cores_and_restored_after():
    before = _threads.threads()
    ps = _spinners(_threads.RUNNABLE.cores + 1)
    try:
        inside, deadline = None, time.monotonic() + 10
        while inside != 1 and time.monotonic() < deadline:
            with _threads.when_oversubscribed():
                inside = _threads.threads()
            time.sleep(0.02)
        assert inside == 1, f"{_threads.RUNNABLE.cores + 1} spinning processes not seen: {_threads.RUNNABLE.others}"
        assert _threads.threads() == before
        with _threads.when_oversubscribed():
            with _threads.when_oversubscribed():                    # nested: nothing more to change
                assert _threads.threads() == 1
            assert _threads.threads() == 1
        assert _threads.threads() == before
    finally:
        _stop(ps)


def test_training_results_do_not_depend_on_the_thread_count():
    """A layer's float64 outputs and gradients on one BLAS thread equal those on NumPy's count."""
    import rnnkit

    x = np.random.default_rng(0).standard_normal((30, 4, 5))
    n = _threads.threads()
    runs = []
    for count in (n, 1):
        layer = rnnkit.LSTM(5, 7, bidirectional=True, dtype=np.float64, seed=1)
        if count is not None:
            _threads.set_threads(count)
        try:
            out, _ = layer.forward(x)
            layer.backward(np.ones_like(out))
        finally:
            if n is not None:
                _threads.set_threads(n)
        runs.append((out, {k: v.copy() for k, v in layer.grads.items()}))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-12, atol=1e-14)
    for k in runs[0][1]:
        np.testing.assert_allclose(runs[0][1][k], runs[1][1][k], rtol=1e-10, atol=1e-13, err_msg=k)
