"""Decoding CTC outputs: best-path (greedy) and prefix beam search.

Greedy: take the most probable class per frame, merge adjacent repeats, drop blanks (Graves et al. 2006,
"best path decoding"). Prefix beam search (Hannun et al., "First-Pass Large Vocabulary Continuous Speech
Recognition using Bi-Directional Recurrent DNNs", 2014, without a language model): keep the `beam` most
probable label prefixes, each with the log-probability of all frame paths that end in a blank (p_b) and
in a non-blank (p_nb), so that paths collapsing to the same prefix are summed, not just maximised.

Shapes: T frames, C classes (blank included); `logp` is (T, C) log-probabilities of one utterance.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np


def greedy_decode(logp: np.ndarray, blank: int = 0) -> list[int]:
    """Best-path labels of one utterance: argmax per frame, merge repeats, drop blanks. logp: (T, C)."""
    best = np.argmax(np.asarray(logp), axis=-1)
    out, prev = [], None
    for k in best.tolist():
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def prefix_beam_decode(logp: np.ndarray, beam: int = 8, blank: int = 0) -> list[int]:
    """Most probable label sequence by CTC prefix beam search. logp: (T, C) log-probabilities.

    For each kept prefix and frame t, with c the prefix's last label:
        blank:        p_b'(prefix)   += (p_b + p_nb)(prefix) * y_t(blank)
        repeat c:     p_nb'(prefix)  += p_nb(prefix) * y_t(c)           (collapses into c)
                      p_nb'(prefix+c) += p_b(prefix) * y_t(c)           (blank separated the two)
        other k != c: p_nb'(prefix+k) += (p_b + p_nb)(prefix) * y_t(k)
    """
    logp = np.asarray(logp, dtype=np.float64)
    if beam < 1:
        raise ValueError(f"prefix_beam_decode: beam must be >= 1, got {beam}")
    T, C = logp.shape
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, -np.inf)}  # prefix -> (log p_b, log p_nb)
    for t in range(T):
        y = logp[t]
        nxt: dict[tuple, list[float]] = defaultdict(lambda: [-np.inf, -np.inf])
        # prune classes that cannot matter at this frame: keep the top `beam` plus blank
        cand = np.argsort(y)[::-1][:beam]
        for prefix, (pb, pnb) in beams.items():
            ptot = np.logaddexp(pb, pnb)
            e = nxt[prefix]
            e[0] = np.logaddexp(e[0], ptot + y[blank])
            last = prefix[-1] if prefix else None
            for k in cand.tolist():
                if k == blank:
                    continue
                if k == last:
                    e[1] = np.logaddexp(e[1], pnb + y[k])
                    ext = nxt[prefix + (k,)]
                    ext[1] = np.logaddexp(ext[1], pb + y[k])
                else:
                    ext = nxt[prefix + (k,)]
                    ext[1] = np.logaddexp(ext[1], ptot + y[k])
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:beam]
        beams = {p: (v[0], v[1]) for p, v in ranked}
    best = max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0]
    return list(best)


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (insertions, deletions, substitutions cost 1)."""
    a, b = list(a), list(b)
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def cer(hyps, refs) -> float:
    """Character error rate: total edit distance / total reference length, over a corpus."""
    dist = sum(edit_distance(h, r) for h, r in zip(hyps, refs))
    return dist / max(sum(len(r) for r in refs), 1)
