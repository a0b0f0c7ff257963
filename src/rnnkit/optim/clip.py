"""Gradient clipping, in place, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.

By global norm: n = sqrt(sum_k ||g_k||^2); if n > max_norm every gradient is scaled by
max_norm / (n + 1e-6). Returns n measured *before* clipping (what a progress bar should show). A
non-finite n is returned as is and the gradients are left alone: the trainer treats it as a bad step.
"""
from __future__ import annotations

import math

import numpy as np


def global_norm(grads) -> float:
    """sqrt of the sum of squares of every gradient array (dict values or an iterable of arrays)."""
    arrs = grads.values() if isinstance(grads, dict) else grads
    total = 0.0
    for g in arrs:
        g = np.asarray(g).reshape(-1)
        total += float(np.dot(g, g))
    return math.sqrt(total) if math.isfinite(total) else float("nan")


def clip_grad_norm(grads, max_norm: float) -> float:
    """Scale the gradients in place so their global norm is at most `max_norm`; returns the norm before."""
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
    norm = global_norm(grads)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in (grads.values() if isinstance(grads, dict) else grads):
            g *= scale
    return norm


def clip_grad_value(grads, clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value] in place."""
    if not clip_value > 0:
        raise ValueError(f"clip_grad_value: clip_value must be > 0, got {clip_value}")
    for g in (grads.values() if isinstance(grads, dict) else grads):
        np.clip(g, -clip_value, clip_value, out=g)
