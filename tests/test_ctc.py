"""CTC loss (FD in float64, torch parity, too-short inputs) and CTC decoding."""
import itertools

import numpy as np
import pytest

from rnnkit.losses.ctc import ctc_loss, min_input_length
from rnnkit.tasks.ctc_decode import cer, edit_distance, greedy_decode, prefix_beam_decode


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    T, B, C = 9, 4, 5
    x = rng.normal(size=(T, B, C))
    targets = np.array([[1, 2, 2, 0], [3, 0, 0, 0], [1, 1, 4, 1], [0, 0, 0, 0]])
    tl = np.array([3, 1, 4, 0])
    il = np.array([9, 6, 8, 3])
    return x, targets, il, tl


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ctc_gradient_matches_finite_differences(reduction):
    x, tg, il, tl = _batch()
    rng = np.random.default_rng(1)
    _, g = ctc_loss(x, tg, il, tl, reduction=reduction)
    eps = 1e-6
    for _ in range(25):
        idx = tuple(rng.integers(0, s) for s in x.shape)
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = (ctc_loss(xp, tg, il, tl, reduction=reduction)[0] - ctc_loss(xm, tg, il, tl, reduction=reduction)[0]) / (2 * eps)
        assert abs(num - g[idx]) < 1e-7, (idx, num, g[idx])
    # padded frames get no gradient
    assert np.all(g[il[1]:, 1] == 0)


def test_ctc_none_reduction_gradient_is_of_the_sum():
    x, tg, il, tl = _batch(2)
    losses, g = ctc_loss(x, tg, il, tl, reduction="none")
    total, gs = ctc_loss(x, tg, il, tl, reduction="sum")
    assert losses.shape == (4,) and np.isclose(losses.sum(), total)
    np.testing.assert_allclose(g, gs)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ctc_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    x, tg, il, tl = _batch(3)
    loss, g = ctc_loss(x, tg, il, tl, blank=0, reduction=reduction)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.CTCLoss(blank=0, reduction=reduction)(
        xt.log_softmax(-1), torch.tensor(tg), torch.tensor(il), torch.tensor(tl))
    ref.backward()
    assert abs(loss - ref.item()) < 1e-10, "loss"
    np.testing.assert_allclose(g, xt.grad.numpy(), atol=1e-12, err_msg="dlogits")


def test_ctc_matches_torch_nonzero_blank_and_concatenated_targets():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(7, 2, 4))
    flat = np.array([0, 1, 1, 2, 0])
    tl = np.array([3, 2])
    loss, g = ctc_loss(x, flat, [7, 5], tl, blank=3, reduction="sum")
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.CTCLoss(blank=3, reduction="sum")(xt.log_softmax(-1), torch.tensor(flat),
                                                     torch.tensor([7, 5]), torch.tensor(tl))
    ref.backward()
    assert abs(loss - ref.item()) < 1e-10
    np.testing.assert_allclose(g, xt.grad.numpy(), atol=1e-12)


def test_ctc_brute_force_probability():
    """p(l|x) equals the sum over all frame paths that collapse to l."""
    rng = np.random.default_rng(5)
    T, C = 5, 3
    x = rng.normal(size=(T, 1, C))
    y = np.exp(x[:, 0] - x[:, 0].max(-1, keepdims=True))
    y /= y.sum(-1, keepdims=True)
    label = [1, 1]
    p = 0.0
    for path in itertools.product(range(C), repeat=T):
        if greedy_decode(np.eye(C)[list(path)]) == label:
            p += np.prod(y[np.arange(T), path])
    loss, _ = ctc_loss(x, [label], reduction="sum")
    assert np.isclose(loss, -np.log(p))


def test_ctc_too_short_input_raises():
    assert min_input_length([1, 1, 2]) == 4
    x = np.zeros((3, 1, 4))
    with pytest.raises(ValueError, match="needs at least 4"):
        ctc_loss(x, [[1, 1, 2]])
    with pytest.raises(ValueError, match="blank"):
        ctc_loss(np.zeros((5, 1, 4)), [[0, 1]])
    with pytest.raises(ValueError, match="reduction"):
        ctc_loss(np.zeros((5, 1, 4)), [[1]], reduction="avg")


def test_greedy_and_beam_decoding():
    # frames: a a _ a b b _  -> "a a b" after collapsing
    seq = [1, 1, 0, 1, 2, 2, 0]
    logp = np.log(np.full((7, 3), 0.05))
    logp[np.arange(7), seq] = np.log(0.9)
    assert greedy_decode(logp) == [1, 1, 2]
    assert prefix_beam_decode(logp, beam=4) == [1, 1, 2]


def test_prefix_beam_finds_most_probable_labelling():
    """With a wide beam, prefix search returns argmax_l p(l|x) (greedy may not)."""
    rng = np.random.default_rng(6)
    T, C = 4, 3
    found_diff = False
    for trial in range(30):
        x = rng.normal(size=(T, C)) * 1.5
        logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
        probs = {}
        for path in itertools.product(range(C), repeat=T):
            lab = tuple(greedy_decode(np.eye(C)[list(path)]))
            probs[lab] = probs.get(lab, 0.0) + np.exp(logp[np.arange(T), path].sum())
        best = max(probs, key=probs.get)
        assert tuple(prefix_beam_decode(logp, beam=50)) == best
        found_diff |= tuple(greedy_decode(logp)) != best
    assert found_diff  # the example is not trivial


def test_edit_distance_and_cer():
    assert edit_distance("kitten", "sitting") == 3
    assert cer(["123", "45"], ["124", "456"]) == pytest.approx(2 / 6)
