"""Evaluation for classification and forecasting: metrics, naive baselines, rolling-origin backtest.

Classification: accuracy, macro-F1 (unweighted mean of per-class F1; a class never predicted and never
present is left out, one present but never predicted scores 0), confusion matrix (rows true, columns
predicted).

Forecasting (Hyndman & Koehler 2006, "Another look at measures of forecast accuracy"):
    RMSE = sqrt(mean((y - yhat)^2)),   MAE = mean(|y - yhat|)
    MASE = MAE / mean_{t>m}(|y_t - y_{t-m}|) over the *training* part, m the season (1 if none).
Baselines: naive repeats the last value; seasonal-naive repeats the last season, yhat_{n+h} = y_{n+h-m*k}
with k = ceil(h/m). The backtest evaluates every method on the same origins.

Holt-Winters (statsmodels' `ExponentialSmoothing`, when installed): additive trend, and for m > 1 an
additive or multiplicative season (multiplicative is tried only for a positive series; the lower AICc on
the training part wins). Its smoothing weights and initial states are fitted once on the training part;
at each origin the same model is run over the history up to the origin and forecasts from there, as the
network does with its fixed weights.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


# -- classification -------------------------------------------------------------------------------
def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def confusion_matrix(y_true, y_pred, labels=None) -> tuple[np.ndarray, list]:
    """(C, C) counts with rows the true class and columns the predicted class, and the label order."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if labels is None:
        labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    index = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        cm[index[t], index[p]] += 1
    return cm, list(labels)


def macro_f1(y_true, y_pred, labels=None) -> float:
    cm, _ = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else float("nan")


def classification_report(y_true, y_pred, labels=None) -> dict:
    """JSON-ready dict: accuracy, macro_f1, confusion_matrix, labels, n."""
    cm, labels = confusion_matrix(y_true, y_pred, labels)
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, labels),
            "labels": [str(x) for x in labels], "confusion_matrix": cm.tolist(), "n": int(len(y_true))}


# -- forecasting ----------------------------------------------------------------------------------
def rmse(y, yhat) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(yhat)) ** 2)))


def mae(y, yhat) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))))


def mase_scale(train, season: int = 1) -> float:
    """mean |y_t - y_{t-m}| over the training series (m = season); the MASE denominator."""
    train = np.asarray(train, dtype=np.float64)
    m = max(int(season), 1)
    if train.shape[0] <= m:
        m = 1
    d = np.abs(train[m:] - train[:-m])
    scale = float(np.mean(d)) if d.size else float("nan")
    return scale if scale > 0 else float("nan")


def mase(y, yhat, train, season: int = 1) -> float:
    return mae(y, yhat) / mase_scale(train, season)


def naive_forecast(history, horizon: int) -> np.ndarray:
    """Repeat the last observation: (horizon, ...) from history (T, ...)."""
    history = np.asarray(history)
    return np.repeat(history[-1:], horizon, axis=0)


def seasonal_naive_forecast(history, horizon: int, season: int) -> np.ndarray:
    """yhat_{n+h} = y_{n+h-m*ceil(h/m)}: repeat the last full season (naive if it is shorter)."""
    history = np.asarray(history)
    m = int(season)
    if m <= 1 or history.shape[0] < m:
        return naive_forecast(history, horizon)
    last = history[-m:]
    reps = -(-horizon // m)
    return np.concatenate([last] * reps, axis=0)[:horizon]


def holt_winters(train, season: int = 1):
    """A `f(history, horizon) -> (horizon,)` Holt-Winters forecaster fitted on the 1-D `train` (see above),
    and a description of the model chosen. Needs statsmodels (an ImportError otherwise)."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    train = np.asarray(train, dtype=np.float64).reshape(-1)
    m = int(season) if int(season) > 1 and len(train) >= 2 * int(season) + 2 else 0
    kinds = [None] if not m else (["add", "mul"] if train.min() > 0 else ["add"])
    best = None
    with warnings.catch_warnings():  # convergence notes from the optimiser are not the user's problem
        warnings.simplefilter("ignore")
        for kind in kinds:
            fit = ExponentialSmoothing(train, trend="add", seasonal=kind, seasonal_periods=m if kind else None,
                                       initialization_method="estimated").fit()
            if best is None or fit.aicc < best[1].aicc:
                best = (kind, fit)
    kind, fit = best
    p = fit.params

    def forecast(history, horizon):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(
                np.asarray(history, dtype=np.float64).reshape(len(history), -1)[:, 0], trend="add",
                seasonal=kind, seasonal_periods=m if kind else None, initialization_method="known",
                initial_level=p["initial_level"], initial_trend=p["initial_trend"],
                initial_seasonal=p["initial_seasons"] if kind else None)
            run = model.fit(smoothing_level=p["smoothing_level"], smoothing_trend=p["smoothing_trend"],
                            smoothing_seasonal=p["smoothing_seasonal"] if kind else None, optimized=False)
        return np.asarray(run.forecast(int(horizon)), dtype=np.float64)

    season_name = {"add": "additive season", "mul": "multiplicative season", None: "no season"}[kind]
    return forecast, f"additive trend, {season_name}" + (f" (m={m})" if kind else "")


def backtest_origins(n: int, horizon: int, n_origins: int, step: int | None = None) -> list[int]:
    """Origins o (forecast y[o:o+horizon] from y[:o]) ending at n - horizon, `step` apart (default
    horizon, i.e. non-overlapping test windows)."""
    step = horizon if step is None else step
    first = n - horizon - (n_origins - 1) * step
    return [o for o in range(first, n - horizon + 1, step) if o > 0]


def rolling_origin_backtest(series, horizon: int, origins: list[int], season: int = 1,
                            methods: dict[str, Callable] | None = None, train_end: int | None = None,
                            target: int = 0) -> dict:
    """Evaluate each method `f(history, horizon) -> (horizon, ...)` at every origin, plus naive and
    seasonal-naive, on column `target` of a (T,) or (T, D) series. MASE uses y[:train_end] (default the
    first origin) as its training part. Returns {method: {"rmse", "mae", "mase"}}.
    """
    y = np.asarray(series, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    train_end = origins[0] if train_end is None else train_end
    scale = mase_scale(y[:train_end, target], season)
    all_methods = {"naive": lambda h, H: naive_forecast(h, H),
                   "seasonal_naive": lambda h, H: seasonal_naive_forecast(h, H, season)}
    all_methods.update(methods or {})
    out = {}
    for name, f in all_methods.items():
        err = []
        for o in origins:
            pred = np.asarray(f(y[:o], horizon))
            pred = pred[:, target] if pred.ndim == 2 else pred
            err.append(y[o:o + horizon, target] - pred)
        e = np.concatenate(err)
        out[name] = {"rmse": float(np.sqrt(np.mean(e ** 2))), "mae": float(np.mean(np.abs(e))),
                     "mase": float(np.mean(np.abs(e)) / scale)}
    return out
