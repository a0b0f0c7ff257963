"""`rnnkit translate train|predict`: encoder-decoder translation from a TSV of sentence pairs."""
from __future__ import annotations

from ..jsonio import to_json

from .common import add_train_args, fraction, positive_float, positive_int, prepare_out_dir, train_config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("translate", help="sequence-to-sequence translation with attention")
    acts = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    acts.required = True

    t = acts.add_parser("train", help="train on PAIRS.tsv (source<TAB>target); writes DIR/metrics.json")
    t.add_argument("pairs", metavar="PAIRS.tsv")
    t.add_argument("--test-fraction", type=fraction, default=0.05,
                   help="share of distinct source sentences held out for BLEU (default: 0.05)")
    t.add_argument("--embed", type=positive_int, default=64)
    t.add_argument("--attention", choices=["general", "dot", "none"], default="general")
    t.add_argument("--unidirectional", action="store_true", help="forward-only encoder (default: bidirectional)")
    t.add_argument("--min-freq", type=positive_int, default=1, help="rarer tokens become <unk>")
    t.add_argument("--batch-size", type=positive_int, default=64)
    t.add_argument("--beam", type=positive_int, default=1, help="beam width for the test metrics (1: greedy)")
    add_train_args(t, hidden=128, eval_every=200)
    t.set_defaults(func=_train)

    r = acts.add_parser("predict", help="translate a sentence with a trained model")
    r.add_argument("model_dir", metavar="DIR")
    r.add_argument("sentence", nargs="+")
    r.add_argument("--beam", type=positive_int, default=1, help="beam width (1: greedy)")
    r.add_argument("--length-penalty", type=positive_float, default=1.0,
                   help="beam scores are log p / length^this (default: 1.0)")
    r.set_defaults(func=_predict)


def _train(args) -> int:
    from ..tasks.translate import TranslateConfig, train_translate

    cfg = TranslateConfig(embed=args.embed, hidden=args.hidden, layers=args.layers, cell=args.cell,
                          bidirectional=not args.unidirectional, attention=args.attention, min_freq=args.min_freq,
                          dropout=TranslateConfig.dropout if args.dropout is None else args.dropout)
    train_cfg = train_config_from_args(args)
    out = prepare_out_dir(args.out)
    m = train_translate(args.pairs, out, train_cfg, cfg, args.test_fraction,
                        args.batch_size, args.beam, resume=args.resume)
    summary = {k: m.get(k) for k in ("steps", "train_seconds", "final_train_loss")}
    summary.update({k: m["test"][k] for k in ("bleu", "exact_match", "n")} if "test" in m else {})
    print(to_json(summary, indent=None))
    return 0


def _predict(args) -> int:
    from ..errors import UserError
    from ..tasks.translate import load_translator, translate_batch

    model, sv, tv, cfg = load_translator(args.model_dir)
    for s in args.sentence:
        if not s.strip():
            raise UserError("the sentence to translate is empty")
        print(translate_batch(model, sv, tv, [s], args.beam, cfg.max_len, args.length_penalty)[0])
    return 0
