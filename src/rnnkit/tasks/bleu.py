"""Corpus BLEU as sacreBLEU computes it by default, and exact-match rate.

Papineni et al., "BLEU: a Method for Automatic Evaluation of Machine Translation", ACL 2002; Post, "A Call
for Clarity in Reporting BLEU Scores", WMT 2018 (sacreBLEU). Defaults reproduced: the "13a" tokenizer
(mteval-v13a's rules), case-sensitive, n-grams up to 4, "exp" smoothing, one reference per hypothesis
(or several, the closest reference length is used for the brevity penalty):

    p_n = sum clipped n-gram matches / sum hypothesis n-grams         (over the whole corpus)
    exp smoothing: the k-th order n with zero matches gets p_n = 1 / (2^k * total_n)
    (BLEU is 0 when no n-gram of any order matches, or some order has no hypothesis n-gram at all)
    BP = 1 if c >= r else exp(1 - r / c)                               (c, r: hypothesis, reference lengths)
    BLEU = 100 * BP * exp(mean_n log p_n)
"""
from __future__ import annotations

import math
import re
from collections import Counter

_RULES_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # punctuation and symbols
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period and comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # ... unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash after a digit
]


def tokenize_13a(line: str) -> str:
    """mteval-v13a tokenisation, as sacreBLEU's default tokenizer."""
    line = line.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _RULES_13A:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hyps: list[str], refs, max_order: int = 4) -> float:
    """sacreBLEU-default corpus BLEU (0-100). refs: a list of reference strings (one per hypothesis),
    or a list of such lists (several reference streams, as `sacrebleu.corpus_bleu(hyps, refs)`)."""
    if refs and isinstance(refs[0], str):
        refs = [refs]
    if any(len(r) != len(hyps) for r in refs):
        raise ValueError(f"corpus_bleu: {len(hyps)} hypotheses but reference streams of lengths "
                         f"{[len(r) for r in refs]}")
    correct = [0] * max_order
    total = [0] * max_order
    sys_len = ref_len = 0
    for i, hyp in enumerate(hyps):
        h = tokenize_13a(hyp).split()
        rs = [tokenize_13a(r[i]).split() for r in refs]
        sys_len += len(h)
        # closest reference length, ties to the shorter one
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, max_order + 1):
            hc = _ngrams(h, n)
            maxref: Counter = Counter()
            for r in rs:
                maxref |= _ngrams(r, n)
            correct[n - 1] += sum(min(c, maxref[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    if not any(correct):  # no matching n-gram at all: 0, as sacreBLEU (its issue #141)
        return 0.0
    logs = []
    smooth = 1.0
    for n in range(max_order):
        if total[n] == 0:
            return 0.0
        if correct[n] == 0:
            smooth *= 2
            logs.append(math.log(1.0 / (smooth * total[n])))
        else:
            logs.append(math.log(correct[n] / total[n]))
    if sys_len == 0:
        return 0.0
    bp = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len)
    return 100.0 * bp * math.exp(sum(logs) / max_order)


def exact_match(hyps: list[str], refs: list[str]) -> float:
    """Fraction of hypotheses equal to their reference after 13a tokenisation (spacing-insensitive)."""
    if len(hyps) != len(refs):
        raise ValueError(f"exact_match: {len(hyps)} hypotheses vs {len(refs)} references")
    return sum(tokenize_13a(h) == tokenize_13a(r) for h, r in zip(hyps, refs)) / max(len(hyps), 1)
