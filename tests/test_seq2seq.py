"""Encoder-decoder: every gradient by float64 finite differences; greedy and beam search."""
import numpy as np
import pytest

from rnnkit.gradcheck import check_function
from rnnkit.models.seq2seq import BOS, EOS, Seq2Seq, bridge, bridge_backward


def _batch(rng, Vs=7, Vt=6):
    S, T, B = 5, 4, 3
    src = rng.integers(4, Vs, size=(S, B))
    src_len = np.array([5, 2, 4])
    tgt = rng.integers(4, Vt, size=(T, B))
    tgt_len = np.array([4, 3, 1])
    return src, src_len, tgt, tgt_len


@pytest.mark.parametrize("cell,bi,attention,layers", [
    ("lstm", True, "general", 1), ("gru", False, "dot", 2), ("lstm", False, None, 1), ("rnn", True, "dot", 2)])
def test_seq2seq_gradients_match_finite_differences(cell, bi, attention, layers):
    rng = np.random.default_rng(0)
    model = Seq2Seq(7, 6, embed=3, hidden=3, layers=layers, cell=cell, bidirectional=bi, attention=attention,
                    dtype=np.float64, seed=1)
    src, src_len, tgt, tgt_len = _batch(rng)

    def forward(**_):
        return model.forward(src, src_len, tgt, tgt_len)

    def backward(up):
        forward()
        model.backward(up)
        return {k: v.copy() for k, v in model.grads.items()}

    report = check_function(forward, backward, model.params, seed=2)
    assert report.passed, str(report)
    assert set(report.errors) == set(model.params)


def test_bridge_round_trip():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(4, 3, 5))  # 2 layers x 2 directions
    b = bridge(h, 2, 2)
    assert b.shape == (2, 3, 10)
    np.testing.assert_array_equal(b[1, :, 5:], h[3])
    u = rng.normal(size=b.shape)
    assert np.isclose(np.sum(u * b), np.sum(bridge_backward(u, 2, 2) * h))


def test_greedy_and_beam_agree_on_a_learned_copy_task():
    """Train a tiny model to copy; greedy and beam (width 1 and 3) decode it."""
    from rnnkit.optim import Adam
    from rnnkit.losses import softmax_cross_entropy
    rng = np.random.default_rng(0)
    V = 8
    model = Seq2Seq(V, V, embed=16, hidden=24, cell="gru", attention="general", seed=0)
    opt = Adam(lr=0.02)
    for _ in range(150):
        L = rng.integers(2, 5, size=16)
        src = np.zeros((4, 16), np.int64)
        for b, n in enumerate(L):
            src[:n, b] = rng.integers(4, V, size=n)
        tgt_in = np.vstack([np.full((1, 16), BOS), src])
        tgt_out = np.vstack([src, np.zeros((1, 16), np.int64)])
        tgt_out[L, np.arange(16)] = EOS
        logits = model.forward(src, L, tgt_in, L + 1)
        mask = np.arange(5)[:, None] < (L + 1)[None]
        loss, d = softmax_cross_entropy(logits, tgt_out, mask)
        model.backward(d)
        opt.step(model.params, model.grads)
    assert loss < 0.3
    seq = [5, 7, 4]
    src = np.array(seq)[:, None]
    assert model.greedy(src, [3])[0] == seq
    assert model.beam_search(seq, beam=1) == seq
    assert model.beam_search(seq, beam=3) == seq
    with pytest.raises(ValueError, match="beam"):
        model.beam_search(seq, beam=0)
