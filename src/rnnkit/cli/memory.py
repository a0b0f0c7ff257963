"""`rnnkit memory`: how long a gap each cell bridges (adding problem, copy task, delayed recall)."""
from __future__ import annotations

from ..errors import UserError
from ..jsonio import write_json
from .common import prepare_out_dir

DEFAULT_LENGTHS = "10,25,50,100,200,400,1000"


def _int_list(s: str, name: str) -> list[int]:
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name} must be comma-separated integers, got {s!r}") from None
    if not vals or min(vals) < 0:
        raise UserError(f"--{name} needs at least one integer >= 0, got {s!r}")
    return sorted(set(vals))


def add_parser(sub):
    p = sub.add_parser("memory", help="train RNN/LSTM/GRU through a curriculum of longer and longer gaps; "
                       "report the longest each solves",
                       description="Each cell trains on --task at the shortest gap until it is solved on "
                       "held-out data, then at the next, within an equal share of --budget; writes "
                       "OUT/memory.json (per cell longest_solved), OUT/memory.png, OUT/gradient_flow.{json,png} "
                       "(||dL/dh_t|| against distance for each trained cell) and OUT/<cell>/checkpoint "
                       "(for `rnnkit diagnose OUT/<cell>`).")
    p.add_argument("--task", default="adding", choices=["adding", "copy", "recall"],
                   help="adding problem (T = sequence length), copy task (T = blank steps) or delayed "
                   "recall (T = distractor steps); default adding")
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated: rnn, lstm, gru")
    p.add_argument("--lengths", "--delays", dest="lengths", default=DEFAULT_LENGTHS,
                   help=f"the curriculum of gaps T, comma-separated (default {DEFAULT_LENGTHS})")
    p.add_argument("--budget", type=float, default=540.0,
                   help="total seconds of training for all cells (default 540, an equal share each)")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch", type=int, default=32, help="sequences per training step")
    p.add_argument("--symbols", type=int, default=8, help="copy/recall: symbols (chance = 1/symbols)")
    p.add_argument("--threshold", type=float, default=None,
                   help="solved if: adding, test MSE < THRESHOLD x the trivial predictor's (default 0.01); "
                   "copy/recall, test accuracy >= THRESHOLD (default 0.9)")
    p.add_argument("--lr", type=float, default=None, help="learning rate for every cell "
                   "(default: per cell, 1e-3 rnn, 3e-3 lstm and gru)")
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
    lengths = _int_list(args.lengths, "lengths")
    if args.task == "adding" and min(lengths) < 2:
        raise UserError(f"--lengths: the adding problem needs sequences of at least 2 steps, got {min(lengths)}")
    if not args.budget > 0:
        raise UserError(f"--budget must be > 0 seconds, got {args.budget}")
    if args.hidden < 1 or args.batch < 1 or args.symbols < 2:
        raise UserError("--hidden and --batch must be >= 1 and --symbols >= 2")
    if args.threshold is not None and not 0 < args.threshold <= 1:
        raise UserError(f"--threshold must be in (0, 1], got {args.threshold}")
    if args.clip < 0 or (args.radius is not None and not args.radius > 0) or \
            (args.lr is not None and not args.lr > 0):
        raise UserError("--clip must be >= 0 (0: off), --radius > 0 and --lr > 0")
    cfg = MemoryConfig(task=args.task, hidden=args.hidden, batch_size=args.batch, n_symbols=args.symbols,
                       threshold=args.threshold, lr=args.lr, optimizer=args.optimizer,
                       clip=args.clip or None, radius=args.radius, nonlinearity=args.nonlinearity,
                       seed=args.seed)
    out = prepare_out_dir(args.out)
    from ..diagnostics.memory import TASK_SPECS
    print(f"task {cfg.task} (T = {TASK_SPECS[cfg.task].gap}), curriculum "
          f"T = {lengths}, {args.budget:g}s in all ({args.budget / len(cells):.0f}s per cell), hidden "
          f"{cfg.hidden}, batch {cfg.batch_size}, {cfg.optimizer}, clip {cfg.clip}, seed {cfg.seed}")
    result, models, runs = run_memory(cells, lengths, args.budget, cfg, out_dir=out)
    result["gradient_flow"] = flow_by_distance(models, cfg, result)
    write_json(out / "memory.json", result)
    print(format_table(result))
    for cell, r in result["cells"].items():
        for T, rep in r["gradient_norms"].items():
            if rep["steps"]:
                print(f"{cell} T={T}: {len(rep['steps'])} exploding steps (first at step {rep['first']}); "
                      f"suggested --clip {rep['suggested_clip']:.3g}" if rep["suggested_clip"] is not None
                      else f"{cell} T={T}: {len(rep['steps'])} exploding steps, no healthy phase")
    flow = result["gradient_flow"]
    curves = {cell: f["grad_norm_by_distance"] for cell, f in flow["cells"].items()}
    write_json(out / "gradient_flow.json", flow)
    if plot_memory(result, out / "memory.png"):
        plot_curves(curves, out / "gradient_flow.png", "||dL/dh_t|| / max",
                    f"{cfg.task}, T={flow['T']}: gradient against distance from the loss",
                    xlabel="distance T-1-t (steps back from the loss)")
        stages = {f"{cell} T={s.T}": s for cell, st in runs.items() for s in st}
        plot_curves({k: s.losses for k, s in stages.items()}, out / "training_loss.png", "training loss",
                    f"{cfg.task}: loss per step, each curriculum stage")
        plot_curves({k: s.grad_norms for k, s in stages.items()}, out / "grad_norm.png",
                    "gradient norm before clipping", f"{cfg.task}: gradient norm per step")
        print(f"wrote {out / 'memory.json'}, {out / 'memory.png'}, gradient_flow.json/png, "
              "training_loss.png and grad_norm.png")
    else:
        print(f"wrote {out / 'memory.json'} and gradient_flow.json (matplotlib not installed: no plots; "
              "pip install 'rnnkit[plot]')")
    return 0


def flow_by_distance(models: dict, cfg, result: dict) -> dict:
    """||dL/dh_t|| of each trained cell on one batch of the task at a common T (the longest any cell
    solved, else the shortest), against the distance from the loss, normalised by its maximum."""
    import numpy as np

    from ..diagnostics.gradient_flow import gradient_flow
    from ..diagnostics.memory import TASK_SPECS
    solved = [r["longest_solved"] for r in result["cells"].values() if r["longest_solved"] is not None]
    T = max(solved) if solved else min(result["lengths"])
    batch = TASK_SPECS[cfg.task].make(16, T, 30_000 + cfg.seed, cfg, np.float64)
    cells = {}
    for cell, model in models.items():
        (f,) = gradient_flow(model.astype(np.float64), batch)
        g = np.asarray(f.grad_norm[::-1], dtype=float)               # index = distance from the last step
        peak = g.max() if g.max() > 0 else 1.0
        cells[cell] = {"grad_norm_by_distance": (g / peak).tolist(), "mean_decay_rate": f.mean_decay_rate,
                       "horizon": f.horizon, "horizon_reaches_start": f.horizon_reaches_start}
    return {"T": int(T), "task": cfg.task, "cells": cells,
            "note": "distance 0 is the last step; for copy the loss is spread over the last steps"}


def format_table(result: dict) -> str:
    lengths = result["lengths"]
    fmt = (lambda v: f"{v:8.4f}") if result["metric"] == "mse" else (lambda v: f"{v:8.3f}")
    head = f"{'cell':6s}" + "".join(f"{'T=' + str(T):>9s}" for T in lengths) + "  longest solved"
    lines = [f"{result['task']}: test {result['metric']} at the end of each curriculum stage "
             f"(* solved: {result['solved_if']}), {result['budget_per_cell_s']:.0f}s per cell", head]
    for cell, r in result["cells"].items():
        by_T = {s["T"]: s for s in r["stages"]}
        row = "".join((fmt(by_T[T]["score"]) + ("*" if by_T[T]["solved"] else " ")) if T in by_T
                      else f"{'-':>8s} " for T in lengths)
        lines.append(f"{cell:6s}{row}  {r['longest_solved']}")
    return "\n".join(lines)
