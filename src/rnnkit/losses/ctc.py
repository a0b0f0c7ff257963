"""Connectionist temporal classification (CTC) loss and its exact gradient.

Graves, Fernandez, Gomez, Schmidhuber, "Connectionist Temporal Classification: Labelling Unsegmented
Sequence Data with Recurrent Neural Networks", ICML 2006, sections 3-4.

Shapes: T input frames, B batch, C classes (blank included), S label length, S' = 2S + 1 extended label.

Convention: `ctc_loss` takes *unnormalised logits* (T, B, C) and applies log-softmax inside, so the
gradient it returns is with respect to the logits. This equals `torch.nn.CTCLoss()(log_softmax(logits),
...)` differentiated through the log-softmax (torch's CTCLoss itself expects log-probabilities).

With y = softmax(u) over classes, the extended label l' = (blank, l_1, blank, l_2, ..., l_S, blank),
alpha_t(s) = P(prefix of l' up to s emitted by frames 0..t, at s at t) (emission at t included) and
beta_t(s) = P(suffix from s emitted by frames t+1..T-1 | at s at t) (emission at t excluded):

    alpha_0(0) = y_0(blank),  alpha_0(1) = y_0(l_1)
    alpha_t(s) = (alpha_{t-1}(s) + alpha_{t-1}(s-1) + skip(s) alpha_{t-1}(s-2)) * y_t(l'_s)
    beta_{T-1}(s) = 1 for s in {S'-1, S'-2}
    beta_t(s) = sum_{s' in {s, s+1, s+2 if skip(s+2)}} y_{t+1}(l'_{s'}) beta_{t+1}(s')
    p(l|x) = alpha_{T-1}(S'-1) + alpha_{T-1}(S'-2),   loss = -log p(l|x)
    dloss/du_t(k) = y_t(k) - (1/p) sum_{s: l'_s = k} alpha_t(s) beta_t(s)

where skip(s) is true when l'_s is not blank and l'_s != l'_{s-2} (a label may jump over the blank
between two *different* labels). All recursions run in log space (log-sum-exp), vectorised over the
batch and the extended label, looping over time only.

A label of length S with R adjacent repeats needs at least S + R frames (a blank must separate repeats);
shorter inputs have p = 0. torch returns an infinite loss there; `ctc_loss` raises `ValueError` naming
the batch item, because an infinite loss silently breaks training.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .functional import log_softmax

_NEG_INF = -np.inf

REDUCTIONS = ("sum", "mean", "none")


class CTCCache(NamedTuple):
    log_alpha: np.ndarray  # (T, B, S') log alpha
    log_beta: np.ndarray  # (T, B, S') log beta
    log_p: np.ndarray  # (B,) log p(l|x)


def min_input_length(label) -> int:
    """Fewest frames that can emit `label` under CTC: its length plus its adjacent repeats."""
    label = np.asarray(label)
    repeats = int(np.sum(label[1:] == label[:-1])) if label.size > 1 else 0
    return int(label.size) + repeats


def _check(logits, targets, input_lengths, target_lengths, blank):
    if logits.ndim != 3:
        raise ValueError(f"ctc_loss: logits must be (T, B, C), got shape {logits.shape}")
    T, B, C = logits.shape
    targets = np.asarray(targets)
    if targets.ndim == 1:  # torch's concatenated form: split by target_lengths
        target_lengths = np.asarray(target_lengths, dtype=np.int64)
        padded = np.full((B, max(int(target_lengths.max(initial=0)), 1)), blank, dtype=np.int64)
        offs = np.concatenate([[0], np.cumsum(target_lengths)])
        for b in range(B):
            padded[b, :target_lengths[b]] = targets[offs[b]:offs[b + 1]]
        targets = padded
    if targets.ndim != 2 or targets.shape[0] != B:
        raise ValueError(f"ctc_loss: targets must be (B, S) padded or concatenated 1-D, got {targets.shape}")
    input_lengths = np.full(B, T, np.int64) if input_lengths is None else np.asarray(input_lengths, np.int64)
    target_lengths = (np.full(B, targets.shape[1], np.int64) if target_lengths is None
                      else np.asarray(target_lengths, np.int64))
    if input_lengths.shape != (B,) or target_lengths.shape != (B,):
        raise ValueError(f"ctc_loss: input_lengths and target_lengths must have B={B} entries, got "
                         f"{input_lengths.shape} and {target_lengths.shape}")
    if np.any(input_lengths < 1) or np.any(input_lengths > T):
        raise ValueError(f"ctc_loss: input_lengths must lie in [1, T={T}], got {input_lengths.tolist()}")
    if np.any(target_lengths < 0) or np.any(target_lengths > targets.shape[1]):
        raise ValueError(f"ctc_loss: target_lengths must lie in [0, S={targets.shape[1]}], "
                         f"got {target_lengths.tolist()}")
    targets = targets.astype(np.int64)
    for b in range(B):
        lab = targets[b, :target_lengths[b]]
        if np.any(lab == blank) or np.any(lab < 0) or np.any(lab >= C):
            raise ValueError(f"ctc_loss: target {b} has labels outside [0, C={C}) or equal to the blank "
                             f"{blank}: {lab.tolist()}")
        need = min_input_length(lab)
        if input_lengths[b] < need:
            raise ValueError(f"ctc_loss: input {b} has {int(input_lengths[b])} frames but its label of length "
                             f"{int(target_lengths[b])} needs at least {need} (length + repeats)")
    return targets, input_lengths, target_lengths


def _extended(targets, target_lengths, blank):
    """Extended labels l' (B, S'), validity mask (B, S') and skip mask (B, S')."""
    B, S = targets.shape
    Sp = 2 * S + 1
    ext = np.full((B, Sp), blank, dtype=np.int64)
    ext[:, 1::2] = targets
    valid = np.arange(Sp)[None, :] < (2 * target_lengths + 1)[:, None]
    skip = np.zeros((B, Sp), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    return ext, valid, skip


def ctc_forward_backward(logp: np.ndarray, targets, input_lengths, target_lengths, blank: int = 0):
    """Log alpha, log beta and log p(l|x) for log-probabilities `logp` (T, B, C); see module docstring."""
    T, B, C = logp.shape
    ext, valid, skip = _extended(targets, target_lengths, blank)
    Sp = ext.shape[1]
    bidx = np.arange(B)[:, None]
    # emission log-probabilities of each extended-label position: (T, B, S')
    em = logp[:, bidx, ext]
    em = np.where(valid[None], em, _NEG_INF)

    log_alpha = np.full((T, B, Sp), _NEG_INF)
    log_alpha[0, :, 0] = em[0, :, 0]
    has_label = target_lengths > 0
    log_alpha[0, has_label, 1] = em[0, has_label, 1]
    with np.errstate(invalid="ignore"):
        for t in range(1, T):
            prev = log_alpha[t - 1]
            a1 = np.full_like(prev, _NEG_INF)
            a1[:, 1:] = prev[:, :-1]
            a2 = np.full_like(prev, _NEG_INF)
            a2[:, 2:] = prev[:, :-2]
            a2 = np.where(skip, a2, _NEG_INF)
            log_alpha[t] = _logsumexp3(prev, a1, a2) + em[t]

    # beta, per item starting at its own last frame T_b - 1
    end = np.full((B, Sp), _NEG_INF)
    last = 2 * target_lengths  # index of the final blank
    end[np.arange(B), last] = 0.0
    end[has_label, last[has_label] - 1] = 0.0
    log_beta = np.full((T, B, Sp), _NEG_INF)
    tl = input_lengths[:, None]
    with np.errstate(invalid="ignore"):
        nxt = np.full((B, Sp), _NEG_INF)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                w = log_beta[t + 1] + em[t + 1]  # (B, S') y_{t+1}(l'_{s'}) beta_{t+1}(s')
                b1 = np.full_like(w, _NEG_INF)
                b1[:, :-1] = w[:, 1:]
                b2 = np.full_like(w, _NEG_INF)
                b2[:, :-2] = np.where(skip[:, 2:], w[:, 2:], _NEG_INF)
                nxt = _logsumexp3(w, b1, b2)
            log_beta[t] = np.where(t == tl - 1, end, np.where(t < tl - 1, nxt, _NEG_INF))

    la_end = log_alpha[input_lengths - 1, np.arange(B)]  # (B, S')
    log_p = np.logaddexp(la_end[np.arange(B), last],
                         np.where(has_label, la_end[np.arange(B), np.maximum(last - 1, 0)], _NEG_INF))
    return CTCCache(log_alpha, log_beta, log_p), ext


def _logsumexp3(a, b, c):
    m = np.maximum(np.maximum(a, b), c)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    s = np.exp(a - m_safe) + np.exp(b - m_safe) + np.exp(c - m_safe)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(m), np.log(s) + m_safe, _NEG_INF)


def ctc_loss(logits: np.ndarray, targets, input_lengths=None, target_lengths=None, blank: int = 0,
             reduction: str = "mean"):
    """CTC loss of unnormalised `logits` and its gradient with respect to them.

    logits: (T, B, C) scores; log-softmax over C is applied inside.
    targets: (B, S) int labels padded to S (padding ignored), or torch's 1-D concatenation.
    input_lengths: (B,) frames per item (default T); frames beyond get zero gradient.
    target_lengths: (B,) label lengths (default S).
    reduction: "mean" (torch's default: each loss divided by its label length, clamped to >= 1, then
        averaged over the batch), "sum", or "none" (returns (B,) losses; the gradient is then that of
        their sum).
    Returns (loss, dlogits) with dlogits (T, B, C) in logits' dtype; the recursion runs in float64.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"ctc_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    logits = np.asarray(logits)
    targets, input_lengths, target_lengths = _check(logits, targets, input_lengths, target_lengths, blank)
    T, B, C = logits.shape
    logp = log_softmax(logits.astype(np.float64), axis=-1)
    cache, ext = ctc_forward_backward(logp, targets, input_lengths, target_lengths, blank)
    losses = -cache.log_p  # (B,)

    # posterior occupation of each extended position, scattered onto classes: (T, B, C)
    with np.errstate(invalid="ignore"):
        log_gamma = cache.log_alpha + cache.log_beta - cache.log_p[None, :, None]
    gamma = np.where(np.isfinite(log_gamma), np.exp(log_gamma), 0.0)  # (T, B, S')
    onehot = np.zeros((B, ext.shape[1], C))
    onehot[np.arange(B)[:, None], np.arange(ext.shape[1])[None, :], ext] = 1.0
    occ = np.einsum("tbs,bsc->tbc", gamma, onehot)
    tmask = (np.arange(T)[:, None] < input_lengths[None, :])[:, :, None]  # (T, B, 1)
    dlogits = (np.exp(logp) - occ) * tmask

    if reduction == "sum":
        loss = float(losses.sum())
    elif reduction == "mean":
        scale = 1.0 / (np.maximum(target_lengths, 1) * B)  # (B,)
        loss = float(np.sum(losses * scale))
        dlogits = dlogits * scale[None, :, None]
    else:
        loss = losses
    return loss, dlogits.astype(logits.dtype if logits.dtype.kind == "f" else np.float64)
