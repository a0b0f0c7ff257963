"""Seasonality of a series, estimated on its training part only: a test for it, seasonal indices, and the
reversible removal of the indices (the part of a forecast the network does not have to learn).

Seasonality test (the one the M4 competition's benchmarks use; Makridakis et al. 2020): with r_k the
lag-k autocorrelation of x_1..x_n,
    seasonal  <=>  |r_m| > 1.645 * sqrt((1 + 2 * sum_{k=1}^{m-1} r_k^2) / n)
(a one-sided 90% test of r_m against Bartlett's standard error), and n >= 3m so that three seasons are seen.

Seasonal indices by classical decomposition (additive; apply it to log x for a multiplicative season):
    trend_t = (1/m) * sum_{j=-(m-1)/2}^{(m-1)/2} x_{t+j}                                  (m odd)
    trend_t = (1/m) * (x_{t-m/2}/2 + sum_{j=-m/2+1}^{m/2-1} x_{t+j} + x_{t+m/2}/2)          (m even)
    s_k     = mean_{t: t mod m = k} (x_t - trend_t) - mean_k(mean ...)       (centred: sum_k s_k = 0)
over the t where the moving average is defined. The phase k of step t is t mod m, t counted from the
first value of the training series, so a later history must start where the training series started.
    deseasonalize:  d_t = x_t - s_{k(t)}          reseasonalize:  x_t = d_t + s_{k(t)}
A season whose true period P is not a whole number of steps (a year of weeks: P = 365.25/7 = 52.18)
keeps m = round(P) indices, but the phase of step t is the bin of t within the fractional period,
    k(t) = floor((t mod P) * m / P)        (= t mod m when P = m),
so that the indices do not drift by P - m steps a season (7 weeks over 38 years of weekly data).
"""
from __future__ import annotations

import numpy as np


def autocorrelations(x, max_lag: int) -> np.ndarray:
    """r_0..r_max_lag of a 1-D series (r_0 = 1; r_k = sum (x_t - xbar)(x_{t-k} - xbar) / sum (x_t - xbar)^2)."""
    x = np.asarray(x, dtype=np.float64)
    c = x - x.mean()
    den = float(c @ c)
    if den == 0.0:
        return np.r_[1.0, np.zeros(max_lag)]
    return np.array([1.0] + [float(c[k:] @ c[:-k]) / den for k in range(1, max_lag + 1)])


def seasonality_test(x, m: int) -> tuple[bool, float, float]:
    """(seasonal, |r_m|, threshold) by the test above on a 1-D series; (False, 0, inf) when m < 2 or n < 3m."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if m < 2 or n < 3 * m:
        return False, 0.0, float("inf")
    r = autocorrelations(x, m)
    limit = 1.645 * float(np.sqrt((1.0 + 2.0 * np.sum(r[1:m] ** 2)) / n))
    return bool(abs(r[m]) > limit), float(abs(r[m])), limit


def moving_average_trend(x, m: int) -> tuple[np.ndarray, int]:
    """(trend over the defined steps, offset of its first step) for a (T,) or (T, D) series."""
    x = np.asarray(x, dtype=np.float64)
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    off = (len(w) - 1) // 2
    cols = x.reshape(len(x), -1)
    trend = np.stack([np.convolve(cols[:, j], w, mode="valid") for j in range(cols.shape[1])], axis=1)
    return trend.reshape((len(trend),) + x.shape[1:]), off


def phase(t, m: int, period: float | None = None) -> np.ndarray:
    """k(t) = floor((t mod P) * m / P) for the steps t (P = period, default m: then k = t mod m)."""
    t = np.asarray(t)
    if period is None or float(period) == m:
        return t % m
    return np.minimum(np.floor((t % float(period)) * m / float(period)).astype(np.int64), m - 1)


def seasonal_indices(x, m: int, period: float | None = None) -> np.ndarray:
    """s (m,) or (m, D): the centred mean detrended value at each phase (classical decomposition)."""
    x = np.asarray(x, dtype=np.float64)
    trend, off = moving_average_trend(x, m)
    if len(trend) < m:
        raise ValueError(f"seasonal_indices needs at least {2 * m} values for season {m}, got {len(x)}")
    detrended = x[off:off + len(trend)] - trend
    k = phase(np.arange(off, off + len(trend)), m, period)
    s = np.stack([detrended[k == j].mean(axis=0) for j in range(m)])
    return s - s.mean(axis=0)


def deseasonalize(x, s, start: int = 0, period: float | None = None) -> np.ndarray:
    """d_t = x_t - s_{k(start + t)} for a (T,) or (T, D) x and s (m,) or (m, D)."""
    x = np.asarray(x, dtype=np.float64)
    return x - s[phase(start + np.arange(len(x)), len(s), period)]


def reseasonalize(d, s, start: int = 0, period: float | None = None) -> np.ndarray:
    """x_t = d_t + s_{k(start + t)}: the inverse of `deseasonalize` with the same start and period."""
    d = np.asarray(d, dtype=np.float64)
    return d + s[phase(start + np.arange(len(d)), len(s), period)]
