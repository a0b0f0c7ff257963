"""The memory-reach engine (rnnkit.diagnostics.memory): read-out gradients, the curriculum, and the
separation the theory predicts (an LSTM reaches gaps a plain RNN does not, at equal steps)."""
import numpy as np
import pytest

from rnnkit.diagnostics.memory import (ADDING_TRIVIAL_MSE, TASK_SPECS, MemoryConfig, MemoryModel,
                                       blas_threads, build_model, curriculum)
from rnnkit.diagnostics.memory_tasks import adding_problem


@pytest.mark.parametrize("task", ["adding", "copy", "recall"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_loss_gradients_match_finite_differences(task, cell):
    cfg = MemoryConfig(task=task, hidden=4, n_symbols=3, copy_length=2)
    spec = TASK_SPECS[task]
    m = MemoryModel(cell, spec.input_size(cfg), 4, spec.n_out(cfg), seed=1, dtype=np.float64, task=task)
    batch = spec.make(3, 4, 0, cfg, np.float64)
    m.loss_and_backward(batch)
    grads = {k: g.copy() for k, g in m.grads.items()}
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name, p in m.params.items():
        for idx in rng.choice(p.size, size=min(4, p.size), replace=False):
            i = np.unravel_index(idx, p.shape)
            old = p[i]
            p[i] = old + eps
            lp = m.loss_and_backward(batch)
            p[i] = old - eps
            lm = m.loss_and_backward(batch)
            p[i] = old
            num = (lp - lm) / (2 * eps)
            assert grads[name][i] == pytest.approx(num, rel=1e-5, abs=1e-8), f"{task} {cell} d{name}{i}"


def test_adding_score_is_mse_and_the_trivial_predictor():
    # a model whose read-out is forced to the constant 1.0 scores the trivial predictor's MSE, 1/6
    cfg = MemoryConfig(task="adding", hidden=3)
    m = build_model("gru", cfg).astype(np.float64)
    m.head.params["weight"][...] = 0.0
    m.head.params["bias"][...] = 1.0
    b = adding_problem(20_000, length=6, rng=3, dtype=np.float64)
    assert m.score(b) == pytest.approx(ADDING_TRIVIAL_MSE, rel=0.03)
    assert not cfg.solved(m.score(b)) and cfg.solved(0.5 * 0.01 * ADDING_TRIVIAL_MSE)


def test_copy_accuracy_counts_only_the_copied_steps():
    cfg = MemoryConfig(task="copy", hidden=3, n_symbols=4, copy_length=3)
    m = build_model("rnn", cfg).astype(np.float64)
    b = TASK_SPECS["copy"].make(50, 5, 1, cfg, np.float64)
    # read-out that always says "blank" (class 0): right on every unscored step, wrong on every copy
    m.head.params["weight"][...] = 0.0
    m.head.params["bias"][...] = np.array([5.0, 0, 0, 0, 0])
    assert m.score(b) == 0.0


def test_curriculum_stops_at_the_first_unsolved_gap():
    # one step per stage cannot solve T=2 recall: a single stage, nothing solved, every T still scored
    cfg = MemoryConfig(task="recall", hidden=4, n_symbols=4, max_steps=1, n_val=64, n_eval=200)
    _, stages, final = curriculum("gru", [2, 8, 4], 30.0, cfg, progress=lambda s: None)
    assert [s.T for s in stages] == [2] and not stages[0].solved and stages[0].steps == 1
    assert sorted(final) == [2, 4, 8]


@pytest.mark.slow  # 94 s at load 13
def test_lstm_reaches_a_gap_the_rnn_does_not_at_equal_steps():
    # The theory's claim in numbers: with at most 3000 steps per stage, an LSTM (forget bias 1)
    # taken through T = 10, 50, 100 solves the adding problem at T=100 (test MSE < 1 % of the
    # trivial 1/6); a plain tanh RNN trained at T=100 for 3000 steps stays far from it. (At 1500 the
    # LSTM's held-out score sometimes ended just above the bar: a stage that validation calls solved
    # trains on until the test set agrees.)
    cfg = MemoryConfig(task="adding", hidden=32, max_steps=3000, n_eval=500)
    with blas_threads(1):                                     # as `rnnkit memory` trains
        _, stages, _ = curriculum("lstm", [10, 50, 100], 600.0, cfg, progress=lambda s: None)
        _, (rnn,), _ = curriculum("rnn", [100], 600.0, cfg, progress=lambda s: None)
    assert [s.T for s in stages] == [10, 50, 100] and all(s.solved for s in stages), stages
    assert not rnn.solved and rnn.score > 10 * 0.01 * ADDING_TRIVIAL_MSE, rnn


@pytest.mark.parametrize("task", ["adding", "copy", "recall", "flipflop"])
def test_score_in_chunks_is_the_score_of_the_whole_batch(task):
    cfg = MemoryConfig(task=task, hidden=5, n_symbols=4)
    m = build_model("lstm", cfg).astype(np.float64)
    b = TASK_SPECS[task].make(70, 6, 0, cfg, np.float64)
    assert m.score(b, chunk=16) == pytest.approx(m.score(b, chunk=1000), rel=1e-12)
