"""Many-to-one heads: pooling a padded sequence of outputs into one vector, and the losses of the apps.

Shapes: out (T, B, F) time-major RNN outputs with F = num_directions * H; lengths (B,) true lengths
(steps t >= lengths[b] are padding and get zero gradient); pooled (B, F).

Pooling, per sequence b with n = lengths[b]:
    last: forward half  h_fwd = out[n-1, b, :H]; reverse half h_rev = out[0, b, H:] (the reverse
          direction ends at t = 0), i.e. the final hidden state of each direction, as torch's h_n.
    mean: p = (1/n) sum_{t<n} out[t, b];        dout[t, b] = dp / n for t < n.
    max:  p = max_{t<n} out[t, b] (per feature); dout goes to the arg-max step only.
    a+b:  p = [p_a, p_b] concatenated on the feature axis, (B, k*F) for k parts; dpooled is split
          into the k blocks and dout = sum_k dout_k (each part routes its own block). "concat" is
          ULMFiT's concat pooling (Howard & Ruder 2018), "last+max+mean".

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

BASIC_POOLINGS = ("last", "mean", "max")
POOLING_ALIASES = {"concat": "last+max+mean"}
POOLINGS = (*BASIC_POOLINGS, "max+mean", "concat")  # the named choices; any "a+b+..." of basic ones works


def pooling_parts(mode: str) -> tuple[str, ...]:
    """The basic poolings a mode concatenates: "max" -> ("max",), "concat" -> ("last", "max", "mean")."""
    parts = tuple(POOLING_ALIASES.get(mode, mode).split("+")) if isinstance(mode, str) else ()
    if not parts or any(p not in BASIC_POOLINGS for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)} (or basic poolings joined by '+'), "
                         f"got {mode!r}")
    return parts


class PoolCache(NamedTuple):
    mode: str
    shape: tuple            # (T, B, F) of out
    lengths: np.ndarray     # (B,)
    index: np.ndarray       # last: (B, F) time index per feature; max: (B, F) arg-max; mean: unused
    num_directions: int
    parts: tuple = ()       # a+b: the PoolCache of each part, in order


def pool_forward(out, lengths, mode: str = "last", num_directions: int = 1):
    """pooled (B, k*F) from out (T, B, F), k parts; see the module docstring. Returns (pooled, cache)."""
    parts = pooling_parts(mode)
    if len(parts) > 1:
        pooled_caches = [pool_forward(out, lengths, p, num_directions) for p in parts]
        pooled = np.concatenate([pc[0] for pc in pooled_caches], axis=1)       # (B, k*F)
        return pooled, PoolCache(mode, out.shape, np.asarray(lengths, dtype=np.int64), np.empty((0, 0), np.int64),
                                 num_directions, tuple(pc[1] for pc in pooled_caches))
    mode = parts[0]
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
    """dout (T, B, F) from dpooled (B, k*F)."""
    T, B, F = cache.shape
    if cache.parts:  # dout = sum_k dout_k, block k of dpooled going through part k
        return sum(pool_backward(c, dpooled[:, k * F:(k + 1) * F]) for k, c in enumerate(cache.parts))
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
