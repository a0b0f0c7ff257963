"""`rnnkit diagnose DIR`: gradient flow and Jacobian spectra of a saved model on its own data."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..jsonio import write_json
from .common import prepare_out_dir


def add_parser(sub):
    p = sub.add_parser("diagnose", help="gradient flow through time and Jacobian spectra of a saved model",
                       description="Loads the model saved in DIR (a run directory of `rnnkit memory` or "
                       "`rnnkit textgen train`), runs one batch of its data forward and backward and "
                       "writes OUT/gradient_flow.json and OUT/gradient_flow.png.")
    p.add_argument("dir", metavar="DIR", help="directory of a saved model")
    p.add_argument("--out", default=None, help="output directory (default: DIR)")
    p.add_argument("--batch", type=int, default=16, help="sequences in the diagnostic batch")
    p.add_argument("--threshold", type=float, default=0.01,
                   help="memory horizon: steps back the gradient stays above this fraction of its max")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..diagnostics.gradient_flow import flow_to_dict, gradient_flow
    from ..diagnostics.loaders import load_for_diagnosis
    from ..diagnostics.plots import plot_flow
    src = Path(args.dir)
    if not src.is_dir():
        raise UserError(f"{src} is not a directory (expected a saved model's run directory)")
    if args.batch < 1 or not 0 < args.threshold < 1:
        raise UserError("--batch must be >= 1 and --threshold in (0, 1)")
    out = prepare_out_dir(args.out if args.out else src)
    model, batch, loss_fn, desc = load_for_diagnosis(src, args.batch, args.seed)
    flows = flow_to_dict(gradient_flow(model, batch, loss_fn=loss_fn, threshold=args.threshold))
    write_json(out / "gradient_flow.json", {"model": desc, "layers": flows})
    for f in flows:
        j = f.get("jacobian") or {}
        rho = j.get("spectral_radius") or []
        print(f"{f['layer']} {f['cell']} {f['key']}: T={len(f['grad_norm'])} "
              f"max ||dL/dh_t|| {max(f['grad_norm']):.3g}, mean decay per step back "
              f"{_fmt(f['mean_decay_rate'])}, memory horizon {f['horizon']} steps"
              f"{'+' if f['horizon_reaches_start'] else ''} (threshold {f['threshold']})"
              + (f", mean step-Jacobian spectral radius {sum(rho) / len(rho):.3f}" if rho else ""))
        for block, s in f["weights"].items():
            print(f"   W_hh[{block}]: spectral radius {s['spectral_radius']:.3f}, "
                  f"largest singular value {s['singular_values'][0]:.3f}")
    if plot_flow(flows, out / "gradient_flow.png", title=desc.get("summary", "")):
        print(f"wrote {out / 'gradient_flow.json'} and {out / 'gradient_flow.png'}")
    else:
        print(f"wrote {out / 'gradient_flow.json'} (matplotlib not installed: no plot; "
              "pip install 'rnnkit[plot]')")
    return 0


def _fmt(v):
    return "n/a" if v is None else f"{v:.3f}"
