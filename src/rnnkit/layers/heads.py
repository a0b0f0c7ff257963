"""Many-to-one heads: pooling a padded sequence of outputs into one vector, and the losses of the apps.

Shapes: out (T, B, F) time-major RNN outputs with F = num_directions * H; lengths (B,) true lengths
(steps t >= lengths[b] are padding and get zero gradient); pooled (B, F).

Pooling, per sequence b with n = lengths[b]:
    last: forward half  h_fwd = out[n-1, b, :H]; reverse half h_rev = out[0, b, H:] (the reverse
          direction ends at t = 0), i.e. the final hidden state of each direction, as torch's h_n.
    mean: p = (1/n) sum_{t<n} out[t, b];        dout[t, b] = dp / n for t < n.
    max:  p = max_{t<n} out[t, b] (per feature); dout goes to the arg-max step only.

Losses (each returns (loss, dinput) like `rnnkit.losses`):
    weighted softmax cross-entropy: L = sum_i w_i l_i / sum_i w_i with l_i = logsumexp(z_i) - z_i[y_i]
        and w_i = class_weight[y_i];  dz_i = w_i (softmax(z_i) - onehot(y_i)) / sum_i w_i.
    Gaussian NLL with mean mu and log standard deviation s (sigma = exp(s)):
        l = 0.5 log(2 pi) + s + (y - mu)^2 / (2 sigma^2);  dl/dmu = -(y - mu)/sigma^2,
        dl/ds = 1 - (y - mu)^2 / sigma^2;  L = mean over items.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

POOLINGS = ("last", "mean", "max")


class PoolCache(NamedTuple):
    mode: str
    shape: tuple            # (T, B, F) of out
    lengths: np.ndarray     # (B,)
    index: np.ndarray       # last: (B, F) time index per feature; max: (B, F) arg-max; mean: unused
    num_directions: int


def pool_forward(out, lengths, mode: str = "last", num_directions: int = 1):
    """pooled (B, F) from out (T, B, F); see the module docstring. Returns (pooled, cache)."""
    if mode not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {mode!r}")
    T, B, F = out.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    b = np.arange(B)
    if mode == "last":
        index = np.repeat((lengths - 1)[:, None], F, axis=1)  # (B, F)
        if num_directions == 2:
            index[:, F // 2:] = 0
        pooled = out[index, b[:, None], np.arange(F)[None, :]]
    elif mode == "mean":
        valid = (np.arange(T)[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
        pooled = (out * valid).sum(0) / lengths[:, None]
        index = np.empty((0, 0), dtype=np.int64)
    else:
        valid = (np.arange(T)[:, None] < lengths[None, :])[..., None]
        masked = np.where(valid, out, -np.inf)
        index = masked.argmax(0)  # (B, F)
        pooled = out[index, b[:, None], np.arange(F)[None, :]]
    return pooled, PoolCache(mode, out.shape, lengths, index, num_directions)


def pool_backward(cache: PoolCache, dpooled):
    """dout (T, B, F) from dpooled (B, F)."""
    T, B, F = cache.shape
    dout = np.zeros((T, B, F), dtype=dpooled.dtype)
    if cache.mode == "mean":
        valid = (np.arange(T)[:, None] < cache.lengths[None, :])[..., None]
        dout[...] = valid * (dpooled / cache.lengths[:, None])[None]
    else:  # last and max both route the gradient to one step per feature
        dout[cache.index, np.arange(B)[:, None], np.arange(F)[None, :]] = dpooled
    return dout


def _log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return (z - m) - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def weighted_cross_entropy(logits, targets, class_weight=None):
    """(loss, dlogits) for logits (B, C), int targets (B,), class_weight (C,) or None (all ones)."""
    B, C = logits.shape
    logp = _log_softmax(logits)
    w = np.ones(B) if class_weight is None else np.asarray(class_weight, dtype=np.float64)[targets]
    wsum = w.sum()
    loss = float(-(w * logp[np.arange(B), targets]).sum() / wsum)
    d = np.exp(logp)
    d[np.arange(B), targets] -= 1.0
    return loss, (d * (w / wsum)[:, None]).astype(logits.dtype, copy=False)


LOG_SIGMA_MIN, LOG_SIGMA_MAX = -7.0, 7.0


def gaussian_nll(mu, log_sigma, y):
    """(loss, dmu, dlog_sigma): mean Gaussian negative log-likelihood, all arrays the same shape.
    log_sigma is clipped to [-7, 7] (its gradient is zero outside) so a collapsing sigma cannot overflow."""
    s = np.clip(log_sigma, LOG_SIGMA_MIN, LOG_SIGMA_MAX)
    inv_var = np.exp(-2.0 * s)
    r = y - mu
    n = mu.size
    loss = float(np.mean(0.5 * np.log(2 * np.pi) + s + 0.5 * r ** 2 * inv_var))
    dmu = -r * inv_var / n
    ds = (1.0 - r ** 2 * inv_var) / n
    ds = np.where((log_sigma > LOG_SIGMA_MIN) & (log_sigma < LOG_SIGMA_MAX), ds, 0.0)
    return loss, dmu.astype(mu.dtype, copy=False), ds.astype(mu.dtype, copy=False)
