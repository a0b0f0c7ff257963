"""Float64 central finite differences (rnnkit.check_function, random upstream gradients) for the pooling
heads and the app losses."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit import check_function
from rnnkit.layers.heads import gaussian_nll, pool_backward, pool_forward, weighted_cross_entropy


@pytest.mark.parametrize("mode", ["last", "mean", "max", "concat", "max+mean", "mean+last"])
@pytest.mark.parametrize("nd", [1, 2])
def test_pooling_gradient_fd(mode, nd):
    rng = np.random.default_rng(0)
    lengths = np.array([5, 2, 3])
    inputs = {"out": rng.standard_normal((5, 3, 4))}
    cache = {}

    def forward(out):
        pooled, cache["c"] = pool_forward(out, lengths, mode, nd)
        return pooled

    def backward(up):
        forward(**inputs)
        return {"out": pool_backward(cache["c"], up)}

    report = check_function(forward, backward, inputs, seed=1)
    assert report.passed, str(report)
    pooled = forward(**inputs)
    k = 3 if mode == "concat" else mode.count("+") + 1          # poolings joined: widths add up
    assert pooled.shape == (3, k * 4)
    parts = ("last", "max", "mean") if mode == "concat" else tuple(mode.split("+"))
    for j, p in enumerate(parts):  # block j is that pooling on its own
        np.testing.assert_array_equal(pooled[:, 4 * j:4 * (j + 1)], pool_forward(inputs["out"], lengths, p, nd)[0])
    dout = backward(rng.standard_normal(pooled.shape))["out"]
    assert np.all(dout[2:, 1] == 0) and np.all(dout[3:, 2] == 0), "padded steps got gradient"


def test_pooling_values():
    out = np.arange(2 * 3 * 2, dtype=float).reshape(3, 2, 2)  # (T=3, B=2, F=2)
    lengths = np.array([3, 1])
    last, _ = pool_forward(out, lengths, "last", 2)
    # forward half from the last valid step, reverse half from t = 0
    np.testing.assert_array_equal(last, [[out[2, 0, 0], out[0, 0, 1]], [out[0, 1, 0], out[0, 1, 1]]])
    mean, _ = pool_forward(out, lengths, "mean")
    np.testing.assert_allclose(mean, [out[:, 0].mean(0), out[0, 1]])
    mx, _ = pool_forward(out, lengths, "max")
    np.testing.assert_array_equal(mx, [out[2, 0], out[0, 1]])
    with pytest.raises(ValueError, match="pooling"):
        pool_forward(out, lengths, "sum")


@pytest.mark.parametrize("weights", [None, [1.0, 3.0, 0.5]])
def test_weighted_cross_entropy_fd(weights):
    rng = np.random.default_rng(1)
    y = np.array([0, 1, 2, 1, 0, 2])
    inputs = {"z": rng.standard_normal((6, 3))}
    report = check_function(lambda z: np.array(weighted_cross_entropy(z, y, weights)[0]),
                            lambda up: {"z": up * weighted_cross_entropy(inputs["z"], y, weights)[1]}, inputs)
    assert report.passed, str(report)
    if weights is None:
        z = inputs["z"]
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        assert weighted_cross_entropy(z, y)[0] == pytest.approx(-np.mean(np.log(p[np.arange(6), y])))


def test_gaussian_nll_fd():
    rng = np.random.default_rng(2)
    mu, s, y = rng.standard_normal((3, 4, 2))
    inputs = {"mu": mu, "s": s}

    def backward(up):
        _, dmu, ds = gaussian_nll(inputs["mu"], inputs["s"], y)
        return {"mu": up * dmu, "s": up * ds}

    report = check_function(lambda mu, s: np.array(gaussian_nll(mu, s, y)[0]), backward, inputs)
    assert report.passed, str(report)
    ref = np.mean(0.5 * np.log(2 * np.pi * np.exp(2 * s)) + (y - mu) ** 2 / (2 * np.exp(2 * s)))
    assert gaussian_nll(mu, s, y)[0] == pytest.approx(ref)


def test_losses_match_torch_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    z, y, w = rng.standard_normal((6, 3)), np.array([0, 1, 2, 1, 0, 2]), np.array([1.0, 3.0, 0.5])
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y), weight=torch.tensor(w))
    ref.backward()
    loss, dz = weighted_cross_entropy(z, y, w)
    assert loss == pytest.approx(ref.item(), rel=1e-12), "weighted cross-entropy loss"
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg="d logits")
    mu, s, t = rng.standard_normal((3, 5, 2))
    mut, st = torch.tensor(mu, requires_grad=True), torch.tensor(s, requires_grad=True)
    ref = torch.nn.functional.gaussian_nll_loss(mut, torch.tensor(t), torch.exp(2 * st), full=True, eps=0.0)
    ref.backward()
    loss, dmu, ds = gaussian_nll(mu, s, t)
    assert loss == pytest.approx(ref.item(), rel=1e-12), "Gaussian NLL loss"
    np.testing.assert_allclose(dmu, mut.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg="d mu")
    np.testing.assert_allclose(ds, st.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg="d log sigma")
