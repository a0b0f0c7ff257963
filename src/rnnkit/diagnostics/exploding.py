"""Exploding gradients: spotting them in a log of gradient norms and choosing a clipping threshold.

The trainer records the global gradient norm *before* clipping at every step. An explosion is a step
whose norm is not finite, or exceeds `factor` times the median of the last `window` finite norms (a
sudden jump of an order of magnitude over the recent typical norm; the trailing window lets the
typical norm drift as training progresses without every later step counting as a spike; Pascanu, Mikolov & Bengio 2013 show such cliffs in the loss surface of RNNs).

Suggested clipping threshold (the rule): the `percentile`-th percentile (default 95th) of the norms of
the *healthy phase*, i.e. all steps before the first explosion (all steps if there is none). Clipping at
a high percentile of healthy norms leaves ordinary updates untouched and caps only the rare spikes;
Pascanu et al. recommend a threshold around the average norm over many updates, which this is close to
when norms are stable.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ExplosionReport:
    """steps: indices of exploding steps; first: the first of them (None if none); n_nonfinite:
    steps whose norm was NaN or inf; healthy_steps: number of steps before `first`;
    suggested_clip: the rule's threshold (None when there is no finite healthy norm)."""
    steps: list
    first: int | None
    n_nonfinite: int
    healthy_steps: int
    suggested_clip: float | None
    percentile: float
    factor: float
    median_healthy: float | None


def detect_explosions(norms, factor: float = 10.0, warmup: int = 5, window: int = 100) -> list[int]:
    """Indices t where norms[t] is non-finite or > factor * the median of the last `window` finite
    norms before t (checked once `warmup` finite norms have been seen)."""
    g = np.asarray(norms, dtype=np.float64)
    if g.ndim != 1:
        raise ValueError(f"norms must be a 1-D sequence of gradient norms, got shape {g.shape}")
    if factor <= 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    out = []
    finite_seen = []
    for t, v in enumerate(g):
        if not np.isfinite(v):
            out.append(t)
            continue
        if len(finite_seen) >= warmup and v > factor * np.median(finite_seen[-window:]):
            out.append(t)
        finite_seen.append(v)
    return out


def suggest_clip_threshold(norms, percentile: float = 95.0, factor: float = 10.0,
                           warmup: int = 5, window: int = 100) -> ExplosionReport:
    """Explosions in a log of pre-clipping gradient norms and a clipping threshold (module doc: the rule)."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    g = np.asarray(norms, dtype=np.float64)
    steps = detect_explosions(g, factor, warmup, window)
    first = steps[0] if steps else None
    healthy = g[: first if first is not None else len(g)]
    healthy = healthy[np.isfinite(healthy)]
    clip = float(np.percentile(healthy, percentile)) if healthy.size else None
    return ExplosionReport(steps, first, int((~np.isfinite(g)).sum()), int(healthy.size), clip,
                           float(percentile), float(factor),
                           float(np.median(healthy)) if healthy.size else None)
