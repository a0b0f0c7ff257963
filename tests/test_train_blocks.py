"""Embedding, Linear and the losses: float64 finite differences with random upstream gradients, torch parity."""
import numpy as np
import pytest

from rnnkit.gradcheck import numeric_gradient as num_grad
from rnnkit.layers import Embedding, Linear
from rnnkit.losses import (binary_cross_entropy_with_logits, lengths_mask, mse, softmax_cross_entropy)


def assert_close(a, b, name, tol=1e-7):
    err = np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))
    assert err < tol, f"{name}: relative error {err:.2e}"


def test_linear_fd_any_rank():
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, seed=1).astype(np.float64)
    x = rng.standard_normal((5, 2, 4))
    up = rng.standard_normal((5, 2, 3))
    f = lambda: float(np.sum(lin.forward(x) * up))
    lin.forward(x)
    dx = lin.backward(up)
    assert_close(dx, num_grad(f, x), "dx")
    for k in ("weight", "bias"):
        lin.forward(x)
        lin.backward(up)
        assert_close(lin.grads[k], num_grad(f, lin.params[k]), k)


def test_embedding_fd_repeated_ids():
    rng = np.random.default_rng(0)
    emb = Embedding(6, 3, seed=0).astype(np.float64)
    ids = np.array([[0, 2, 2], [5, 0, 2]])
    up = rng.standard_normal((2, 3, 3))
    f = lambda: float(np.sum(emb.forward(ids) * up))
    emb.forward(ids)
    assert emb.backward(up) is None
    assert_close(emb.grads["weight"], num_grad(f, emb.params["weight"]), "weight")


def test_embedding_gradient_matches_a_scatter_add():
    """The sort-and-reduceat gradient against np.add.at (float64): many repeated ids, some ids absent,
    a 3-D id array; and no ids at all gives zeros."""
    rng = np.random.default_rng(3)
    emb = Embedding(50, 4, seed=0).astype(np.float64)
    ids = rng.integers(0, 40, (30, 7, 5))               # ids 40..49 never occur
    up = rng.standard_normal((30, 7, 5, 4))
    emb.forward(ids)
    emb.backward(up)
    ref = np.zeros((50, 4))
    np.add.at(ref, ids.reshape(-1), up.reshape(-1, 4))
    np.testing.assert_allclose(emb.grads["weight"], ref, rtol=0, atol=1e-12)
    assert not emb.grads["weight"][40:].any()
    emb.forward(np.zeros((0, 3), dtype=np.int64))
    emb.backward(np.zeros((0, 3, 4)))
    assert emb.grads["weight"].shape == (50, 4) and not emb.grads["weight"].any()


def test_layers_bad_input():
    with pytest.raises(ValueError, match="last axis"):
        Linear(4, 3).forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        Embedding(6, 2).forward(np.array([6]))
    with pytest.raises(TypeError):
        Embedding(6, 2).forward(np.array([0.5]))


@pytest.mark.parametrize("masked", [False, True])
def test_cross_entropy_fd(masked):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 3, 5))
    y = rng.integers(0, 5, (4, 3))
    mask = lengths_mask([4, 2, 1], 4) if masked else None
    loss, dz = softmax_cross_entropy(z, y, mask)
    assert_close(dz, num_grad(lambda: softmax_cross_entropy(z, y, mask)[0], z), "dlogits")
    if masked:  # masked items contribute nothing
        assert np.all(dz[~mask] == 0)


def test_cross_entropy_stable_and_last_step():
    z = np.array([[1000.0, 0.0, -1000.0]])
    loss, dz = softmax_cross_entropy(z, np.array([1]))
    assert np.isfinite(loss) and abs(loss - 1000.0) < 1e-9 and np.all(np.isfinite(dz))
    # last step only = caller slicing
    z = np.random.default_rng(0).standard_normal((3, 2, 4))
    y = np.array([1, 3])
    loss, dz = softmax_cross_entropy(z[-1], y)
    assert dz.shape == (2, 4)


def test_mse_bce_fd():
    rng = np.random.default_rng(2)
    p, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    mask = rng.random((3, 4)) > 0.3
    for m in (None, mask):
        _, d = mse(p, t, m)
        assert_close(d, num_grad(lambda: mse(p, t, m)[0], p), "mse")
        tb = rng.random((3, 4))
        _, d = binary_cross_entropy_with_logits(p, tb, m)
        assert_close(d, num_grad(lambda: binary_cross_entropy_with_logits(p, tb, m)[0], p), "bce")
    loss, d = binary_cross_entropy_with_logits(np.array([800.0, -800.0]), np.array([1.0, 0.0]))
    assert np.isfinite(loss) and loss < 1e-12


def test_losses_bad_input():
    with pytest.raises(ValueError, match="targets of shape"):
        softmax_cross_entropy(np.zeros((2, 3)), np.zeros(3, int))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="no items"):
        mse(np.zeros(2), np.zeros(2), np.zeros(2, bool))


def test_torch_parity_losses_and_layers():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 5))
    y = rng.integers(0, 5, 6)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    lt.backward()
    loss, dz = softmax_cross_entropy(z, y)
    assert abs(loss - lt.item()) < 1e-12 and np.allclose(dz, zt.grad.numpy(), atol=1e-14)
    t = rng.random((6, 5))
    zt.grad = None
    lt = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(t))
    lt.backward()
    loss, dz = binary_cross_entropy_with_logits(z, t)
    assert abs(loss - lt.item()) < 1e-12 and np.allclose(dz, zt.grad.numpy(), atol=1e-14)
    zt.grad = None
    lt = torch.nn.functional.mse_loss(zt, torch.tensor(t))
    lt.backward()
    loss, dz = mse(z, t)
    assert abs(loss - lt.item()) < 1e-12 and np.allclose(dz, zt.grad.numpy(), atol=1e-14)
    # Linear and Embedding with copied weights
    lin = Linear(5, 3).astype(np.float64)
    tl = torch.nn.Linear(5, 3).double()
    tl.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    x = rng.standard_normal((2, 4, 5))
    xt = torch.tensor(x, requires_grad=True)
    up = rng.standard_normal((2, 4, 3))
    (tl(xt) * torch.tensor(up)).sum().backward()
    assert np.allclose(lin.forward(x), tl(xt).detach().numpy(), atol=1e-13)
    dx = lin.backward(up)
    assert np.allclose(dx, xt.grad.numpy(), atol=1e-13)
    for k, p in tl.named_parameters():
        assert np.allclose(lin.grads[k], p.grad.numpy(), atol=1e-12), k
    emb = Embedding(7, 3).astype(np.float64)
    te = torch.nn.Embedding(7, 3).double()
    te.load_state_dict({"weight": torch.tensor(emb.params["weight"])})
    ids = rng.integers(0, 7, (4, 2))
    up = rng.standard_normal((4, 2, 3))
    (te(torch.tensor(ids)) * torch.tensor(up)).sum().backward()
    emb.forward(ids)
    emb.backward(up)
    assert np.allclose(emb.grads["weight"], te.weight.grad.numpy(), atol=1e-13)
