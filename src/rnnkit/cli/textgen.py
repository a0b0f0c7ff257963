"""`rnnkit textgen train [FILE] --out DIR ...` and `rnnkit textgen sample DIR ...`.

`--level char` (the default) models characters, `--level byte` raw bytes, `--level word` words (WikiText
tokenisation, tied embeddings, perplexity). Training without FILE uses the English prose of Python's
own documentation (`pydoc_data.topics`), so the command works on any machine with no download. After training, the model, its vocabulary and the
training state are in DIR/checkpoint, the final losses in DIR/metrics.json, and a sample is printed.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from .common import (add_train_args, fraction, nonneg_int, positive_int, prepare_out_dir, probability,
                     train_config_from_args)
from .parallel import add_parallel_args, run_parallel_or_none

# the time budget applies when neither --steps nor --epochs nor --time-budget is given
DEFAULT_TIME_BUDGET = 120.0
TRAIN_DEFAULTS = dict(hidden=256, out=None, eval_every=250)


def nonneg_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}") from None
    if not (v >= 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {s!r}")
    return v


def add_parser(sub) -> None:
    p = sub.add_parser("textgen", help="text generation: character- or word-level language models",
                       description="Train a character- or word-level language model on a text and sample "
                                   "from it.")
    tsub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    tsub.required = True

    t = tsub.add_parser("train", help="train on FILE (default: Python's documentation text)",
                        description="Train a character-level (or --level byte/word) model. Without FILE, "
                                    "the English prose of "
                                    "pydoc_data.topics (shipped with Python) is the corpus. Without --steps, "
                                    f"--epochs or --time-budget, it trains for {DEFAULT_TIME_BUDGET:.0f} s.")
    t.add_argument("file", nargs="?", metavar="FILE", help="UTF-8 text file (any file with --level byte)")
    add_train_args(t, **TRAIN_DEFAULTS)
    d = t.add_argument_group("text")
    d.add_argument("--level", choices=["char", "byte", "word"], default="char",
                   help="model characters (UTF-8 text), raw bytes (any file) or words (whitespace-separated, "
                        "<eos> at line ends) (default: %(default)s)")
    d.add_argument("--embed", type=positive_int, default=None, metavar="N",
                   help="embedding size (default: 64; --hidden with tied weights)")
    d.add_argument("--tie", action=argparse.BooleanOptionalAction, default=None,
                   help="tie the output layer's weight to the embedding (needs --embed = --hidden) "
                        "(default: on at --level word, off otherwise)")
    d.add_argument("--max-vocab", type=positive_int, default=None, metavar="N",
                   help="word level: keep the N-2 most frequent training words (+ <eos>, <unk>) (default: all)")
    d.add_argument("--min-count", type=positive_int, default=None, metavar="K",
                   help="word level: training words seen fewer than K times are <unk> (default: 2)")
    d.add_argument("--seq-len", type=positive_int, default=64, metavar="N",
                   help="truncated-BPTT length (default: %(default)s)")
    d.add_argument("--batch", type=positive_int, default=32, metavar="N",
                   help="contiguous streams per batch (default: %(default)s)")
    d.add_argument("--val-frac", type=fraction, default=0.1, metavar="X",
                   help="fraction of the text, at its end, held out for validation (default: %(default)s)")
    r = t.add_argument_group("dropout (training only; --dropout P sets the input, between-layer and output "
                             "dropouts at once, the options below override it)")
    r.add_argument("--dropout-input", type=probability, default=None, metavar="P",
                   help="on the embeddings fed to the recurrent layers (default: char 0.1, byte 0, word 0.2)")
    r.add_argument("--dropout-hidden", type=probability, default=None, metavar="P",
                   help="between recurrent layers (default: 0; word level 0.2)")
    r.add_argument("--dropout-output", type=probability, default=None, metavar="P",
                   help="on the last recurrent layer's output (default: char 0.3, byte 0, word 0.2)")
    r.add_argument("--dropout-embedding", type=probability, default=None, metavar="P",
                   help="whole embedding rows (symbol types) per batch (default: 0)")
    r.add_argument("--weight-drop", type=probability, default=None, metavar="P",
                   help="DropConnect on the recurrent weights W_hh (default: char 0.2, byte and word 0)")
    r.add_argument("--variational", action=argparse.BooleanOptionalAction, default=True,
                   help="input and output dropout masks the same at every step (default: on)")
    d.add_argument("--sample-length", type=nonneg_int, default=600, metavar="N",
                   help="symbols to sample after training; 0 for none (default: %(default)s)")
    d.add_argument("--temperature", type=nonneg_float, default=0.7, metavar="X",
                   help="temperature of that sample (default: %(default)s)")
    d.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="parameter precision; float64 runs the NumPy reference path (default: %(default)s)")
    add_parallel_args(t)
    t.set_defaults(func=run_train, model_defaults={dest: t.get_default(dest) for dest in MODEL_FIELDS})

    s = tsub.add_parser("sample", help="generate text from a trained model",
                        description="Generate text from the model saved in DIR, streamed to stdout.")
    s.add_argument("dir", metavar="DIR", help="output folder of 'rnnkit textgen train'")
    s.add_argument("--length", type=nonneg_int, default=1000, metavar="N", help="symbols to generate (default: %(default)s)")
    s.add_argument("--temperature", type=nonneg_float, default=0.8, metavar="X",
                   help="softmax temperature; lower is more conservative, 0 is greedy (default: %(default)s)")
    s.add_argument("--top-k", type=positive_int, default=None, metavar="K", help="sample from the K most likely symbols only")
    s.add_argument("--greedy", action="store_true", help="always take the most likely symbol")
    s.add_argument("--prime", default="", metavar="TEXT", help="text to start from (printed first)")
    s.add_argument("--unknown", choices=["error", "skip", "unk"], default="error",
                   help="prime symbols not in the vocabulary: stop with an error, drop them, or (word level) "
                        "read them as <unk> (default: %(default)s)")
    s.add_argument("--seed", type=nonneg_int, default=None, help="random seed, for a repeatable sample")
    s.set_defaults(func=run_sample)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# model options (argparse dest) -> the TextGenConfig field they set; a resumed run keeps the saved ones
MODEL_FIELDS = {"level": "level", "cell": "cell", "embed": "embed_dim", "hidden": "hidden_size",
                "layers": "num_layers", "seq_len": "seq_len", "batch": "batch", "val_frac": "val_frac",
                "dtype": "dtype", "tie": "tie_weights", "max_vocab": "max_vocab", "min_count": "min_count",
                "variational": "variational"}


def check_resume_options(args, cfg) -> None:
    """UserError when a model option on the command line asks for a value other than the resumed run's
    (an option left at its default, or given the saved value, is fine): the run continues its saved model,
    so the option would otherwise be dropped without a word."""
    defaults = getattr(args, "model_defaults", {})
    asked = {field: (dest, getattr(args, dest)) for dest, field in MODEL_FIELDS.items()
             if getattr(args, dest) != defaults.get(dest)}                # field -> (option, value)
    for field, v in dropouts_from_args(args).items():
        if v is not None and not (field == "dropout_hidden" and cfg.num_layers == 1):  # nothing to drop
            asked[field] = ("dropout" if getattr(args, field, None) is None else field, v)
    conflicts = [f"--{dest.replace('_', '-')} {v} (the run has {getattr(cfg, field)})"
                 for field, (dest, v) in asked.items() if v != getattr(cfg, field)]
    if conflicts:
        raise UserError(f"{', '.join(conflicts)}: a resumed run keeps its model settings; leave "
                        f"{'these options' if len(conflicts) > 1 else 'the option'} out, or train a new model "
                        "with --out NEW_DIR")


def dropouts_from_args(args) -> dict:
    """The dropout fields of TextGenConfig from `--dropout P` and the specific options (None: default)."""
    shared = getattr(args, "dropout", None)
    out = {k: shared for k in ("dropout_input", "dropout_hidden", "dropout_output")}
    for k in ("dropout_input", "dropout_hidden", "dropout_output", "dropout_embedding", "weight_drop"):
        if getattr(args, k) is not None:
            out[k] = getattr(args, k)
    return out


def run_train(args) -> int:
    from ..tasks import textgen as tg

    if args.out is None and args.resume is None:
        raise UserError("--out DIR is required (the folder for the model and metrics.json)")
    status = run_parallel_or_none("textgen", args)   # the workers check and lock their own folders
    if status is not None:
        return status
    out = prepare_out_dir(args.out if args.out is not None else args.resume,
                          resume=args.out is None, option="--out" if args.out is not None else "--resume")
    if args.steps is None and args.epochs is None and args.time_budget is None:
        args.time_budget = DEFAULT_TIME_BUDGET
    train_cfg = train_config_from_args(args)
    vocab = None
    if args.resume is not None:
        model, vocab, cfg = tg.load(args.resume)     # validates the checkpoint before anything else
        check_resume_options(args, cfg)
        if args.file is not None:
            cfg.corpus = str(args.file)
    else:
        cfg = tg.TextGenConfig(level=args.level, cell=args.cell, embed_dim=args.embed, hidden_size=args.hidden,
                               num_layers=args.layers, seq_len=args.seq_len, batch=args.batch,
                               val_frac=args.val_frac, seed=args.seed, dtype=args.dtype,
                               corpus=str(args.file) if args.file is not None else tg.DEFAULT_CORPUS,
                               tie_weights=args.tie, max_vocab=args.max_vocab, min_count=args.min_count,
                               variational=args.variational, **dropouts_from_args(args))
    if cfg.corpus == tg.DEFAULT_CORPUS:
        data = tg.default_corpus()
        if cfg.level == "byte":
            data = data.encode("utf-8")
    else:
        data = tg.read_corpus(cfg.corpus, "byte" if cfg.level == "byte" else "char")
    digest = tg.corpus_digest(data)
    if args.resume is not None and cfg.corpus_sha256 and digest != cfg.corpus_sha256:
        raise UserError(f"the text {cfg.corpus!r} differs from the one the resumed run was trained on")
    cfg.corpus_sha256 = digest
    model, vocab, metrics = tg.train(data, cfg, train_cfg, out_dir=out, resume=args.resume, vocab=vocab, log=_log)
    if cfg.level == "word":
        v, score = metrics["val_perplexity"], f"perplexity {metrics['train_perplexity']:.2f}"
        val = f", validation perplexity {v:.2f}" if v is not None else ""
    else:
        v, score = metrics["val_bits_per_char"], f"{metrics['train_bits_per_char']:.3f} bits/{cfg.level}"
        val = f", validation {v:.3f} bits/{cfg.level}" if v is not None else ""
    _log(f"rnnkit textgen: {metrics['steps']} steps, {metrics['tokens_seen']:,} {cfg.level}s in "
         f"{metrics['train_seconds']:.0f} s ({metrics['tokens_per_s']:,.0f}/s); train {score}{val}; saved to {out}")
    if args.sample_length:
        _log(f"--- sample (temperature {args.temperature}; more with: rnnkit textgen sample {out}) ---")
        for piece in tg.generate(model, vocab, args.sample_length, args.temperature, seed=args.seed):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    return 0


def run_sample(args) -> int:
    from ..tasks import textgen as tg

    model, vocab, cfg = tg.load(args.dir)
    prime_ids = tg.encode_prime(vocab, args.prime, args.unknown, warn=_log)
    temperature = 0.0 if args.greedy else args.temperature
    shown_prime = vocab.decoder()(prime_ids) if args.prime else ""     # word level: as tokenised
    sys.stdout.write(shown_prime)
    for piece in tg.generate(model, vocab, args.length, temperature, args.top_k, prime_ids, args.seed):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
