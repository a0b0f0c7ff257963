"""`rnnkit fixedpoints DIR`: fixed and slow points of a saved recurrent model, with a PCA plot."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..jsonio import write_json
from .common import prepare_out_dir


def add_parser(sub):
    p = sub.add_parser("fixedpoints", help="fixed points of a trained RNN/LSTM/GRU (Sussillo & Barak 2013), "
                       "their stability, and a PCA plot of trajectories and points",
                       description="Loads the model saved in DIR (a run directory of `rnnkit memory`, e.g. "
                       "OUT/lstm, or one made with --train), minimises q(s) = 1/2 ||F(s) - s||^2 from states "
                       "visited on its task with the input held at 0, and writes OUT/fixedpoints.json and "
                       "OUT/fixedpoints.png. With --train CELL and no model in DIR it first trains CELL on "
                       "the 3-bit flip-flop task into DIR.")
    p.add_argument("dir", metavar="DIR", help="run directory with a saved model (or where --train saves one)")
    p.add_argument("--out", default=None, help="output directory (default: DIR)")
    p.add_argument("--train", choices=["rnn", "lstm", "gru"], default=None,
                   help="train this cell on the 3-bit flip-flop into DIR first (if DIR has no model)")
    p.add_argument("--hidden", type=int, default=16, help="--train: hidden units (default 16)")
    p.add_argument("--steps", type=int, default=1500, help="--train: most training steps (default 1500; "
                   "it stops when the test MSE is below 0.01)")
    p.add_argument("--candidates", type=int, default=512, help="start states sampled from trajectories")
    p.add_argument("--noise", type=float, default=0.02, help="std of the noise added to the start states")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def train_flipflop(cell: str, out: Path, hidden: int, steps: int, seed: int) -> None:
    from ..diagnostics.memory import CELL_RECIPES, MemoryConfig, build_model, train_stage
    cfg = MemoryConfig(task="flipflop", hidden=hidden, threshold=0.01, max_steps=steps, n_val=128,
                       n_eval=256, seed=seed)
    model = build_model(cell, cfg)
    lr = 1e-2 if cell != "rnn" else CELL_RECIPES["rnn"]["lr"] * 3
    run = train_stage(model, 50, 3600.0, cfg, lr, out_dir=out, max_steps=steps)
    print(f"trained {cell} (hidden {hidden}, lr {lr:g}) on the 3-bit flip-flop, T = 50: {run.steps} steps, "
          f"{run.seconds:.1f}s, test MSE {run.score:.4f}")


def run(args) -> int:
    import numpy as np

    from ..diagnostics.fixed_points import find_fixed_points, trajectory
    from ..diagnostics.loaders import load_for_diagnosis
    src = Path(args.dir)
    if args.candidates < 1 or args.noise < 0 or args.hidden < 1 or args.steps < 1:
        raise UserError("--candidates, --hidden and --steps must be >= 1 and --noise >= 0")
    out = prepare_out_dir(args.out) if args.out else None      # checked before anything is trained
    has_model = (src / "checkpoint").is_dir() or (src / "manifest.json").is_file()
    if not has_model:
        if args.train is None:
            raise UserError(f"{src} holds no saved model; give a run directory of `rnnkit memory` "
                            "or add --train gru to train one on the 3-bit flip-flop")
        prepare_out_dir(src, option="DIR")
        train_flipflop(args.train, src, args.hidden, args.steps, args.seed)
    model, batch, _, desc = load_for_diagnosis(src, 64, args.seed)
    if not hasattr(model, "rnn") or not hasattr(batch, "x"):
        raise UserError(f"{src}: fixed points need a `rnnkit memory` or flip-flop run (got {desc.get('task')})")
    layer = model.rnn
    traj = trajectory(layer, batch.x)                                      # (T, B, S)
    T, B, S = traj.shape
    flat = traj.reshape(T * B, S)
    rng = np.random.default_rng(args.seed)
    starts = flat[rng.choice(len(flat), size=min(args.candidates, len(flat)), replace=False)]
    fp = find_fixed_points(layer, starts, noise=args.noise, seed=args.seed)
    H = layer.hidden_size
    readout = model.head.forward(fp.states[:, :H]) if len(fp.states) else np.zeros((0, 1))
    res = {"model": desc, "state_size": S, "candidates": len(starts), "noise": args.noise,
           "points": fp.to_dict(), "readout": readout.tolist(),
           "n_fixed": int(fp.fixed.sum()), "n_stable": int(fp.stable.sum()),
           "n_saddles": int((fp.fixed & (fp.n_unstable > 0)).sum()),
           "n_marginal": int((fp.fixed & (fp.n_unstable == 0) & (fp.n_marginal > 0)).sum())}
    out = out or src
    write_json(out / "fixedpoints.json", res)
    print(f"{desc.get('summary', '')}: state size {S}; {res['n_fixed']} fixed points from {len(starts)} starts "
          f"(input 0): {res['n_stable']} stable, {res['n_saddles']} saddles, {res['n_marginal']} marginal "
          f"(|lambda| within {fp.marginal_tol:g} of 1: a line/plane attractor)")
    for k in range(min(len(fp.q), 20)):
        kind = ("stable" if fp.stable[k] else f"{fp.n_unstable[k]} unstable mode(s)" if fp.n_unstable[k]
                else f"{fp.n_marginal[k]} marginal mode(s)")
        print(f"  q {fp.q[k]:.1e}  max |lambda| {abs(fp.eigenvalues[k, 0]):.3f}  {kind:20s} "
              f"read-out {np.array2string(readout[k], precision=2)}")
    if len(fp.q) > 20:
        print(f"  ... {len(fp.q) - 20} more in fixedpoints.json")
    if plot_fixed_points(traj, fp, out / "fixedpoints.png", desc.get("summary", "")):
        print(f"wrote {out / 'fixedpoints.json'} and {out / 'fixedpoints.png'}")
    else:
        print(f"wrote {out / 'fixedpoints.json'} (matplotlib not installed: no plot; pip install 'rnnkit[plot]')")
    return 0


def plot_fixed_points(traj, fp, path, title: str = "") -> bool:
    """Trajectories (grey) and points (black dots stable, red crosses saddles) on the top 3 PCs."""
    import numpy as np

    from ..diagnostics.fixed_points import pca
    from ..diagnostics.plots import _pyplot
    plt = _pyplot()
    if plt is None:
        return False
    T, B, S = traj.shape
    k = min(3, S)
    mean, comp, ratio = pca(traj.reshape(T * B, S), k)
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d") if k == 3 else fig.add_subplot()
    proj = lambda a: (a - mean) @ comp.T                                 # noqa: E731  (n, k)
    for b in range(min(B, 12)):
        p = proj(traj[:, b])
        ax.plot(*p.T, color="0.6", lw=0.5)
    pts = proj(fp.states) if len(fp.states) else np.zeros((0, k))
    st = fp.stable
    ax.scatter(*pts[st].T, color="black", s=40, label=f"stable ({int(st.sum())})")
    sad = fp.fixed & (fp.n_unstable > 0)
    ax.scatter(*pts[sad].T, color="red", marker="x", s=40, label=f"unstable ({int(sad.sum())})")
    mar = fp.fixed & (fp.n_unstable == 0) & ~st
    if mar.any():
        ax.scatter(*pts[mar].T, color="tab:blue", marker=".", s=12, label=f"marginal ({int(mar.sum())})")
    lab = [f"PC{i + 1} ({ratio[i]:.0%})" for i in range(k)]
    ax.set_xlabel(lab[0])
    if k > 1:
        ax.set_ylabel(lab[1])
    if k == 3:
        ax.set_zlabel(lab[2])
    ax.legend(fontsize=8)
    ax.set_title(f"fixed points, input 0\n{title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
