"""The two directions of a bidirectional layer side by side (`kernels._parallel`): `pair` runs its jobs
on two threads and restores what it changed, `worth` says where it runs (by default only where NumPy's
BLAS is already on one thread, which it reads and never sets), the Trainer's one-thread steps, and the
results and memory against the directions one after the other."""
import contextlib

import numpy as np
import pytest

import rnnkit
from rnnkit import backends
from core_cases import peak_bytes

CELLS_BY_NAME = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}


def _sbs(layer, T, B):
    """Would this layer run its two directions side by side at (T, B)?"""
    return layer._side_by_side(backends.get(layer.backend), T, B)


@pytest.fixture
def parallel(monkeypatch):
    """`kernels._parallel`, where it can run (Numba, NumPy's OpenBLAS callable), switched on
    (`side_by_side()`); BLAS at >= 2 threads inside the test, its thread count restored after; the
    BLAS spin declared short (OPENBLAS_THREAD_TIMEOUT, as a user would export it)."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas, _parallel

    if not _blas.enabled() or _blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS rnnkit can call")
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "22")
    threads = _blas.threads()
    _blas.set_threads(max(2, threads))
    try:
        with _parallel.side_by_side():
            yield _parallel
    finally:
        _blas.set_threads(threads)


def test_pair_runs_the_second_job_in_a_worker_with_one_blas_thread(parallel):
    import threading

    from rnnkit.kernels import _blas

    before = _blas.threads()

    def other_thread_running():         # another thread meanwhile: not part of the pair
        out = []
        t = threading.Thread(target=lambda: out.append(parallel.running()))
        t.start()
        t.join()
        return out[0]

    seen = parallel.pair(
        lambda: (threading.current_thread().name, _blas.threads(), parallel.running(),
                 other_thread_running()),
        lambda: (threading.current_thread().name, _blas.threads(), parallel.running()))
    assert seen[0] == (threading.current_thread().name, 1, True, False)
    assert seen[1][0].startswith("rnnkit-direction") and seen[1][1:] == (1, True)
    assert _blas.threads() == before, "pair did not restore NumPy's BLAS thread count"
    assert not parallel.running()


def test_pair_raises_after_both_ended_and_restores_the_threads(parallel):
    import time

    from rnnkit.kernels import _blas

    before, done = _blas.threads(), []

    def slow():
        time.sleep(0.05)
        done.append(1)

    with pytest.raises(ZeroDivisionError):
        parallel.pair(lambda: 1 / 0, slow)
    assert done == [1], "pair returned before the worker's job ended"
    assert _blas.threads() == before
    with pytest.raises(KeyError):
        parallel.pair(lambda: None, lambda: {}["missing"])
    assert _blas.threads() == before


def test_pair_inside_pair_runs_one_after_the_other(parallel):
    """The BLAS thread count is process-wide: a second pair while one runs (another thread, or nested)
    does not touch it and runs its jobs in the calling thread."""
    import threading

    inner = parallel.pair(lambda: parallel.pair(threading.current_thread, threading.current_thread),
                          lambda: None)[0]
    assert inner[0] is inner[1] is threading.current_thread()


def test_side_by_side_only_where_it_pays(parallel, monkeypatch):
    """Two-thread BLAS inside `side_by_side()`: at the benchmark's 2-layer bidirectional size (T100 B32
    H128) and at B32 H256 every cell's directions run side by side; at B128 H = 512 (two-thread BLAS is
    efficient alone), for short or small sequences (the thread hand-offs cost more) and with OpenBLAS's
    spin long they do not. One-thread BLAS: also at B128 H512 (the second core is idle otherwise), not
    for short sequences."""
    assert parallel.worth(100, 32, 4, 128) and parallel.worth(100, 32, 3, 128)
    assert parallel.worth(100, 32, 1, 128) and parallel.worth(100, 32, 4, 256)
    assert not parallel.worth(50, 128, 4, 512)
    assert not parallel.worth(20, 1, 4, 128) and not parallel.worth(10, 4, 4, 64)
    assert _sbs(rnnkit.LSTM(8, 128, bidirectional=True, backend="numba"), 100, 32)
    assert not _sbs(rnnkit.LSTM(8, 128, backend="numba"), 100, 32)
    assert not _sbs(rnnkit.LSTM(8, 128, bidirectional=True, backend="numpy"), 100, 32)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")          # a long spin: one after the other
    assert not parallel.worth(100, 32, 4, 128)
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT")                 # OpenBLAS's default spin (~0.1 s) too
    assert not parallel.worth(100, 32, 4, 128)
    with _blas_threads(1):
        assert parallel.worth(100, 32, 4, 128) and parallel.worth(50, 128, 4, 512)
        assert not parallel.worth(20, 1, 4, 128) and not parallel.worth(10, 4, 4, 64)


def test_side_by_side_is_off_outside_its_block_with_two_blas_threads():
    """With two-thread BLAS and no `rnnkit.side_by_side()` the directions run one after the other,
    whatever the size: only the block may change the thread count."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _blas, _parallel

    if not _blas.enabled() or _blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS rnnkit can call")
    with _blas_threads(2):
        assert not _parallel.worth(100, 32, 4, 128)
        with rnnkit.side_by_side(force=True):
            assert _parallel.worth(100, 32, 4, 128)
        assert not _parallel.worth(100, 32, 4, 128)


def _counting_pairs(monkeypatch):
    """(pair calls, set_threads calls) of `kernels._parallel` from now on, at the pair's own thread
    count (what `_blas.threads()` said inside each job)."""
    from rnnkit.kernels import _blas, _parallel

    pairs, sets = [], []
    pair = _parallel.pair
    monkeypatch.setattr(_parallel, "pair", lambda f0, f1: pairs.append(_blas.threads()) or pair(f0, f1))
    real_set = _blas.set_threads
    monkeypatch.setattr(_blas, "set_threads", lambda n: sets.append(n) or real_set(n))
    return pairs, sets


@pytest.fixture
def one_thread():
    """NumPy's BLAS on one thread (as OPENBLAS_NUM_THREADS=1 or threadpoolctl leave it); restored
    after."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _parallel

    if not _parallel.possible():
        pytest.skip("side by side cannot run here (no callable OpenBLAS, or one core)")
    with _blas_threads(1):
        yield


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU])
def test_one_thread_blas_runs_the_directions_side_by_side_changing_nothing(one_thread, monkeypatch, cls):
    """Where NumPy's BLAS already runs on one thread, a bidirectional layer of the benchmark's size runs
    its two directions as a pair by default, and nothing sets the thread count (read, never written);
    the numbers are those of the directions one after the other (to float rounding: the weight
    gradients are summed in chunks of half the rows)."""
    from rnnkit.kernels import _parallel

    T, B, D, H = 100, 32, 8, 128
    layer = cls(D, H, bidirectional=True, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    dout = rng.standard_normal((T, B, 2 * H)).astype(np.float32)
    pairs, sets = _counting_pairs(monkeypatch)
    out, _ = layer.forward(x)
    out = out.copy()
    dx, _ = layer.backward(dout)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert pairs == [1, 1] and sets == [], (pairs, sets)
    monkeypatch.setattr(_parallel, "MIN_SEQ_MACS", 10**18)        # the same layer, one after the other
    out1, _ = layer.forward(x)
    dx1, _ = layer.backward(dout)
    assert pairs == [1, 1]
    np.testing.assert_allclose(out1, out, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dx1, dx, rtol=0, atol=1e-5)
    for k, g in grads.items():
        assert np.abs(layer.grads[k] - g).max() <= 1e-5 * max(1.0, np.abs(g).max()), k


def _step_threads(trainer, model):
    """NumPy's BLAS thread count seen inside each of two Trainer steps, and after them."""
    from rnnkit.kernels import _blas

    seen = []
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)

    def step(batch):
        seen.append(_blas.threads())
        out, _ = model.forward(x)
        model.backward(np.ones_like(out))
        return float(out.sum()), 1

    trainer.fit(lambda epoch, rng: [0, 1], step)
    return seen, _blas.threads()


def test_trainer_steps_of_a_bidirectional_model_run_on_one_blas_thread(monkeypatch):
    """The Trainer (the loop's owner) runs each step of a model that holds a bidirectional layer able to
    pair on one BLAS thread and restores the count after; with `side_by_side = False`, for a
    unidirectional model and for the reference backend it leaves the count alone (idle machine)."""
    if not backends.available("numba"):
        pytest.skip("numba is not installed")
    from rnnkit.kernels import _parallel, _threads
    from rnnkit.train import TrainConfig, Trainer

    if not _parallel.possible():
        pytest.skip("side by side cannot run here (no callable OpenBLAS, or one core)")
    monkeypatch.setattr(_threads.RUNNABLE, "oversubscribed", lambda n: False)   # an idle machine
    cfg = TrainConfig(steps=2, lr=0.01, progress=False, seed=0)

    class Net(rnnkit.Module):                    # a bidirectional layer one level down
        def __init__(self, bidirectional, backend="numba"):
            super().__init__()
            self.rnn = self.add_module("rnn", rnnkit.GRU(3, 4, bidirectional=bidirectional, backend=backend))

        def forward(self, x):
            return self.rnn.forward(x)

        def backward(self, d):
            return self.rnn.backward(d)

    with _blas_threads(2):
        for model, want in ((Net(True), 1), (Net(False), 2), (Net(True, "numpy"), 2)):
            seen, after = _step_threads(Trainer(model, cfg), model)
            assert seen == [want, want] and after == 2, (model.rnn, seen, after)
        model = Net(True)
        trainer = Trainer(model, cfg)
        trainer.side_by_side = False
        assert _step_threads(trainer, model) == ([2, 2], 2)


@contextlib.contextmanager
def _blas_threads(n):
    """NumPy's BLAS on n threads inside the block, its count restored after."""
    from rnnkit.kernels import _blas

    before = _blas.threads()
    _blas.set_threads(n)
    try:
        yield
    finally:
        _blas.set_threads(before)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.slow
def test_side_by_side_matches_one_after_the_other_at_benchmark_size(parallel, cell):
    """float32, T60 B32 H128, 2 layers: the same bits twice, and the same numbers (to float rounding:
    one-thread BLAS rounds differently) as the directions one after the other (outputs, dx, every
    gradient), and at most 5% more peak memory (both directions add into one dx with half-size chunks:
    before that, a second dx array cost +0.13x of the kept activations)."""
    layer = CELLS_BY_NAME[cell](16, 128, num_layers=2, bidirectional=True, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 32, 16)).astype(np.float32)
    dout = rng.standard_normal((60, 32, 256)).astype(np.float32)
    assert _sbs(layer, 60, 32)
    out, _ = layer.forward(x)
    out = out.copy()
    dx, _ = layer.backward(dout)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    again, _ = layer.forward(x)                         # side by side is deterministic: the same bits
    assert np.array_equal(again, out) and np.array_equal(layer.backward(dout)[0], dx)
    assert all(np.array_equal(layer.grads[k], g) for k, g in grads.items())
    peak = peak_bytes(layer, x, dout)
    saved = parallel.MAX_STEP_MACS
    parallel.MAX_STEP_MACS = 0
    try:
        assert not _sbs(layer, 60, 32)
        out1, _ = layer.forward(x)
        dx1, _ = layer.backward(dout)
        peak1 = peak_bytes(layer, x, dout)
    finally:
        parallel.MAX_STEP_MACS = saved
    np.testing.assert_allclose(out, out1, rtol=0, atol=1e-5)
    np.testing.assert_allclose(dx, dx1, rtol=0, atol=1e-4)
    for k, g in grads.items():
        assert np.abs(g - layer.grads[k]).max() <= 1e-5 * max(1.0, np.abs(g).max()), k
    assert peak <= 1.05 * peak1, f"side by side peaked at {peak / peak1:.3f}x one after the other"
