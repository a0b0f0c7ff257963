"""Stated properties of the synthetic memory tasks (rnnkit.diagnostics.memory_tasks)."""
import numpy as np
import pytest

from rnnkit.diagnostics.memory_tasks import adding_problem, copy_task, delayed_recall


def test_copy_task_shapes_and_recoverable():
    L, delay, K, B = 4, 7, 5, 6
    b = copy_task(B, length=L, delay=delay, n_symbols=K, rng=0)
    T = 2 * L + delay + 1
    assert b.x.shape == (T, B, K + 2) and b.y.shape == (T, B) and b.mask.shape == (T, B)
    assert np.all(b.x.sum(-1) == 1)                      # exactly one channel on per step
    ids = b.x.argmax(-1)
    assert np.all(ids[L + delay] == K + 1)              # delimiter exactly `delay` blanks after the symbols
    assert np.all(ids[L:L + delay] == 0) and np.all(ids[L + delay + 1:] == 0)
    # the scored targets are the input symbols, in order, L + delay + 1 steps later
    np.testing.assert_array_equal(b.y[b.mask].reshape(L, B), ids[:L])
    assert np.all(b.y[~b.mask] == 0)
    assert ids[:L].min() >= 1 and ids[:L].max() <= K


def test_adding_problem_target_is_sum_of_marked():
    B, T = 16, 20
    b = adding_problem(B, length=T, rng=1, dtype=np.float64)
    assert b.x.shape == (T, B, 2) and b.y.shape == (B,)
    marker = b.x[..., 1]
    assert np.all(marker.sum(0) == 2)
    assert np.all(marker[:T // 2].sum(0) == 1) and np.all(marker[T // 2:].sum(0) == 1)
    np.testing.assert_allclose(b.y, (b.x[..., 0] * marker).sum(0))
    assert b.x[..., 0].min() >= 0 and b.x[..., 0].max() < 1


@pytest.mark.parametrize("distractors", [True, False])
def test_delayed_recall_delay_exact(distractors):
    B, delay, K = 32, 9, 4
    b = delayed_recall(B, delay=delay, n_symbols=K, distractors=distractors, rng=2)
    assert b.x.shape == (delay + 2, B, K + 2) and b.y.shape == (B,)
    # the label is the symbol shown with the marker at t = 0; the marker appears nowhere else
    np.testing.assert_array_equal(b.x[0, :, :K].argmax(-1), b.y)
    assert np.all(b.x[0, :, :K].sum(-1) == 1) and np.all(b.x[0, :, K] == 1)
    assert np.all(b.x[1:, :, K] == 0)
    # the cue appears only at the last step, exactly delay + 1 steps after the symbol
    cue = b.x[:, :, K + 1]
    assert np.all(cue[-1] == 1) and np.all(cue[:-1] == 0)
    assert np.all(b.x[-1, :, :K + 1] == 0)
    dis = b.x[1:delay + 1, :, :K].sum(-1)
    assert np.all(dis == (1 if distractors else 0))
    if distractors:   # distractors share the symbol channels, so they carry every symbol
        assert set(np.unique(b.x[1:delay + 1, :, :K].argmax(-1))) == set(range(K))


def test_delay_zero_and_determinism():
    b = delayed_recall(3, delay=0, rng=5)
    assert b.x.shape[0] == 2
    for fn, kw in [(copy_task, {}), (adding_problem, {}), (delayed_recall, {"delay": 3})]:
        a1, a2, a3 = fn(8, rng=11, **kw), fn(8, rng=11, **kw), fn(8, rng=12, **kw)
        np.testing.assert_array_equal(a1.x, a2.x)
        np.testing.assert_array_equal(a1.y, a2.y)
        assert not np.array_equal(a1.x, a3.x)
    g = np.random.default_rng(0)
    assert not np.array_equal(delayed_recall(8, rng=g).x, delayed_recall(8, rng=g).x)


@pytest.mark.parametrize("call", [
    lambda: copy_task(0), lambda: copy_task(2, delay=-1), lambda: delayed_recall(2, n_symbols=1),
    lambda: adding_problem(2, length=1), lambda: delayed_recall(2, delay=2.5),
    lambda: delayed_recall(2, rng="seed"),
])
def test_bad_arguments(call):
    with pytest.raises((ValueError, TypeError)):
        call()


# -- exploding-gradient detection and the clipping rule ---------------------------------------------
def test_detect_explosions_and_suggested_clip():
    from rnnkit.diagnostics.exploding import detect_explosions, suggest_clip_threshold
    rng = np.random.default_rng(0)
    healthy = 1.0 + 0.1 * rng.random(50)
    norms = np.concatenate([healthy, [40.0, 2.0, np.inf, np.nan, 500.0]])
    assert detect_explosions(norms) == [50, 52, 53, 54]
    rep = suggest_clip_threshold(norms)
    assert rep.first == 50 and rep.n_nonfinite == 2 and rep.healthy_steps == 50
    assert rep.suggested_clip == pytest.approx(np.percentile(healthy, 95))
    rep = suggest_clip_threshold(healthy, percentile=50)
    assert rep.first is None and rep.suggested_clip == pytest.approx(np.median(healthy))
    assert suggest_clip_threshold([np.nan, np.nan]).suggested_clip is None
    with pytest.raises(ValueError):
        suggest_clip_threshold(norms, percentile=0)
    with pytest.raises(ValueError):
        detect_explosions(norms, factor=1)


def test_explosion_window_follows_a_drifting_norm():
    from rnnkit.diagnostics.exploding import detect_explosions
    drift = np.geomspace(0.01, 10.0, 1000)           # norms growing slowly by 1000x: no spike
    assert detect_explosions(drift) == []
    spike = drift.copy()
    spike[700] *= 30
    assert detect_explosions(spike) == [700]


def test_flip_flop_target_is_the_latest_pulse():
    from rnnkit.diagnostics.memory_tasks import flip_flop
    b = flip_flop(8, length=40, bits=3, p=0.1, rng=4, dtype=np.float64)
    assert b.x.shape == (40, 8, 3) and b.y.shape == (40, 8, 3)
    assert np.all(b.x[0] != 0) and set(np.unique(b.x)) <= {-1.0, 0.0, 1.0}
    # walk the sequence: the target changes exactly where a pulse arrives, to that pulse
    state = b.x[0].copy()
    for t in range(40):
        state = np.where(b.x[t] != 0, b.x[t], state)
        np.testing.assert_array_equal(b.y[t], state)
    assert 0.03 < np.mean(b.x[1:] != 0) < 0.2                      # pulses at about the rate p
