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


# -- the season from the time column, gaps, the statistical steps, Holt-Winters -------------------------
import datetime as dt  # noqa: E402
import json  # noqa: E402

from rnnkit.data import bundled  # noqa: E402
from rnnkit.data.timeindex import infer_calendar, parse_time, regularize  # noqa: E402
from rnnkit.tasks import seasonal  # noqa: E402


def _stamps(start: dt.datetime, n: int, days: float = 0, months: int = 0, fmt: str = "%Y-%m-%d"):
    out = []
    for k in range(n):
        if months:
            mm = start.month - 1 + k * months
            out.append(start.replace(year=start.year + mm // 12, month=mm % 12 + 1).strftime(fmt))
        else:
            out.append((start + dt.timedelta(days=k * days)).strftime(fmt))
    return out


@pytest.mark.parametrize("stamps,name,season", [
    (_stamps(dt.datetime(2020, 1, 1), 50, days=1 / 24, fmt="%Y-%m-%d %H:%M"), "hourly", 24),
    (_stamps(dt.datetime(2020, 1, 1), 50, days=1), "daily", 7),
    (_stamps(dt.datetime(1958, 3, 29), 50, days=7, fmt="%Y%m%d"), "weekly", 52),
    (_stamps(dt.datetime(1949, 1, 1), 50, months=1, fmt="%Y-%m"), "monthly", 12),
    (_stamps(dt.datetime(1995, 1, 1), 50, months=1, fmt="%b-%d-%Y"), "monthly", 12),
    ([f"{1990 + k // 4}Q{k % 4 + 1}" for k in range(50)], "quarterly", 4),
    (_stamps(dt.datetime(2001, 1, 1), 50, months=3), "quarterly", 4),
    ([str(1700 + k) for k in range(50)], "yearly", 1),
])
def test_season_inferred_from_the_time_column(stamps, name, season):
    cal, note = infer_calendar(stamps)
    assert note == "" and (cal.name, cal.season, cal.n_missing) == (name, season, 0)
    gappy = stamps[:10] + stamps[12:]                      # two dates missing
    cal, _ = infer_calendar(gappy)
    assert cal.n_missing == 2 and parse_time(cal.stamp(10)) == parse_time(stamps[10])
    full, filled_stamps = regularize(np.arange(48.0), cal, gappy)
    assert full.shape == (50,) and np.isnan(full[10:12]).all() and full[12] == 10.0 and len(filled_stamps) == 50


@pytest.mark.parametrize("stamps,why", [
    (["a", "b", "c"], "is not a date"),
    (_stamps(dt.datetime(2020, 1, 1), 20, days=3), "3 days apart"),
    (["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-03 12:00", "2020-01-05", "2020-01-06", "2020-01-07"],
     "row 5: time stamp '2020-01-03 12:00' is off the daily calendar"),
])
def test_irregular_or_unreadable_times_give_a_note(stamps, why):
    cal, note = infer_calendar(stamps)
    assert cal is None and why in note


def test_repeated_or_unsorted_times_are_refused():
    with pytest.raises(UserError, match="row 4: time stamp '2020-01-02' .* repeats"):
        infer_calendar(["2020-01-01", "2020-01-02", "2020-01-02"])
    with pytest.raises(UserError, match="earlier than the one before"):
        infer_calendar(["2020-01-03", "2020-01-02", "2020-01-04"])


def test_seasonal_indices_recover_the_season_and_invert():
    m, t = 12, np.arange(120)
    s = np.sin(2 * np.pi * np.arange(m) / m) * 5 + np.r_[np.zeros(11), 3.0]
    s -= s.mean()
    y = 100 + 0.3 * t + s[t % m]
    np.testing.assert_allclose(seasonal.seasonal_indices(y, m), s, atol=1e-9)
    d = seasonal.deseasonalize(y, s)
    np.testing.assert_allclose(np.diff(d), 0.3, atol=1e-9)       # what is left is the trend
    np.testing.assert_allclose(seasonal.reseasonalize(d, s), y)
    odd = seasonal.seasonal_indices(7 - 0.2 * t[:99] + np.tile([1.0, -2.0, 1.0], 33), 3)
    np.testing.assert_allclose(odd, [1.0, -2.0, 1.0], atol=1e-9)   # an odd season: the plain moving average
    assert seasonal.seasonality_test(y, m)[0] and not seasonal.seasonality_test(
        np.random.default_rng(0).standard_normal(200), m)[0]


@pytest.mark.parametrize("transform", ["none", "log"])
def test_forecast_of_pure_trend_and_season_is_nearly_exact(transform):
    m, t = 12, np.arange(120)
    pattern = np.sin(2 * np.pi * np.arange(m) / m) + 0.5 * np.cos(4 * np.pi * np.arange(m) / m)
    y = 50 + 0.4 * t + 5 * pattern[t % m]
    if transform == "log":                                       # a season that grows with the level
        y = np.exp(3 + 0.01 * t + 0.1 * pattern[t % m])
    f = Forecaster(horizon=12, lookback=None, season=12, transform=transform, difference=True,
                   strategy="recursive", hidden_size=8, epochs=60, lr=0.01).fit(y[:108])
    assert f.deseasonalized_ and f.transform_ == transform and f.lookback_ == 24
    amplitude = np.ptp(y[96:108])
    assert np.max(np.abs(f.predict() - y[108:])) < 0.02 * amplitude


def test_auto_choices_are_made_on_the_training_part():
    m, t = 12, np.arange(144)
    rng = np.random.default_rng(0)
    y = 100 + 1.5 * t + 10 * np.sin(2 * np.pi * t / m) + rng.standard_normal(144)
    f = Forecaster(horizon=12, lookback=None, season=12, transform="auto", difference="auto", strategy="recursive",
                   hidden_size=8, epochs=20, n_models=2).fit(y)
    c = f.choice_
    assert c["validation_origins"] == [108, 120, 132] and set(c["validation_mae"]) == set(c["candidates"])
    assert len(c["candidates"]) == 4 and c["chosen"] == min(c["validation_mae"], key=c["validation_mae"].get)
    assert c["difference"] is True                               # a trend leaving the training range
    assert len(f.members_) == 1 and f.predict().shape == (12,)


def test_ensemble_and_choices_survive_save_and_load(tmp_path):
    y = 10 + np.sin(np.arange(100) * 2 * np.pi / 7) + 0.01 * np.arange(100)
    f = Forecaster(horizon=3, lookback=None, season=7, transform="log", difference=True, n_models=3, epochs=3,
                   interval=0.8).fit(y)
    f.save(tmp_path / "f")
    g = Forecaster.load(tmp_path / "f")
    assert len(g.members_) == 2 and g.transform_ == "log" and g.deseasonalized_
    np.testing.assert_allclose(f.predict_interval(), g.predict_interval())
    mean, lo, hi = g.predict_interval()
    assert np.all(lo < mean) and np.all(mean < hi)


def test_holt_winters_baseline_in_backtest():
    pytest.importorskip("statsmodels")
    y = sine(n=120) + 0.05 * np.arange(120)
    res = backtest(Forecaster(lookback=None, horizon=6, season=12, epochs=3, strategy="recursive"), y,
                   n_origins=3)
    assert "holt_winters" in res["metrics"] and res["holt_winters"].startswith("additive trend, ")
    assert res["holt_winters"].endswith("season (m=12)")
    assert res["metrics"]["holt_winters"]["mase"] < res["metrics"]["naive"]["mase"]
    assert "holt_winters" not in backtest(Forecaster(lookback=8, horizon=6, epochs=1), y, n_origins=3,
                                          holt_winters=False)["metrics"]


def _monthly_csv(path, n=96, drop=(30, 31), blank=(50,)):
    t = np.arange(n)
    y = 100 + 0.5 * t + 8 * np.sin(2 * np.pi * t / 12)
    rows = [f"{1990 + k // 12}-{k % 12 + 1:02d},{'' if k in blank else f'{y[k]:.3f}'}" for k in t if k not in drop]
    path.write_text("month,sales\n" + "\n".join(rows) + "\n")


def test_cli_infers_the_season_and_fills_missing_dates(tmp_path, capsys):
    from rnnkit.cli import main

    _monthly_csv(tmp_path / "m.csv")
    out = tmp_path / "run"
    assert main(["forecast", "train", str(tmp_path / "m.csv"), "--column", "sales", "--time-col", "month",
                 "--horizon", "6", "--origins", "2", "--fill", "linear", "--out", str(out), "--epochs", "3",
                 "--hidden", "4", "--models", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "season 12 (monthly time stamps in column 'month'); 2 missing monthly dates inserted and filled" in printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 96 and m["season"] == 12 and m["models"] == 2
    if "holt_winters" in m["backtest"]:
        assert "Holt-Winters" in printed
    # no time column: season 1, said so; --dropout reaches the network (between its two layers)
    assert main(["forecast", "train", str(tmp_path / "m.csv"), "--column", "sales", "--horizon", "3",
                 "--fill", "ffill", "--out", str(tmp_path / "r2"), "--epochs", "1", "--hidden", "4",
                 "--models", "1", "--layers", "2", "--dropout", "0.25", "--no-progress"]) == 0
    assert "season 1 (no --time-col; pass --season" in capsys.readouterr().out
    assert Forecaster.load(tmp_path / "r2" / "model").dropout == 0.25
    # time stamps that are not dates: season 1 and the reason, the first unreadable stamp named
    (tmp_path / "t.csv").write_text("t,v\n" + "".join(f"week {k},{np.sin(k)}\n" for k in range(40)))
    assert main(["forecast", "train", str(tmp_path / "t.csv"), "--column", "v", "--time-col", "t", "--horizon", "2",
                 "--out", str(tmp_path / "r3"), "--epochs", "1", "--hidden", "4", "--models", "1",
                 "--no-progress"]) == 0
    assert "season 1 (row 2: 'week 0' in column 't' is not a date I can read; pass --season" in capsys.readouterr().out


def test_cli_bad_time_input_is_one_line(tmp_path, capsys):
    from rnnkit.cli import main

    _monthly_csv(tmp_path / "m.csv", blank=())
    (tmp_path / "dup.csv").write_text("d,v\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n" +
                                      "".join(f"2020-02-{k:02d},{k}\n" for k in range(1, 20)))
    (tmp_path / "neg.csv").write_text("v\n" + "\n".join(str(np.sin(k)) for k in range(40)) + "\n")
    cases = {
        "missing dates without --fill": (["m.csv", "--column", "sales", "--time-col", "month", "--horizon", "3"],
                                         "2 dates are missing from the monthly calendar of column 'month' "
                                         "(the first: 1992-07); pass --fill"),
        "a repeated time stamp": (["dup.csv", "--column", "v", "--time-col", "d", "--horizon", "2"],
                                  "row 4: time stamp '2020-01-02' in column 'd' repeats the one before"),
        "log of a series with negative values": (["neg.csv", "--column", "v", "--horizon", "2", "--transform",
                                                  "log"], "transform 'log' needs a positive series"),
    }
    for what, (argv, msg) in cases.items():
        code = main(["forecast", "train", str(tmp_path / argv[0]), *argv[1:], "--out", str(tmp_path / "o"),
                     "--epochs", "1", "--hidden", "4", "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("rnnkit: error:"), f"{what}: {err!r}"
        assert msg in err, f"{what}: {err!r}"


def test_real_co2_weekly_and_monthly_with_gaps():
    if bundled.package_dir("statsmodels") is None:
        pytest.skip("statsmodels not installed (it ships the co2 file)")
    times, y = bundled.load_series_with_times("co2")
    cal, _ = infer_calendar(times)
    assert (cal.name, cal.season, cal.n_missing, int(np.isnan(y).sum()), len(y)) == ("weekly", 52, 0, 59, 2284)
    assert cal.period == pytest.approx(52.18, abs=0.01)
    mt, my = bundled.co2_monthly()
    cal, _ = infer_calendar(mt)
    assert (cal.name, cal.season, cal.n_missing, len(my)) == ("monthly", 12, 5, 521)
    full, _ = regularize(my, cal, mt)
    assert np.isnan(full).sum() == 5 and seasonal.seasonality_test(np.nan_to_num(full, nan=np.nanmean(full)), 12)[0]


def test_a_season_of_a_fractional_number_of_steps_does_not_drift():
    period, t = 365.25 / 7, np.arange(52 * 30)               # 30 years of weeks
    y = 3 * np.sin(2 * np.pi * t / period) + 0.01 * t
    assert seasonal.phase(t[:60], 52).tolist() == (t[:60] % 52).tolist()
    left = {p: seasonal.deseasonalize(y, seasonal.seasonal_indices(y, 52, p), period=p) - 0.01 * t
            for p in (None, period)}
    assert np.std(left[period]) < 0.1 < np.std(left[None])   # 52 whole weeks slide 5 weeks over the 30 years
    np.testing.assert_allclose(seasonal.reseasonalize(seasonal.deseasonalize(y, np.arange(52.0), 3, period),
                                                      np.arange(52.0), 3, period), y)


@pytest.mark.slow
def test_default_command_beats_both_baselines_on_co2_monthly(tmp_path):
    """The goal on a real monthly series with missing dates (measured: 0.375 vs Holt-Winters 0.441 and
    seasonal-naive 1.319; docs/readme/apps.md): the default command, about a minute on 2 cores."""
    pytest.importorskip("statsmodels")
    from rnnkit.cli import main

    times, y = bundled.co2_monthly()
    (tmp_path / "co2m.csv").write_text("month,co2\n" + "".join(f"{t},{v!r}\n" for t, v in zip(times, y.tolist())))
    assert main(["forecast", "train", str(tmp_path / "co2m.csv"), "--column", "co2", "--time-col", "month",
                 "--horizon", "12", "--fill", "linear", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())["backtest"]
    assert m["rnnkit"]["mase"] < min(m["seasonal_naive"]["mase"], m["holt_winters"]["mase"]), m
