"""`rnnkit transcribe train|predict|build-fsdd`: CTC speech recognition from a `path,transcript` manifest."""
from __future__ import annotations

import argparse

from ..jsonio import to_json
from .common import add_train_args, positive_int, prepare_out_dir, train_config_from_args


def _eval_arg(s: str) -> tuple[str, str]:
    name, sep, path = s.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=MANIFEST.csv, got {s!r}")
    return name, path


def add_parser(sub) -> None:
    p = sub.add_parser("transcribe", help="speech recognition with CTC (manifest of path,transcript)")
    acts = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    acts.required = True

    t = acts.add_parser("train", help="train on MANIFEST.csv; writes DIR/checkpoint and DIR/metrics.json")
    t.add_argument("manifest", metavar="MANIFEST.csv")
    t.add_argument("--eval", type=_eval_arg, action="append", default=[], metavar="NAME=MANIFEST.csv",
                   help="held-out manifest(s) for CER and sequence accuracy; the first gives the validation loss")
    t.add_argument("--features", choices=["logmel", "mfcc"], default="logmel")
    t.add_argument("--n-features", type=positive_int, default=40, help="mel filters or MFCCs (default: 40)")
    t.add_argument("--stack", type=positive_int, default=3, help="frames stacked per RNN step (default: 3)")
    t.add_argument("--sample-rate", type=positive_int, default=8000,
                   help="WAVs at another rate are resampled to this (default: 8000)")
    t.add_argument("--unidirectional", action="store_true", help="forward-only RNN (default: bidirectional)")
    t.add_argument("--alphabet", default="", help="transcript symbols (default: those of the manifest)")
    t.add_argument("--batch-size", type=positive_int, default=32)
    t.add_argument("--beam", type=positive_int, default=1, help="prefix beam width for the metrics (1: greedy)")
    add_train_args(t, hidden=96, time_budget=None, eval_every=100)
    t.set_defaults(func=_train)

    r = acts.add_parser("predict", help="transcribe a WAV file with a trained model")
    r.add_argument("model_dir", metavar="DIR")
    r.add_argument("wav", metavar="FILE.wav", nargs="+")
    r.add_argument("--beam", type=positive_int, default=1, help="prefix beam width (1: greedy)")
    r.set_defaults(func=_predict)

    b = acts.add_parser("build-fsdd", help="join FSDD recordings into multi-digit utterances + manifests")
    b.add_argument("recordings", metavar="RECORDINGS_DIR")
    b.add_argument("out", metavar="OUT_DIR")
    b.add_argument("--train", type=positive_int, default=2000, help="training utterances (default: 2000)")
    b.add_argument("--test", type=positive_int, default=300, help="held-out-recording utterances")
    b.add_argument("--speaker", type=positive_int, default=300, help="held-out-speaker utterances")
    b.add_argument("--holdout-speaker", default="theo")
    b.add_argument("--min-digits", type=positive_int, default=1)
    b.add_argument("--max-digits", type=positive_int, default=4)
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_build)


def _train(args) -> int:
    from ..tasks.speech import SpeechConfig, train_speech

    cfg = SpeechConfig(sample_rate=args.sample_rate, features=args.features, n_features=args.n_features,
                       stack=args.stack, cell=args.cell, hidden=args.hidden, layers=args.layers,
                       bidirectional=not args.unidirectional, alphabet=args.alphabet,
                       dropout=SpeechConfig.dropout if args.dropout is None else args.dropout)
    train_cfg = train_config_from_args(args)
    out = prepare_out_dir(args.out)
    m = train_speech(args.manifest, out, train_cfg, cfg, dict(args.eval),
                     args.batch_size, args.beam, resume=args.resume)
    print(to_json({k: m[k] for k in ("steps", "train_seconds", "final_train_loss", "eval")}, indent=None))
    return 0


def _predict(args) -> int:
    from ..tasks.speech import load_speech_model, transcribe

    model, cfg = load_speech_model(args.model_dir)
    for wav in args.wav:
        text = transcribe(model, cfg, wav, args.beam)
        print(text if len(args.wav) == 1 else f"{wav}\t{text}")
    return 0


def _build(args) -> int:
    from ..errors import UserError
    from ..tasks.speech import build_fsdd_utterances

    if args.min_digits > args.max_digits:
        raise UserError(f"--min-digits {args.min_digits} exceeds --max-digits {args.max_digits}")
    out = prepare_out_dir(args.out, option="OUT_DIR")
    m = build_fsdd_utterances(args.recordings, out, args.train, args.test, args.speaker, args.min_digits,
                              args.max_digits, args.holdout_speaker, args.seed)
    for split, path in m.items():
        print(f"{split}: {path}")
    return 0
