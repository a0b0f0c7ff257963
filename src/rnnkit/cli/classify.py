"""`rnnkit classify train DATA --out DIR` and `rnnkit classify predict DIR INPUT`.

DATA is a CSV/TSV (`--text-col`, `--label-col`; names or 0-based indexes, `--no-header` for files
without one), a UCR/UEA `.ts` file, or an `.npz` with `X`, `y` and optional `lengths`. The model is
evaluated on `--test FILE` (same kind as DATA) or on a held-out `--test-split` of DATA, and
`DIR/metrics.json` gets accuracy, macro-F1 and the confusion matrix; `DIR/confusion_matrix.png` is drawn
when matplotlib is installed. `predict` prints one predicted label per input row (CSV: row, label,
probability).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..jsonio import write_json
from ..layers.heads import POOLINGS
from ..tasks.classify import SEQUENCE_DEFAULTS, TEXT_DEFAULTS
from .common import add_train_args, nonneg_int, positive_int, prepare_out_dir, train_config_from_args
from .parallel import add_parallel_args, run_parallel_or_none
from .plotting import pyplot_or_none, save_figure


TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")  # tables whose --text-col is read as strings


def add_parser(sub):
    p = sub.add_parser("classify", help="many-to-one sequence classification (text, sensors, .ts)")
    act = p.add_subparsers(dest="action", metavar="ACTION")
    act.required = True
    t = act.add_parser("train", help="train a classifier and write DIR/metrics.json",
                       description="Options whose default reads None take the recipe of the input: text "
                                   f"(GRU {TEXT_DEFAULTS['hidden_size']}, bidirectional, "
                                   f"{TEXT_DEFAULTS['pooling']} pooling, lr {TEXT_DEFAULTS['lr']}, "
                                   f"{TEXT_DEFAULTS['epochs']} epochs) or numeric sequences (LSTM 64, last "
                                   "state, lr 0.005, 10 epochs).")
    t.add_argument("data", metavar="DATA", help="CSV/TSV with --text-col/--label-col, a .ts file or an .npz")
    _add_input_args(t)
    t.add_argument("--test", metavar="FILE", help="evaluate on this file instead of a held-out split")
    t.add_argument("--test-split", type=float, default=0.2,
                   help="fraction of DATA held out for evaluation when no --test (default: %(default)s)")
    t.add_argument("--validation-split", type=float, default=None,
                   help="fraction of the training part used for early stopping (default: 0)")
    t.add_argument("--pooling", choices=POOLINGS, default=None,
                   help="pool the outputs over time; concat is last+max+mean (default: text max+mean, "
                        "other input last)")
    t.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="read each sequence in both directions (default: text yes, other input no)")
    t.add_argument("--embedding-dim", type=positive_int, default=32,
                   help="word vector width (default: %(default)s; --embeddings sets it from the file)")
    t.add_argument("--batch-size", type=positive_int, default=None, help="default: text 16, other input 32")
    t.add_argument("--tokenizer", choices=["word", "char"], default="word")
    t.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="parameter precision")
    s = t.add_argument_group("text")
    s.add_argument("--embeddings", metavar="FILE",
                   help="pretrained word vectors, GloVe or word2vec text format (.gz too); none ship with rnnkit")
    s.add_argument("--pretrain-text", metavar="FILE",
                   help="more text, one sentence a line, for the language-model pretraining (ULMFiT)")
    s.add_argument("--pretrain-epochs", type=nonneg_int, metavar="N", default=None,
                   help="epochs of language-model pretraining before the classifier is trained; 0: none "
                        f"(default: text {TEXT_DEFAULTS['pretrain_epochs']})")
    s.add_argument("--ensemble", type=positive_int, metavar="N", default=None,
                   help="train N networks (seeds seed..seed+N-1) and average their probabilities "
                        f"(default: text {TEXT_DEFAULTS['ensemble']}, other input 1)")
    add_train_args(t, epochs=None, hidden=None, lr=None, cell=None, eval_every=50)
    add_parallel_args(t)
    t.set_defaults(func=train)
    q = act.add_parser("predict", help="predict labels for INPUT with the model in DIR")
    q.add_argument("model_dir", metavar="DIR")
    q.add_argument("input", metavar="INPUT", help="a file of the kind the model was trained on")
    _add_input_args(q)
    q.set_defaults(func=predict)


def _add_input_args(p):
    p.add_argument("--text-col", metavar="COL", help="CSV/TSV: column with the text (name or 0-based index)")
    p.add_argument("--label-col", metavar="COL", help="CSV/TSV: column with the label (name or index)")
    p.add_argument("--no-header", action="store_true", help="CSV/TSV: the first row is data")


def load_dataset(path, args, need_labels=True):
    """(X, y) from a CSV/TSV, .ts or .npz file; y is None when the file has no labels."""
    from ..data.tables import read_npz_sequences, read_table, read_text_labels
    from ..data.ts_format import load_ts

    path = Path(path)
    if not path.exists():
        raise UserError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".ts":
        d = load_ts(path)
        if any(np.isnan(x).any() for x in d.X):
            raise UserError(f"{path}: the series have missing values ('?'); fill them before training")
        if need_labels and d.y is None:
            raise UserError(f"{path}: the file has no class labels (@classLabel false)")
        return d.X, d.y
    if suffix == ".npz":
        return read_npz_sequences(path)
    if suffix in TEXT_SUFFIXES:
        if args.text_col is None:
            raise UserError(f"{path}: a CSV/TSV needs --text-col (and --label-col for training)")
        if need_labels:
            if args.label_col is None:
                raise UserError(f"{path}: a CSV/TSV needs --label-col for training")
            return read_text_labels(path, args.text_col, args.label_col, header=not args.no_header)
        table = read_table(path, header=not args.no_header)
        return table.column(args.text_col, "--text-col"), None
    raise UserError(f"{path}: unknown data format {suffix!r}; use .csv, .tsv, .ts or .npz")


def _split(n, frac, seed):
    if not 0.0 < frac < 1.0:
        raise UserError(f"--test-split must be in (0, 1), got {frac}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(frac * n)))
    if n - n_test < 2:
        raise UserError(f"the data has {n} examples: too few to hold out a test split")
    return order[n_test:], order[:n_test]


def _take(X, idx):
    return [X[i] for i in idx]


def plot_confusion(cm, labels, path) -> bool:
    """Draw the confusion matrix to `path`; False (and a note on stderr) without matplotlib."""
    plt = pyplot_or_none("confusion-matrix plot")
    if plt is None:
        return False
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1.0 + 0.6 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return save_figure(plt, fig, path)


# numeric input (sensors, .ts, .npz): the options' defaults before text got its own recipe
_CLI_SEQUENCE = {**SEQUENCE_DEFAULTS, "cell": "lstm", "hidden_size": 64, "lr": 5e-3, "epochs": 10}
# option (argparse dest) -> the recipe's parameter
_RECIPE_OPTIONS = {"cell": "cell", "hidden": "hidden_size", "lr": "lr", "epochs": "epochs", "pooling": "pooling",
                   "bidirectional": "bidirectional", "batch_size": "batch_size",
                   "validation_split": "validation_split", "pretrain_epochs": "pretrain_epochs",
                   "ensemble": "ensemble"}


def _recipe_defaults(args, text: bool) -> None:
    """Fill the options left out with the recipe of the input: text or numeric sequences."""
    recipe = TEXT_DEFAULTS if text else _CLI_SEQUENCE
    for dest, key in _RECIPE_OPTIONS.items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, recipe[key])
    if not text and (args.embeddings or args.pretrain_text):
        raise UserError(f"{args.data}: --embeddings and --pretrain-text are for text; this file holds "
                        "numeric sequences")


def _saved_member_config(resume):
    """An ensemble run keeps its checkpoints in DIR/members/k: the training settings of member 0 (the
    same for all), or None for a single network's DIR/checkpoint (read by train_config_from_args)."""
    if resume is None:
        return None
    from ..train import saved_train_config

    members = Path(resume) / "members"
    if (Path(resume) / "checkpoint").exists() or not (members / "0" / "checkpoint").exists():
        return None
    return saved_train_config(members / "0")


def _dropouts(args, text: bool) -> dict:
    """`--dropout P` (the common training option): P on the embedded words (variational), between
    stacked layers and on the pooled vector; without it, the recipe's rates."""
    p = getattr(args, "dropout", None)
    if p is None:
        return {}
    return {"input_dropout": p, "output_dropout": p, "dropout": p}


def train(args):
    from ..tasks.classify import SequenceClassifier
    from ..tasks.metrics import classification_report

    status = run_parallel_or_none("classify", args)
    if status is not None:
        return status
    text = Path(args.data).suffix.lower() in TEXT_SUFFIXES  # what load_dataset reads as text columns
    _recipe_defaults(args, text)
    cfg = train_config_from_args(args, saved=_saved_member_config(args.resume))
    out = prepare_out_dir(args.out)
    X, y = load_dataset(args.data, args)
    classes = np.unique(np.asarray(y))
    if len(classes) < 2:
        raise UserError(f"{args.data}: the labels have only one class ({classes[0]!r}); a classifier "
                        "needs at least two")
    if args.test:
        X_tr, y_tr = X, y
        X_te, y_te = load_dataset(args.test, args)
    else:
        tr, te = _split(len(X), args.test_split, args.seed)
        X_tr, y_tr, X_te, y_te = _take(X, tr), y[tr], _take(X, te), y[te]
    if args.resume and (Path(args.resume) / "model").is_dir():
        clf = SequenceClassifier.load(Path(args.resume) / "model")
        clf.set_params(train_config=cfg)
    else:  # a new run, or one stopped mid-training (a checkpoint, no model yet): built from the options
        clf = SequenceClassifier(
            cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, bidirectional=args.bidirectional,
            pooling=args.pooling, embedding_dim=args.embedding_dim, tokenizer=args.tokenizer,
            class_weight=None if args.class_weight == "none" else "balanced",
            validation_split=args.validation_split, batch_size=args.batch_size, seed=args.seed,
            dtype=args.dtype, train_config=cfg, embeddings=args.embeddings, pretrain_text=args.pretrain_text,
            pretrain_epochs=args.pretrain_epochs, ensemble=args.ensemble, **_dropouts(args, text))
    t0 = time.perf_counter()
    clf.fit(X_tr, y_tr, out_dir=out, resume=args.resume)
    seconds = time.perf_counter() - t0
    unseen = sorted(set(np.asarray(y_te).tolist()) - set(clf.classes_.tolist()))
    if unseen:
        raise UserError(f"the test data has labels not seen in training: {unseen[:5]}")
    pred = clf.predict(X_te)
    labels = clf.classes_.tolist()
    report = classification_report(y_te, pred, labels)
    majority = max(np.mean(np.asarray(y_te) == c) for c in labels)
    metrics = {"task": "classify", "data": str(args.data), "test": args.test or f"held-out {args.test_split}",
               "n_train": len(X_tr), "n_test": len(X_te), **report,
               "majority_class_accuracy": float(majority), "train_seconds": seconds,
               "training": clf.history_}
    clf.save(out / "model")
    write_json(out / "metrics.json", metrics, indent=2, default=str)
    plotted = plot_confusion(report["confusion_matrix"], report["labels"], out / "confusion_matrix.png")
    print(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
          f"(majority class {majority:.4f}; {len(X_te)} test examples, {seconds:.1f} s training)")
    print(f"wrote {out / 'metrics.json'}" + (f", {out / 'confusion_matrix.png'}" if plotted else ""))
    return 0


def predict(args):
    from ..tasks.classify import SequenceClassifier

    clf = SequenceClassifier.load(Path(args.model_dir) / "model")
    X, _ = load_dataset(args.input, args, need_labels=False)
    proba = clf.predict_proba(X)
    labels = clf.classes_[proba.argmax(1)]
    print("row,label,probability")
    for i, (lab, p) in enumerate(zip(labels.tolist(), proba.max(1))):
        print(f"{i},{lab},{p:.4f}")
    return 0
