"""Luong attention: float64 finite differences for every input and parameter, torch autograd parity."""
import numpy as np
import pytest

from rnnkit.layers.attention import Attention, attention_backward, attention_forward, source_mask


def _setup(score, seed=0):
    rng = np.random.default_rng(seed)
    T, S, B, H = 3, 5, 2, 4
    E = H if score == "dot" else 6
    att = Attention(H, E, score=score, dtype=np.float64, seed=seed)
    h = rng.normal(size=(T, B, H))
    e = rng.normal(size=(S, B, E))
    mask = source_mask([5, 3], S)
    do = rng.normal(size=(T, B, H))
    return att, h, e, mask, do


def _fd(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("score", ["dot", "general"])
def test_attention_gradients_match_finite_differences(score):
    att, h, e, mask, do = _setup(score)
    o = att.forward(h, e, mask)
    dh, de = att.backward(do)

    def f():
        return float(np.sum(attention_forward(att.params, h, e, mask)[0] * do))

    np.testing.assert_allclose(dh, _fd(f, h), atol=1e-8, err_msg="dh")
    np.testing.assert_allclose(de, _fd(f, e), atol=1e-8, err_msg="de")
    assert np.all(de[3:, 1] == 0)  # masked source steps get no gradient
    for name, p in att.params.items():
        np.testing.assert_allclose(att.grads[name], _fd(f, p), atol=1e-8, err_msg=name)
    assert np.allclose(att.weights.sum(-1), 1) and np.all(att.weights[1, :, 3:] == 0)
    assert o.shape == h.shape


@pytest.mark.parametrize("score", ["dot", "general"])
def test_attention_matches_torch(score):
    torch = pytest.importorskip("torch")
    att, h, e, mask, do = _setup(score, seed=1)
    o = att.forward(h, e, mask)
    dh, de = att.backward(do)
    th, te = torch.tensor(h, requires_grad=True), torch.tensor(e, requires_grad=True)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in att.params.items()}
    k = te @ P["weight_score"].T if score == "general" else te
    sc = torch.einsum("tbh,sbh->bts", th, k).masked_fill(~torch.tensor(mask.T)[:, None, :], float("-inf"))
    a = sc.softmax(-1)
    c = torch.einsum("bts,sbe->tbe", a, te)
    to = torch.tanh(torch.cat([c, th], -1) @ P["weight_combine"].T)
    (to * torch.tensor(do)).sum().backward()
    np.testing.assert_allclose(o, to.detach().numpy(), atol=1e-12, err_msg="o")
    np.testing.assert_allclose(dh, th.grad.numpy(), atol=1e-12, err_msg="dh")
    np.testing.assert_allclose(de, te.grad.numpy(), atol=1e-12, err_msg="de")
    for n in P:
        np.testing.assert_allclose(att.grads[n], P[n].grad.numpy(), atol=1e-12, err_msg=n)


def test_attention_bad_config():
    with pytest.raises(ValueError, match="dot"):
        Attention(4, 6, score="dot")
    with pytest.raises(ValueError, match="score"):
        Attention(4, 4, score="concat")
