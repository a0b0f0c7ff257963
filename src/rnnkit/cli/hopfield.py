"""`rnnkit hopfield`: Hopfield capacity against load, and recall of corrupted 8x8 digits."""
from __future__ import annotations

from ..errors import UserError
from ..jsonio import write_json
from .common import prepare_out_dir


def add_parser(sub):
    p = sub.add_parser("hopfield", help="Hopfield networks: capacity against load alpha = P/N and recall "
                       "of corrupted digits (Hebbian, pseudo-inverse, modern)",
                       description="Writes OUT/hopfield.json, OUT/capacity.png and OUT/digits.png.")
    p.add_argument("--units", type=int, default=200, help="N for the random-pattern capacity curve")
    p.add_argument("--alphas", default=None, help="comma-separated loads P/N (default 0.02 .. 5)")
    p.add_argument("--beta", type=float, default=None,
                   help="modern network's inverse temperature for the capacity curve (default 8/sqrt(N))")
    p.add_argument("--flip", type=float, default=0.15, help="fraction of digit pixels flipped (default 0.15)")
    p.add_argument("--digit-beta", type=float, default=0.5, help="modern network's beta on the digits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..hopfield.experiments import capacity_curve, digit_recall, plot_capacity, plot_digits
    alphas = None
    if args.alphas is not None:
        try:
            alphas = [float(a) for a in args.alphas.split(",") if a.strip()]
        except ValueError:
            raise UserError(f"--alphas must be comma-separated numbers, got {args.alphas!r}") from None
        if not alphas or min(alphas) <= 0:
            raise UserError(f"--alphas needs loads > 0, got {args.alphas!r}")
    if args.units < 2:
        raise UserError(f"--units must be >= 2, got {args.units}")
    if not 0 <= args.flip < 1:
        raise UserError(f"--flip must be a fraction in [0, 1), got {args.flip}")
    if (args.beta is not None and not args.beta > 0) or not args.digit_beta > 0:
        raise UserError("--beta and --digit-beta must be > 0")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise UserError("the digits need scikit-learn: pip install scikit-learn") from None
    out = prepare_out_dir(args.out)
    cap = capacity_curve(args.units, alphas, beta=args.beta, seed=args.seed)
    dig = digit_recall(flip=args.flip, beta=args.digit_beta, seed=args.seed)
    print(f"capacity, N = {cap['N']}: mean final overlap from the stored patterns")
    for name, r in cap["networks"].items():
        print(f"  {name:13s} " + "  ".join(f"{a:.2f}:{m:.2f}" for a, m in zip(r["alpha"], r["mean_overlap"])))
    print(f"digits, {dig['flip']:.0%} of pixels flipped, {dig['n_trials']} trials per digit:")
    for name, r in dig["networks"].items():
        print(f"  {name:13s} exact recall {r['exact']:.2f}, mean overlap {r['mean_overlap']:.3f}")
    write_json(out / "hopfield.json", {"capacity": cap, "digits": dig})
    if plot_capacity(cap, out / "capacity.png") and plot_digits(dig, out / "digits.png"):
        print(f"wrote {out / 'hopfield.json'}, {out / 'capacity.png'} and {out / 'digits.png'}")
    else:
        print(f"wrote {out / 'hopfield.json'} (matplotlib not installed: no plots; pip install 'rnnkit[plot]')")
    return 0
