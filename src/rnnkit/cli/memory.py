"""`rnnkit memory`: how far back each cell remembers, measured on delayed recall."""
from __future__ import annotations


from ..errors import UserError
from ..jsonio import write_json
from .common import prepare_out_dir


def _int_list(s: str, name: str) -> list[int]:
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name} must be comma-separated integers, got {s!r}") from None
    if not vals or min(vals) < 0:
        raise UserError(f"--{name} needs at least one integer >= 0, got {s!r}")
    return vals


def add_parser(sub):
    p = sub.add_parser("memory", help="train RNN/LSTM/GRU on delayed recall at several delays; "
                       "report the longest delay each solves",
                       description="Trains each cell on each delay (an equal share of --budget each), "
                       "scores held-out accuracy, writes OUT/memory.json and OUT/memory.png.")
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated: rnn, lstm, gru")
    p.add_argument("--delays", default="5,10,20,50,100", help="comma-separated delays in steps")
    p.add_argument("--budget", type=float, default=300.0, help="total seconds for all runs (default 300)")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--symbols", type=int, default=4, help="symbols to remember (chance = 1/symbols)")
    p.add_argument("--threshold", type=float, default=0.9, help="held-out accuracy that counts as solved")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 0.003)")
    p.add_argument("--optimizer", default="adam", help="adam (default), sgd, rmsprop, adamw, adagrad")
    p.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clipping; 0 turns it off")
    p.add_argument("--radius", type=float, default=None,
                   help="rescale each recurrent weight block to this spectral radius at init "
                   "(e.g. 3 for the exploding regime)")
    p.add_argument("--nonlinearity", choices=["tanh", "relu"], default="tanh", help="plain RNN only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..diagnostics.memory import CELL_CLASSES, MemoryConfig, run_memory
    from ..diagnostics.plots import plot_curves, plot_memory
    cells = [c.strip().lower() for c in args.cells.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELL_CLASSES()]
    if not cells or bad:
        raise UserError(f"--cells must list rnn, lstm or gru, got {args.cells!r}")
    delays = _int_list(args.delays, "delays")
    if not args.budget > 0:
        raise UserError(f"--budget must be > 0 seconds, got {args.budget}")
    if args.hidden < 1 or args.symbols < 2 or not 0 < args.threshold <= 1:
        raise UserError("--hidden must be >= 1, --symbols >= 2 and --threshold in (0, 1]")
    out = prepare_out_dir(args.out)
    if args.clip < 0 or (args.radius is not None and not args.radius > 0) or not args.lr > 0:
        raise UserError("--clip must be >= 0 (0: off), --radius > 0 and --lr > 0")
    cfg = MemoryConfig(hidden=args.hidden, n_symbols=args.symbols, threshold=args.threshold,
                       lr=args.lr, optimizer=args.optimizer, clip=args.clip or None, radius=args.radius,
                       nonlinearity=args.nonlinearity, seed=args.seed)
    result, runs = run_memory(cells, delays, args.budget, cfg, out_dir=out)
    write_json(out / "memory.json", result)
    print(format_table(result))
    for cell, r in result["cells"].items():
        for d, rep in r["gradient_norms"].items():
            if rep["steps"]:
                print(f"{cell} delay {d}: {len(rep['steps'])} exploding steps (first at step "
                      f"{rep['first']}); suggested --clip {rep['suggested_clip']:.3g}"
                      if rep["suggested_clip"] is not None else
                      f"{cell} delay {d}: {len(rep['steps'])} exploding steps, no healthy phase")
    curves = {f"{r.cell} d={r.delay}": r for r in runs}
    if plot_memory(result, out / "memory.png"):
        plot_curves({k: r.losses for k, r in curves.items()}, out / "training_loss.png",
                    "training loss", "delayed recall: loss per step")
        plot_curves({k: r.grad_norms for k, r in curves.items()}, out / "grad_norm.png",
                    "gradient norm before clipping", "delayed recall: gradient norm per step")
        print(f"wrote {out / 'memory.json'}, {out / 'memory.png'}, training_loss.png and grad_norm.png")
    else:
        print(f"wrote {out / 'memory.json'} (matplotlib not installed: no memory.png; "
              "pip install 'rnnkit[plot]')")
    return 0


def format_table(result: dict) -> str:
    delays = result["delays"]
    head = f"{'cell':6s}" + "".join(f"{'d=' + str(d):>8s}" for d in delays) + "  longest solved"
    lines = [f"delayed recall: held-out accuracy (solved = accuracy >= {result['threshold']}, "
             f"chance {result['chance']:.2f}), {result['budget_per_run_s']:.1f}s per run", head]
    for cell, r in result["cells"].items():
        row = "".join(f"{r['accuracy'][str(d)]:7.2f}{'*' if r['accuracy'][str(d)] >= result['threshold'] else ' '}"
                      for d in delays)
        lines.append(f"{cell:6s}{row}  {r['longest_delay_solved']}")
    return "\n".join(lines)
