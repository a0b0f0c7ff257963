"""Measure rnnkit's many-to-one classifiers and forecasters on real data against simple baselines.

    python3 benchmarks/apps_results.py [--budget SECONDS] [--only NAME ...] [--json FILE]

Rows (each model trains within --budget seconds, default 30):
  * sentiment yelp / amazon / imdb / pooled (UCI Sentiment Labelled Sentences in ../shared/data or
    $RNNKIT_SHARED_DATA; pooled: the three files together): held-out accuracy on a seeded 80/20 split of
    `SequenceClassifier()` with no tuning arguments (epoch-bounded: --budget does not apply), against
    scikit-learn's word 1-2-gram logistic regression with C chosen by 5-fold CV on the training part;
  * BasicMotions (aeon's shipped .ts files, standard TRAIN/TEST split): accuracy against 1-nearest-neighbour
    with Euclidean distance on the flattened series, the usual time-series-classification baseline;
  * digits (scikit-learn's 8x8 images read as 8 steps of 8 pixels, seeded 75/25 split): accuracy against
    logistic regression on the 64 pixels;
  * sunspots, nile, elnino, co2 weekly (59 missing weeks) and co2 monthly (made from the weekly file; 5
    missing months), statsmodels' shipped CSVs, and Airline (aeon's): the default `rnnkit forecast train`
    (epoch/step-bounded, not by --budget), rolling-origin backtest MASE against naive, seasonal-naive and
    Holt-Winters on the same origins (the best baseline is shown, all of them in --json).
Needs scikit-learn; the data rows skip (and say so) when aeon, statsmodels or the shared data are absent.
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
import rnnkit  # noqa: E402,F401

import numpy as np  # noqa: E402

from rnnkit.data import bundled  # noqa: E402
from rnnkit.data.tables import read_text_labels  # noqa: E402
from rnnkit.tasks.classify import SequenceClassifier  # noqa: E402
from rnnkit.tasks.forecast import Forecaster, backtest  # noqa: E402
from rnnkit.train import TrainConfig  # noqa: E402


def shared_data() -> Path:
    return Path(os.environ.get("RNNKIT_SHARED_DATA", ROOT / ".." / "shared" / "data"))


def cfg(budget, epochs, lr, patience=None):
    return TrainConfig(epochs=epochs, time_budget=budget, lr=lr, patience=patience, progress=False,
                       eval_every=10, seed=0)


def timed_fit(est, *fit_args):
    t0 = time.perf_counter()
    est.fit(*fit_args)
    return time.perf_counter() - t0


def sentiment(name, budget):
    """The default text classifier (no tuning arguments; epoch-bounded, so --budget does not apply)
    against word 1-2-gram logistic regression with C chosen by 5-fold CV on the training part."""
    parts = ("yelp", "amazon_cells", "imdb") if name == "pooled" else (name,)
    paths = [shared_data() / "sentiment" / f"{p}_labelled.txt" for p in parts]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        return None, f"{missing[0]} not found"
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    texts, y = [], []
    for p in paths:
        t, lab = read_text_labels(p, 0, 1, header=False)
        texts += list(t)
        y += list(lab)
    y = np.asarray(y)
    order = np.random.default_rng(0).permutation(len(texts))
    te, tr = order[:len(texts) // 5], order[len(texts) // 5:]
    Xtr, Xte = [texts[i] for i in tr], [texts[i] for i in te]
    clf = SequenceClassifier(seed=0)
    secs = timed_fit(clf, Xtr, y[tr])
    acc = clf.score(Xte, y[te])
    bow = GridSearchCV(make_pipeline(CountVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=5000)),
                       {"logisticregression__C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100]}, cv=5).fit(Xtr, y[tr])
    base = float(bow.score(Xte, y[te]))
    s = clf._setting
    model = (f"{s('cell').upper()} {s('hidden_size')}{', bidirectional' if s('bidirectional') else ''}, "
             f"{s('pooling')} pooling" + (f", {s('ensemble')} seeds" if s("ensemble") > 1 else "") + " (default)")
    return {"dataset": f"sentiment {name} ({len(tr)}/{len(te)})", "metric": "accuracy", "rnnkit": acc,
            "baseline": base, "baseline_name": "word 1-2-gram logistic regression, C by CV", "seconds": secs,
            "model": model, "higher_is_better": True}, None


def basicmotions(budget):
    if bundled.package_dir("aeon") is None:
        return None, "aeon not installed"
    from sklearn.neighbors import KNeighborsClassifier

    tr, te = bundled.load_ts_shipped("BasicMotions", "TRAIN"), bundled.load_ts_shipped("BasicMotions", "TEST")
    clf = SequenceClassifier(cell="lstm", hidden_size=32, pooling="mean", batch_size=8, seed=0,
                             train_config=cfg(budget, 60, 1e-2))
    secs = timed_fit(clf, tr.X, tr.y)
    acc = clf.score(te.X, te.y)
    flat = lambda d: d.to_array().reshape(len(d.X), -1)  # noqa: E731
    base = KNeighborsClassifier(1).fit(flat(tr), tr.y).score(flat(te), te.y)
    return {"dataset": "BasicMotions (40/40, 6 x 100)", "metric": "accuracy", "rnnkit": acc, "baseline": base,
            "baseline_name": "1-NN Euclidean", "seconds": secs, "model": "LSTM 32, mean pooling",
            "higher_is_better": True}, None


def digits(budget):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = d.images / 16.0                                   # (N, 8, 8): 8 steps (rows) of 8 pixels
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=0.25, random_state=0, stratify=d.target)
    clf = SequenceClassifier(cell="gru", hidden_size=64, pooling="last", batch_size=32, seed=0,
                             train_config=cfg(budget, 40, 1e-2))
    secs = timed_fit(clf, Xtr, ytr)
    acc = clf.score(Xte, yte)
    base = LogisticRegression(max_iter=3000).fit(Xtr.reshape(len(Xtr), -1), ytr).score(Xte.reshape(len(Xte), -1), yte)
    return {"dataset": "digits (1347/450, 8 steps x 8 px)", "metric": "accuracy", "rnnkit": acc,
            "baseline": base, "baseline_name": "logistic regression on 64 pixels", "seconds": secs,
            "model": "GRU 64, last state", "higher_is_better": True}, None


# name -> (loader of (time stamps, values), horizon, origins, --season or None to infer it, --fill or None)
FORECASTS = {
    "sunspots": (lambda: bundled.load_series_with_times("sunspots"), 11, 5, 11, None),
    "nile": (lambda: bundled.load_series_with_times("nile"), 5, 5, None, None),
    "elnino": (lambda: bundled.load_series_with_times("elnino"), 12, 5, None, None),
    "airline": (lambda: bundled.load_series_with_times("airline"), 12, 3, None, None),
    "co2_weekly": (lambda: bundled.load_series_with_times("co2"), 52, 5, None, "linear"),
    "co2_monthly": (bundled.co2_monthly, 12, 5, None, "linear"),
}
FORECAST_PACKAGE = {"airline": "aeon"}


def forecast(name, budget):
    """The default `rnnkit forecast train` on the series written as a time,value CSV; its metrics.json.
    Training is bounded by the command's default epochs/steps, not by --budget (a fair comparison of
    models must not depend on the machine's load)."""
    import contextlib
    import io
    import tempfile

    from rnnkit.cli import main as cli

    pkg = FORECAST_PACKAGE.get(name, "statsmodels")
    if bundled.package_dir(pkg) is None:
        return None, f"{pkg} not installed"
    load, H, n_origins, season, fill = FORECASTS[name]
    times, y = load()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        path.write_text("time,value\n" + "".join(f"{t},{'' if v != v else repr(float(v))}\n"
                                                  for t, v in zip(times, y)))
        argv = ["forecast", "train", str(path), "--column", "value", "--time-col", "time", "--horizon", str(H),
                "--origins", str(n_origins), "--out", str(Path(tmp) / "run"), "--no-progress"]
        argv += (["--season", str(season)] if season else []) + (["--fill", fill] if fill else [])
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            if cli(argv) != 0:
                raise RuntimeError(f"{name}: rnnkit forecast train failed")
        m = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    bt = m["backtest"]
    res = {k: bt[k] for k in ("rnnkit", "naive", "seasonal_naive", "holt_winters") if k in bt}
    best = min((k for k in res if k != "rnnkit"), key=lambda k: res[k]["mase"])
    label = {"naive": "naive", "seasonal_naive": f"seasonal-naive (m={m['season']})",
             "holt_winters": f"Holt-Winters ({bt['holt_winters_model']})"}[best]
    missing = int(np.isnan(y).sum()) + m["n"] - len(y)             # missing values and missing dates
    return {"dataset": f"{name} ({m['n']} values{f', {missing} missing' if missing else ''}, H={H}, "
                       f"{n_origins} origins)", "metric": "MASE",
            "rnnkit": res["rnnkit"]["mase"], "baseline": res[best]["mase"], "baseline_name": label,
            "seconds": m["train_seconds"],
            "model": f"{m['cell'].upper()} {m['hidden']} {m['strategy']} x{m['models']}, "
                     f"lookback {m['lookback']}, {m['choice']['chosen']}, "
                     + ("no season" if m["season"] == 1 else "deseasonalized"
                        if m["choice"]["deseasonalized"].startswith("True") else "season kept"),
            "higher_is_better": False, "all": res, "season": m["season"], "command": "rnnkit " + " ".join(argv),
            "printed": printed.getvalue()}, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=30.0, help="training seconds per model")
    ap.add_argument("--only", nargs="*", help="run only these rows (yelp amazon_cells imdb pooled basicmotions "
                                              "digits sunspots nile elnino airline co2_weekly co2_monthly)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    jobs = {"yelp": lambda: sentiment("yelp", args.budget), "amazon_cells": lambda: sentiment("amazon_cells", args.budget),
            "imdb": lambda: sentiment("imdb", args.budget), "pooled": lambda: sentiment("pooled", args.budget),
            "basicmotions": lambda: basicmotions(args.budget),
            "digits": lambda: digits(args.budget)}
    jobs.update({n: (lambda n=n: forecast(n, args.budget)) for n in FORECASTS})
    rows = []
    print("| dataset | metric | rnnkit | baseline | baseline model | rnnkit model | training s | rnnkit wins |")
    print("|---|---|---|---|---|---|---|---|")
    for name, job in jobs.items():
        if args.only and name not in args.only:
            continue
        row, skipped = job()
        if row is None:
            print(f"| {name} | skipped: {skipped} | | | | | | |")
            continue
        wins = row["rnnkit"] > row["baseline"] if row["higher_is_better"] else row["rnnkit"] < row["baseline"]
        row["rnnkit_wins"] = bool(wins)
        rows.append(row)
        print(f"| {row['dataset']} | {row['metric']} | {row['rnnkit']:.3f} | {row['baseline']:.3f} | "
              f"{row['baseline_name']} | {row['model']} | {row['seconds']:.1f} | {'yes' if wins else 'no'} |",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
