"""`rnnkit names train|sample`: a surname generator conditioned on the language (one-to-many)."""
from __future__ import annotations

from ..jsonio import to_json

from .common import add_train_args, fraction, positive_int, prepare_out_dir, train_config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("names", help="generate surnames for a language (vector -> sequence)")
    acts = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    acts.required = True
    t = acts.add_parser("train", help="train on a folder of <Language>.txt files; writes DIR/metrics.json")
    t.add_argument("folder", metavar="NAMES_DIR")
    t.add_argument("--condition", choices=["state", "input"], default="state",
                   help="the language sets the initial state, or is fed at every step (default: state)")
    t.add_argument("--embed", type=positive_int, default=32)
    t.add_argument("--test-fraction", type=fraction, default=0.1)
    t.add_argument("--batch-size", type=positive_int, default=64)
    add_train_args(t, hidden=64, eval_every=200)
    t.set_defaults(func=_train)
    s = acts.add_parser("sample", help="sample surnames for a language")
    s.add_argument("model_dir", metavar="DIR")
    s.add_argument("--language", required=True)
    s.add_argument("-n", type=positive_int, default=5, help="how many (default: 5)")
    s.add_argument("--temperature", type=float, default=0.8, help="0: greedy (default: 0.8)")
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(func=_sample)


def _train(args) -> int:
    from ..errors import UserError
    from ..tasks.one_to_many import OneToManyConfig, train_names

    if args.resume:
        raise UserError("names train does not support --resume yet; train again with a larger budget")
    cfg = OneToManyConfig(embed=args.embed, hidden=args.hidden, layers=args.layers, cell=args.cell,
                          condition=args.condition,
                          dropout=OneToManyConfig.dropout if args.dropout is None else args.dropout)
    train_cfg = train_config_from_args(args)
    out = prepare_out_dir(args.out)
    m = train_names(args.folder, out, train_cfg, cfg, args.test_fraction, args.batch_size)
    print(to_json({k: m[k] for k in ("steps", "train_seconds", "test_bits_per_char")}, indent=None))
    return 0


def _sample(args) -> int:
    from ..errors import UserError
    from ..tasks.one_to_many import load_names_model, sample_names

    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {args.temperature}")
    model, cfg = load_names_model(args.model_dir)
    for name in sample_names(model, cfg, args.language, args.n, args.temperature, args.seed):
        print(name)
    return 0
