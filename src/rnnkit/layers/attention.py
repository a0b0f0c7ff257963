"""Luong global attention over decoder outputs, as pure forward/backward functions and a thin Module.

Luong, Pham, Manning, "Effective Approaches to Attention-based Neural Machine Translation", EMNLP 2015,
section 3.1 (global attention, "dot" and "general" scores), without input feeding: the attention reads
the decoder's outputs h_t, so under teacher forcing the decoder RNN runs once over the whole target and
attention is one batched computation over all T steps.

Shapes: T target steps, S source steps, B batch, H decoder hidden, E encoder output size (E = H for dot).

    k_s = e_s                     (dot)        k_s = W_a e_s      (general; W_a: (H, E))
    score_ts = h_t . k_s          masked to -inf where s >= source length
    a_t = softmax_s(score_t)
    c_t = sum_s a_ts e_s
    o_t = tanh(W_c [c_t; h_t])    (W_c: (H, E + H))

Backward, with do the upstream gradient of o:
    dz = (do * (1 - o^2)) ; dW_c = sum dz [c; h]^T ; [dc; dh] = dz W_c
    da_ts = dc_t . e_s ; de_s += sum_t a_ts dc_t
    dscore_ts = a_ts (da_ts - sum_s' a_ts' da_ts')
    dh_t += sum_s dscore_ts k_s ; dk_s = sum_t dscore_ts h_t ; (general) dW_a = sum dk e^T, de += dk W_a
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import Module
from .checks import float_dtype

SCORES = ("dot", "general")


class AttentionCache(NamedTuple):
    h: np.ndarray  # (T, B, H) decoder outputs
    e: np.ndarray  # (S, B, E) encoder outputs
    k: np.ndarray  # (S, B, H) keys (e for dot, W_a e for general)
    a: np.ndarray  # (B, T, S) attention weights
    z: np.ndarray  # (T, B, E + H) [c; h]
    o: np.ndarray  # (T, B, H) attentional output


def source_mask(lengths, S: int) -> np.ndarray:
    """(S, B) True at valid source steps s < lengths[b]."""
    return np.arange(S)[:, None] < np.asarray(lengths)[None, :]


def attention_forward(params: dict, h: np.ndarray, e: np.ndarray, mask: np.ndarray | None = None):
    """Attentional outputs o (T, B, H) and weights a (B, T, S); params: weight_combine, optional weight_score.

    mask: (S, B) bool, True at valid source steps (None: all valid).
    """
    k = e if "weight_score" not in params else e @ params["weight_score"].T  # (S, B, H)
    hb, eb = h.transpose(1, 0, 2), e.transpose(1, 0, 2)  # (B, T, H), (B, S, E): batched matmuls below
    score = hb @ k.transpose(1, 2, 0)  # (B, T, S)
    if mask is not None:
        score = np.where(mask.T[:, None, :], score, -np.inf)
    score = score - score.max(axis=-1, keepdims=True)
    a = np.exp(score)
    a /= a.sum(axis=-1, keepdims=True)  # (B, T, S)
    c = (a @ eb).transpose(1, 0, 2)  # (T, B, E)
    z = np.concatenate([c, h], axis=-1)  # (T, B, E + H)
    o = np.tanh(z @ params["weight_combine"].T)  # (T, B, H)
    return o, AttentionCache(h, e, k, a, z, o)


def attention_backward(params: dict, cache: AttentionCache, do: np.ndarray):
    """Returns (dh (T, B, H), de (S, B, E), grads) for upstream do (T, B, H)."""
    h, e, k, a, z, o = cache
    E = e.shape[-1]
    dpre = do * (1.0 - o ** 2)  # (T, B, H)
    grads = {"weight_combine": dpre.reshape(-1, dpre.shape[-1]).T @ z.reshape(-1, z.shape[-1])}
    dz = dpre @ params["weight_combine"]  # (T, B, E + H)
    dc, dh = dz[..., :E], dz[..., E:].copy()
    dcb, eb, hb = dc.transpose(1, 0, 2), e.transpose(1, 0, 2), h.transpose(1, 0, 2)  # batch-major
    da = dcb @ eb.transpose(0, 2, 1)  # (B, T, S)
    de = (a.transpose(0, 2, 1) @ dcb).transpose(1, 0, 2)  # (S, B, E)
    dscore = a * (da - np.sum(a * da, axis=-1, keepdims=True))  # masked positions have a = 0
    dh += (dscore @ k.transpose(1, 0, 2)).transpose(1, 0, 2)
    dk = (dscore.transpose(0, 2, 1) @ hb).transpose(1, 0, 2)  # (S, B, H)
    if "weight_score" in params:
        grads["weight_score"] = dk.reshape(-1, dk.shape[-1]).T @ e.reshape(-1, e.shape[-1])
        de += dk @ params["weight_score"]
    else:
        de += dk
    return dh, de, grads


class Attention(Module):
    """`Attention(hidden_size H, enc_size E, score="general"|"dot")`: params weight_score (H, E) for
    "general", weight_combine (H, E + H). forward(h, e, mask) -> o; backward(do) -> (dh, de)."""

    def __init__(self, hidden_size: int, enc_size: int, score: str = "general", dtype=np.float32, seed=None):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"Attention: score must be one of {SCORES}, got {score!r}")
        if score == "dot" and hidden_size != enc_size:
            raise ValueError(f"Attention: 'dot' needs enc_size == hidden_size, got {enc_size} and {hidden_size}")
        self.score, self.dtype = score, float_dtype("Attention", dtype)
        rng = np.random.default_rng(seed)
        if score == "general":
            kk = 1.0 / np.sqrt(enc_size)
            self._params["weight_score"] = rng.uniform(-kk, kk, (hidden_size, enc_size)).astype(self.dtype)
        kc = 1.0 / np.sqrt(enc_size + hidden_size)
        self._params["weight_combine"] = rng.uniform(-kc, kc, (hidden_size, enc_size + hidden_size)).astype(self.dtype)
        self._grads = {n: np.zeros_like(p) for n, p in self._params.items()}
        self._cache: AttentionCache | None = None

    def forward(self, h, e, mask=None) -> np.ndarray:
        o, self._cache = attention_forward(self._params, h, e, mask)
        return o

    @property
    def weights(self) -> np.ndarray:
        """(B, T, S) attention weights of the last forward."""
        return self._cache.a

    def backward(self, do):
        dh, de, grads = attention_backward(self._params, self._cache, do)
        for n, g in grads.items():
            self._grads[n] = g.astype(self.dtype, copy=False)
        return dh, de
