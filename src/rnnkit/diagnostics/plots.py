"""PNG plots of the diagnostics (matplotlib is optional: `pip install rnnkit[plot]`).

Each function returns True when it wrote the file and False when matplotlib is not installed, so the
caller can say so and still write its JSON.
"""
from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_flow(flows: list[dict], path, title: str = "") -> bool:
    """Left: ||dL/dh_t|| against t (log). Right: step-Jacobian spectral radius and largest singular
    value along the trajectory, and log10 ||ds_{T-1}/ds_t||."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
    for f in flows:
        lab = f"{f['layer']} {f['cell']} {f['key']}"
        g = np.asarray(f["grad_norm"], dtype=float)
        ax[0].semilogy(np.arange(len(g)), np.where(g > 0, g, np.nan), label=lab)
        j = f.get("jacobian")
        if j:
            t = np.arange(len(j["spectral_radius"]))
            ax[1].plot(t, j["spectral_radius"], label=f"{lab} spectral radius")
            ax[1].plot(t, j["max_singular"], "--", label=f"{lab} largest singular value")
            ax[2].plot(t, j["product_log10_norm"], label=lab)
    ax[0].set(xlabel="time step t", ylabel="||dL/dh_t||", title="gradient flow")
    ax[1].axhline(1.0, color="gray", lw=0.8)
    ax[1].set(xlabel="time step t", title="step Jacobian ds_t/ds_{t-1}")
    ax[2].set(xlabel="time step t", ylabel="log10 ||ds_{T-1}/ds_t||", title="Jacobian product")
    for a in ax:
        a.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_memory(result: dict, path) -> bool:
    """Test MSE or accuracy against the gap T, one colour per cell: solid, each curriculum stage's
    score after training at that T; dashed, the final model scored at every T."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4))
    mse = result["metric"] == "mse"
    for cell, r in result["cells"].items():
        st = r["stages"]
        line, = ax.plot([s["T"] for s in st], [s["score"] for s in st], "o-",
                        label=f"{cell} (longest solved {r['longest_solved']})")
        fin = r["final_score"]
        ax.plot([int(T) for T in fin], list(fin.values()), ":", color=line.get_color(), lw=1)
    if mse:
        ax.axhline(result["threshold"] * result["trivial"], color="black", ls="--", lw=0.8, label="solved below")
        ax.axhline(result["trivial"], color="gray", ls=":", lw=0.8, label="trivial predictor")
        ax.set_yscale("log")
    else:
        ax.axhline(result["threshold"], color="black", ls="--", lw=0.8, label="solved above")
        ax.axhline(result["trivial"], color="gray", ls=":", lw=0.8, label="chance")
        ax.set_ylim(0, 1.02)
    ax.set_xscale("log")
    ax.set(xlabel=f"T ({result['gap']})", ylabel=f"test {result['metric']}",
           title=f"{result['task']}: curriculum over T, {result['budget_per_cell_s']:.0f}s per cell "
                 "(dotted: final model at every T)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_curves(curves: dict, path, ylabel: str, title: str = "", logy: bool = True,
                xlabel: str = "training step") -> bool:
    """One line per named series (e.g. loss per step with and without clipping)."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, ys in curves.items():
        ys = np.asarray(ys, dtype=float)
        ax.plot(np.arange(len(ys)), ys, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
