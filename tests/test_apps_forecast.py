"""Forecaster: direct and recursive forecasts, Gaussian intervals, backtest, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit.errors import UserError
from rnnkit.tasks.forecast import Forecaster, backtest, check_series


def sine(n=160, period=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 3 * np.sin(2 * np.pi * t / period) + 0.1 * rng.standard_normal(n)


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_backtest_beats_naive_on_a_seasonal_series(strategy):
    y = sine()
    f = Forecaster(lookback=12, horizon=6, strategy=strategy, hidden_size=16, epochs=40, lr=0.01)
    res = backtest(f, y, n_origins=4, season=12)
    m = res["metrics"]
    assert {"naive", "seasonal_naive", "rnnkit"} <= set(m) and len(res["origins"]) == 4
    assert m["rnnkit"]["mase"] < m["naive"]["mase"], m
    pred = f.predict()
    assert pred.shape == (6,)


def test_gaussian_interval_and_multivariate():
    y = np.stack([sine(), sine(seed=1) * 2], axis=1)  # (T, 2)
    f = rnnkit.Forecaster(lookback=12, horizon=4, interval=0.8, hidden_size=8, epochs=10,
                          validation_split=0.2, patience=3).fit(y[:120])
    mean, lo, hi = f.predict_interval()
    assert mean.shape == (4, 2) and np.all(lo < mean) and np.all(mean < hi)
    np.testing.assert_allclose(f.predict(), mean)
    # a later history gives a forecast from there
    assert f.predict(history=y[:140]).shape == (4, 2)
    r = Forecaster(lookback=6, horizon=3, strategy="recursive", interval=0.9, epochs=2).fit(y[:, 0])
    m, lo, hi = r.predict_interval(horizon=8)
    assert m.shape == (8,) and np.all(lo < hi)


def test_scaling_is_fitted_on_training_part_only():
    y = np.concatenate([np.zeros(50), np.full(50, 100.0)]) + np.arange(100) * 0.01
    f = Forecaster(lookback=5, horizon=2, epochs=1).fit(y[:50])
    assert f.mean_[0] == pytest.approx(y[:50].mean())


@pytest.mark.parametrize("kwargs,y,msg", [
    ({"horizon": 50}, np.arange(30.0), "not shorter than the series"),
    ({"lookback": 28, "horizon": 2}, np.arange(30.0), "too short for lookback"),
    ({}, np.array([1.0, np.nan, 3.0] * 20), r"missing or infinite values at rows \[1, 4, 7"),
    ({}, np.array(["a", "b"] * 20), "not numeric"),
    ({"interval": 1.5}, np.arange(40.0), "coverage"),
])
def test_bad_input(kwargs, y, msg):
    with pytest.raises(UserError, match=msg):
        Forecaster(epochs=1, lookback=kwargs.pop("lookback", 4), **kwargs).fit(y)


def test_predict_errors():
    f = Forecaster(lookback=4, horizon=2, epochs=1).fit(np.arange(40.0))
    with pytest.raises(UserError, match="trained for horizon 2"):
        f.predict(horizon=5)
    with pytest.raises(UserError, match="no interval head"):
        f.predict_interval()
    with pytest.raises(UserError, match="fewer than the 4 the lookback needs"):
        f.predict(history=np.arange(3.0))
    with pytest.raises(UserError, match="not fitted"):
        Forecaster().predict()
    assert check_series([1, 2, 3]).shape == (3, 1)


def test_save_and_load_round_trip(tmp_path):
    from rnnkit.tasks.classify import SequenceClassifier

    f = Forecaster(lookback=4, horizon=2, epochs=2, interval=0.8).fit(np.sin(np.arange(50.0)))
    f.save(tmp_path / "f")
    g = Forecaster.load(tmp_path / "f")
    np.testing.assert_allclose(f.predict_interval(), g.predict_interval())
    texts, y = ["good a", "bad b"] * 10, ["p", "n"] * 10
    c = SequenceClassifier(epochs=2).fit(texts, y)
    c.save(tmp_path / "c")
    d = SequenceClassifier.load(tmp_path / "c")
    np.testing.assert_allclose(c.predict_proba(texts), d.predict_proba(texts))
    with pytest.raises(UserError, match="does not hold a saved SequenceClassifier"):
        SequenceClassifier.load(tmp_path / "f")
