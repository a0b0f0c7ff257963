"""Corpus BLEU agrees with sacreBLEU's default; exact match."""
import os
import random
from pathlib import Path

import pytest

from rnnkit.tasks.bleu import corpus_bleu, exact_match, tokenize_13a

DATA = Path(os.environ.get("RNNKIT_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))

CASES = [
    (["Il fait beau aujourd'hui.", "Je suis là."], ["Il fait beau aujourd'hui.", "Je suis ici."]),
    (["le chat", "un chien noir et blanc"], ["le chat est là", "un chien noir"]),  # brevity + smoothing
    (["", "Bonjour !"], ["Salut !", "Bonjour !"]),
    (["3.5 km, 10-20 euros & plus"], ["3.5 km, 10-20 euros &amp; plus"]),
    (["a b c d"], ["e f g h"]),
]


def test_tokenizer_13a():
    assert tokenize_13a("Hello, world! 3.5 and 10-20.") == "Hello , world ! 3.5 and 10 - 20 ."


@pytest.mark.parametrize("hyps,refs", CASES)
def test_matches_sacrebleu_cases(hyps, refs):
    sacrebleu = pytest.importorskip("sacrebleu")
    assert corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)


def test_matches_sacrebleu_on_real_sentences_and_multiple_refs():
    sacrebleu = pytest.importorskip("sacrebleu")
    path = DATA / "translation" / "fra-eng.txt"
    if not path.exists():
        pytest.skip("shared data absent")
    lines = path.read_text(encoding="utf-8").splitlines()[5000:5400]
    refs = [ln.split("\t")[1] for ln in lines]
    rng = random.Random(0)
    hyps = []
    for r in refs:  # system-like outputs: dropped, swapped and replaced words
        w = r.split()
        if len(w) > 2 and rng.random() < 0.5:
            i = rng.randrange(len(w) - 1)
            w[i], w[i + 1] = w[i + 1], w[i]
        if len(w) > 1 and rng.random() < 0.3:
            del w[rng.randrange(len(w))]
        if rng.random() < 0.3:
            w[rng.randrange(len(w))] = "le"
        hyps.append(" ".join(w))
    assert corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
    refs2 = [ln.split("\t")[0] for ln in lines]
    assert corpus_bleu(hyps, [refs, refs2]) == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs, refs2]).score, abs=1e-9)


def test_exact_match_and_errors():
    assert exact_match(["Je suis là.", "non"], ["Je suis là .", "oui"]) == 0.5
    assert corpus_bleu(["x y z w"], ["x y z w"]) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="hypotheses"):
        corpus_bleu(["a"], ["a", "b"])
