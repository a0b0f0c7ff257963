"""What each step of the text recipe buys: rnnkit's classifier against bag-of-words logistic regression on
the UCI sentiment sentences, epoch-bounded (the accuracy does not depend on the machine's load).

    RNNKIT_SHARED_DATA=../shared/data python3 benchmarks/sentiment_study.py [--seeds 3] [--sets ...]
        [--variants ...] [--json FILE]

Sets: yelp, amazon_cells, imdb (1,000 sentences each) and pooled (the three files together, 3,000),
each split 80/20 with a seeded permutation (seed 0, as benchmarks/apps_results.py). Baseline: word 1-2-gram
counts and logistic regression with C chosen by 5-fold cross-validation on the training part only.
Every variant is trained with model seeds 0..N-1 on the same split; the table shows the mean and the
standard deviation over seeds of the test accuracy (200 test sentences per file: one sentence is 0.5
points). Variants are cumulative down the ladder (each adds one step to the one above), then side
variants change one thing of `default` (the classifier with no arguments).
Needs scikit-learn (the baseline) and the shared data.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from rnnkit.data.tables import read_text_labels  # noqa: E402
from rnnkit.tasks.classify import SequenceClassifier  # noqa: E402

FILES = ("yelp", "amazon_cells", "imdb")
OLD = dict(ensemble=1, cell="gru", hidden_size=32, bidirectional=True, pooling="max", batch_size=16, lr=3e-3,
           epochs=30, validation_split=0.1, patience=6, embedding_std=1.0)
SINGLE = {"ensemble": 1}
VARIANTS = {  # name -> (what it changes, SequenceClassifier arguments)
    "before": ("the apps table's BiGRU 32, max pooling, embeddings N(0, 1), early stopping on 10%", OLD),
    "small-init": ("embedding rows N(0, 0.1^2)", {**OLD, "embedding_std": 0.1}),
    "all-data": ("lr 1e-3, 8 epochs on all the training part, no early stopping",
                 {**OLD, "embedding_std": 0.1, "lr": 1e-3, "epochs": 8, "validation_split": 0.0}),
    "max+mean": ("max+mean pooling: the default's single network", SINGLE),
    "default": ("5 seeds averaged: SequenceClassifier() as it is now", {}),
    # side variants: one change to the default's single network
    "concat": ("concat pooling (last+max+mean)", {**SINGLE, "pooling": "concat"}),
    "dropout": ("embedding 0.1, input 0.2, output 0.3 dropout", {**SINGLE, "embedding_dropout": 0.1,
                                                                 "input_dropout": 0.2, "output_dropout": 0.3}),
    "lm5": ("5 epochs of LM pretraining on the training sentences (ULMFiT)", {**SINGLE, "pretrain_epochs": 5}),
    "lm5-more-text": ("the same, the LM also reading the other two files' sentences (no labels; not "
                      "for pooled)", {**SINGLE, "pretrain_epochs": 5, "pretrain_text": "OTHER FILES"}),
    "early-stop": ("early stopping on 10% (20 epochs, patience 3)",
                   {**SINGLE, "validation_split": 0.1, "patience": 3, "epochs": 20}),
    "max": ("max pooling", {**SINGLE, "pooling": "max"}),
    "mean": ("mean pooling", {**SINGLE, "pooling": "mean"}),
    "epochs12": ("12 epochs", {**SINGLE, "epochs": 12}),
    "lr2e-3": ("lr 2e-3, 5 epochs", {**SINGLE, "lr": 2e-3, "epochs": 5}),
    "hidden64": ("hidden 64", {**SINGLE, "hidden_size": 64}),
    "emb64": ("embedding width 64", {**SINGLE, "embedding_dim": 64}),
    "lstm": ("LSTM cells", {**SINGLE, "cell": "lstm"}),
    "min-count2": ("words seen once are unknown", {**SINGLE, "min_count": 2}),
    "std0.03": ("embedding rows N(0, 0.03^2)", {**SINGLE, "embedding_std": 0.03}),
    "ensemble10": ("10 seeds averaged", {"ensemble": 10}),
    "before-ensemble5": ("the `before` network, 5 seeds averaged", {**OLD, "ensemble": 5}),
}


def shared_data() -> Path:
    return Path(os.environ.get("RNNKIT_SHARED_DATA", ROOT / ".." / "shared" / "data"))


def load_set(name):
    """(train texts, train labels, test texts, test labels) of a seeded 80/20 split."""
    parts = FILES if name == "pooled" else (name,)
    texts, labels = [], []
    for f in parts:
        t, y = read_text_labels(shared_data() / "sentiment" / f"{f}_labelled.txt", 0, 1, header=False)
        texts += list(t)
        labels += list(y)
    y = np.asarray(labels)
    order = np.random.default_rng(0).permutation(len(texts))
    te, tr = order[:len(texts) // 5], order[len(texts) // 5:]
    return [texts[i] for i in tr], y[tr], [texts[i] for i in te], y[te]


def bag_of_words(Xtr, ytr, Xte, yte) -> tuple[float, float]:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    grid = {"logisticregression__C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100]}
    gs = GridSearchCV(make_pipeline(CountVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=5000)),
                      grid, cv=5).fit(Xtr, ytr)
    return float(gs.score(Xte, yte)), float(gs.best_params_["logisticregression__C"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="model seeds 0..N-1 per variant")
    ap.add_argument("--sets", nargs="*", default=[*FILES, "pooled"])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not (shared_data() / "sentiment").is_dir():
        print(f"skipped: {shared_data() / 'sentiment'} not found")
        return
    data = {s: load_set(s) for s in args.sets}
    print(f"load average at start {os.getloadavg()[0]:.1f} (2 cores; seconds are upper bounds, machine shared)")
    rows = []
    base = {s: bag_of_words(*d) for s, d in data.items()}
    print("| variant | what it changes | " + " | ".join(args.sets) + " | mean | s per fit |")
    print("|---|---|" + "---:|" * (len(args.sets) + 2))
    print("| bag-of-words LR | word 1-2-grams, C by 5-fold CV | " +
          " | ".join(f"{base[s][0]:.3f} (C={base[s][1]:g})" for s in args.sets) +
          f" | {np.mean([b[0] for b in base.values()]):.3f} | |", flush=True)
    for name in args.variants:
        what, kw = VARIANTS[name]
        accs, secs = {}, []
        for s, (Xtr, ytr, Xte, yte) in data.items():
            params = dict(kw)
            if params.get("pretrain_text") == "OTHER FILES":  # text a user could add: the other files
                if s == "pooled":
                    continue
                params["pretrain_text"] = [t for f in FILES if f != s for t in load_set(f)[0] + load_set(f)[2]]
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                clf = SequenceClassifier(**{**params, "seed": seed}).fit(Xtr, ytr)
                secs.append(time.perf_counter() - t0)
                accs.setdefault(s, []).append(clf.score(Xte, yte))
        rows.append({"variant": name, "what": what, "params": kw, "accuracy": accs, "seconds": secs})
        cells = [f"{np.mean(accs[s]):.3f} ± {np.std(accs[s]):.3f}" if s in accs else "-" for s in args.sets]
        print(f"| {name} | {what} | " + " | ".join(cells) +
              f" | {np.mean([np.mean(a) for a in accs.values()]):.3f} | {np.mean(secs):.1f} |", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"baseline": base, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
