"""Float64 central finite differences for the pooling heads and the app losses (random upstream grads)."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.tasks.heads import gaussian_nll, pool_backward, pool_forward, weighted_cross_entropy


def numeric_grad(f, x, eps=1e-6):
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


def rel_err(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
@pytest.mark.parametrize("nd", [1, 2])
def test_pooling_gradient_fd(mode, nd):
    rng = np.random.default_rng(0)
    T, B, F = 5, 3, 4
    out = rng.standard_normal((T, B, F))
    lengths = np.array([5, 2, 3])
    up = rng.standard_normal((B, F))
    pooled, cache = pool_forward(out, lengths, mode, nd)
    dout = pool_backward(cache, up)
    num = numeric_grad(lambda: float((pool_forward(out, lengths, mode, nd)[0] * up).sum()), out)
    assert rel_err(dout, num) < 1e-7, f"pooling {mode} nd={nd}: d out"
    assert np.all(dout[4:, 1] == 0) and np.all(dout[3:, 2] == 0), "padded steps get gradient"


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
    z = rng.standard_normal((6, 3))
    y = np.array([0, 1, 2, 1, 0, 2])
    loss, dz = weighted_cross_entropy(z, y, weights)
    num = numeric_grad(lambda: weighted_cross_entropy(z, y, weights)[0], z)
    assert rel_err(dz, num) < 1e-7
    if weights is None:
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        assert loss == pytest.approx(-np.mean(np.log(p[np.arange(6), y])))


def test_gaussian_nll_fd():
    rng = np.random.default_rng(2)
    mu, s, y = rng.standard_normal((3, 4, 2))
    loss, dmu, ds = gaussian_nll(mu, s, y)
    assert rel_err(dmu, numeric_grad(lambda: gaussian_nll(mu, s, y)[0], mu)) < 1e-7
    assert rel_err(ds, numeric_grad(lambda: gaussian_nll(mu, s, y)[0], s)) < 1e-7
    ref = np.mean(0.5 * np.log(2 * np.pi * np.exp(2 * s)) + (y - mu) ** 2 / (2 * np.exp(2 * s)))
    assert loss == pytest.approx(ref)
