"""Softmax cross-entropy, mean squared error and binary cross-entropy with logits.

Shapes: logits (..., C), integer targets (...), mask (...) for cross-entropy; pred/target/mask of equal
shape for MSE and BCE. N is the number of unmasked items (all items when mask is None).

softmax cross-entropy, per item:  l = logsumexp(z) - z[y],  with logsumexp(z) = m + log sum exp(z - m),
    m = max(z) (the log-sum-exp trick: no overflow for large logits, no log(0) for small ones);
    dl/dz = softmax(z) - onehot(y).  Loss = sum(mask * l) / N, dz = mask * (softmax - onehot) / N.
MSE:   loss = sum(mask * (p - t)^2) / N,  dp = 2 mask (p - t) / N.
BCE with logits x, targets t in [0, 1]: l = max(x, 0) - x t + log(1 + exp(-|x|)) (stable form),
    dl/dx = sigmoid(x) - t.
"""
from __future__ import annotations

import numpy as np


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """z - logsumexp(z) along `axis`, computed stably."""
    m = z.max(axis=axis, keepdims=True)
    shifted = z - m
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def lengths_mask(lengths, T: int) -> np.ndarray:
    """(T, B) boolean mask, True at steps t < lengths[b] of a padded time-major batch."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be a 1-D array of B ints, got shape {lengths.shape}")
    return np.arange(T)[:, None] < lengths[None, :]


def _mask_and_count(mask, shape, name):
    if mask is None:
        return None, int(np.prod(shape, dtype=np.int64))
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name}: mask must have shape {tuple(shape)}, got {mask.shape}")
    mask = mask.astype(bool)
    n = int(mask.sum())
    if n == 0:
        raise ValueError(f"{name}: mask selects no items")
    return mask, n


def softmax_cross_entropy(logits, targets, mask=None) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of integer `targets` under softmax(`logits`); returns (loss, dlogits).

    logits (..., C) float; targets (...) ints in [0, C); mask (...) optional, items where it is False
    contribute nothing to the loss or the gradient. The loss is a Python float in nats per item.
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"softmax_cross_entropy: logits shape {logits.shape} needs targets of shape "
                         f"{logits.shape[:-1]}, got {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"softmax_cross_entropy: targets must be integers, got {targets.dtype}")
    C = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= C):
        raise ValueError(f"softmax_cross_entropy: targets must be in [0, {C}), "
                         f"got range [{targets.min()}, {targets.max()}]")
    mask, n = _mask_and_count(mask, targets.shape, "softmax_cross_entropy")
    z = logits.reshape(-1, C)                  # (N_all, C)
    y = targets.reshape(-1)                    # (N_all,)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(z.shape[0])
    nll = (np.log(s[:, 0]) + m[:, 0]) - z[rows, y]   # logsumexp(z) - z[y]
    dz = e / s                                  # softmax, (N_all, C)
    dz[rows, y] -= 1.0
    if mask is not None:
        w = mask.reshape(-1)
        nll = nll[w]
        dz *= w[:, None]
    loss = float(nll.sum(dtype=np.float64) / n)
    dz *= 1.0 / n
    return loss, dz.reshape(logits.shape).astype(logits.dtype, copy=False)


def mse(pred, target, mask=None) -> tuple[float, np.ndarray]:
    """Mean squared error over unmasked items; returns (loss, dpred)."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"mse: pred shape {pred.shape} != target shape {target.shape}")
    mask, n = _mask_and_count(mask, pred.shape, "mse")
    diff = pred - target
    if mask is not None:
        diff = diff * mask
    loss = float(np.sum(diff * diff, dtype=np.float64) / n)
    return loss, (2.0 / n) * diff


def binary_cross_entropy_with_logits(logits, targets, mask=None) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of `targets` in [0, 1] under sigmoid(`logits`); returns (loss, dlogits)."""
    x, t = np.asarray(logits), np.asarray(targets, dtype=np.asarray(logits).dtype)
    if x.shape != t.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: logits shape {x.shape} != targets shape {t.shape}")
    mask, n = _mask_and_count(mask, x.shape, "binary_cross_entropy_with_logits")
    per = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    sig = np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))
    d = sig.astype(x.dtype, copy=False) - t
    if mask is not None:
        per = per * mask
        d = d * mask
    loss = float(np.sum(per, dtype=np.float64) / n)
    return loss, d / n


# name -> loss function, for configs and CLIs
LOSSES = {
    "cross_entropy": softmax_cross_entropy,
    "mse": mse,
    "bce_with_logits": binary_cross_entropy_with_logits,
}
