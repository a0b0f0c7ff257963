"""Luong attention: float64 finite differences for every input and parameter, torch autograd parity."""
import numpy as np
import pytest

from rnnkit.gradcheck import check_function
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


@pytest.mark.parametrize("score", ["dot", "general"])
def test_attention_gradients_match_finite_differences(score):
    att, h, e, mask, _ = _setup(score)

    def forward(**_):
        return attention_forward(att.params, h, e, mask)[0]

    def backward(up):
        dh, de, grads = attention_backward(att.params, attention_forward(att.params, h, e, mask)[1], up)
        return {"h": dh, "e": de, **grads}

    report = check_function(forward, backward, {"h": h, "e": e, **att.params}, seed=3)
    assert report.passed and len(report.errors) == 2 + len(att.params), str(report)


def test_attention_module_masks_and_matches_the_functions():
    att, h, e, mask, do = _setup("general")
    o = att.forward(h, e, mask)
    dh, de = att.backward(do)
    ref_dh, ref_de, ref_g = attention_backward(att.params, attention_forward(att.params, h, e, mask)[1], do)
    np.testing.assert_array_equal(dh, ref_dh)
    np.testing.assert_array_equal(de, ref_de)
    for k in ref_g:
        np.testing.assert_array_equal(att.grads[k], ref_g[k])
    assert np.all(de[3:, 1] == 0)  # masked source steps get no gradient
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
