"""Hopfield capacity and recall, measured: what `rnnkit hopfield` runs.

- `capacity_curve`: random +-1 patterns at load alpha = P/N; each stored pattern is the start of a
  recall and scores its final overlap m = x . xi / N. The Hebbian network keeps m ~ 1 up to
  alpha ~ 0.138 and then loses the patterns (Amit, Gutfreund & Sompolinsky 1985; at finite N the
  break is smeared around it); the pseudo-inverse rule holds to alpha -> 1; the modern network holds
  far beyond alpha = 1.
- `digit_recall`: the ten 8x8 digit prototypes of scikit-learn's `load_digits` (class means,
  binarised at their median), a fraction of pixels flipped, and what each network recalls.
"""
from __future__ import annotations

import numpy as np

from .discrete import DiscreteHopfield
from .modern import ModernHopfield


def random_patterns(P: int, N: int, rng) -> np.ndarray:
    return np.where(np.random.default_rng(rng).random((P, N)) < 0.5, -1.0, 1.0)


def _networks(N: int, beta: float, seed) -> dict:
    return {"hebbian": lambda: DiscreteHopfield(N, "hebbian", seed=seed),
            "pseudoinverse": lambda: DiscreteHopfield(N, "pseudoinverse", seed=seed),
            "modern": lambda: ModernHopfield(beta)}


def overlap(x: np.ndarray, X: np.ndarray) -> np.ndarray:
    """m = x . xi / N per row, on the sign of x (a continuous state counts by its signs)."""
    return (np.sign(x) * X).mean(-1)


def capacity_curve(N: int = 200, alphas=None, beta: float | None = None, seed: int = 0,
                   max_patterns: int = 200, flip: float = 0.0) -> dict:
    """Mean final overlap (and the fraction of patterns with m >= 0.99) at each load, per network.

    Starts from the stored patterns (with `flip` of their units flipped); each network stores the
    same patterns. At most `max_patterns` recalls are scored per load (a random subset)."""
    alphas = list(alphas if alphas is not None else
                  [0.02, 0.05, 0.08, 0.10, 0.12, 0.14, 0.16, 0.2, 0.3, 0.5, 0.8, 1.0, 2.0, 5.0])
    beta = beta if beta is not None else 8.0 / np.sqrt(N)
    rng = np.random.default_rng(seed)
    nets = _networks(N, beta, seed)
    out = {name: {"alpha": [], "mean_overlap": [], "fraction_recalled": []} for name in nets}
    for a in alphas:
        P = max(1, int(round(a * N)))
        X = random_patterns(P, N, rng)
        idx = rng.choice(P, size=min(P, max_patterns), replace=False)
        start = np.where(rng.random((len(idx), N)) < flip, -X[idx], X[idx])
        for name, make in nets.items():
            if name == "pseudoinverse" and P >= N:
                continue                        # the projection is the identity: nothing is stored
            m = overlap(make().fit(X).recall(start), X[idx])
            r = out[name]
            r["alpha"].append(P / N)
            r["mean_overlap"].append(float(m.mean()))
            r["fraction_recalled"].append(float((m >= 0.99).mean()))
    return {"N": N, "beta": beta, "flip": flip, "seed": seed, "networks": out,
            "theory": {"hebbian_capacity": 0.138, "source": "Amit, Gutfreund & Sompolinsky 1985"}}


def digit_prototypes() -> np.ndarray:
    """(10, 64) +-1: each digit class's mean 8x8 image, +1 where above its own median."""
    from sklearn.datasets import load_digits
    d = load_digits()
    means = np.stack([d.data[d.target == k].mean(0) for k in range(10)])
    return np.where(means > np.median(means, axis=1, keepdims=True), 1.0, -1.0)


def digit_recall(flip: float = 0.15, n_trials: int = 20, beta: float = 0.5, seed: int = 0,
                 digits=None) -> dict:
    """Store the digit prototypes; recall from copies with `flip` of their pixels flipped.

    Returns the fraction of trials that end exactly on the right prototype, the mean overlap with it,
    and one example (clean, corrupted, each network's recall) per digit for the plot."""
    X = digit_prototypes() if digits is None else np.asarray(digits, dtype=np.float64)
    P, N = X.shape
    rng = np.random.default_rng(seed)
    target = np.repeat(np.arange(P), n_trials)
    noisy = np.where(rng.random((len(target), N)) < flip, -X[target], X[target])
    res = {"flip": flip, "n_trials": n_trials, "beta": beta, "networks": {},
           "examples": {"clean": X.tolist(), "corrupted": noisy[::n_trials].tolist()}}
    for name, make in _networks(N, beta, seed).items():
        got = np.sign(make().fit(X).recall(noisy))
        m = overlap(got, X[target])
        res["networks"][name] = {"exact": float(np.mean(np.all(got == X[target], axis=1))),
                                 "mean_overlap": float(m.mean())}
        res["examples"][name] = got[::n_trials].tolist()
    return res


def plot_capacity(cap: dict, path) -> bool:
    from ..diagnostics.plots import _pyplot
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, r in cap["networks"].items():
        ax[0].plot(r["alpha"], r["mean_overlap"], "o-", label=name)
        ax[1].plot(r["alpha"], r["fraction_recalled"], "o-", label=name)
    for a in ax:
        a.axvline(cap["theory"]["hebbian_capacity"], color="gray", ls="--", lw=0.8, label="alpha = 0.138")
        a.set_xscale("log")
        a.set_xlabel("load alpha = P / N")
        a.legend(fontsize=7)
    ax[0].set(ylabel="mean final overlap m", title=f"recall from the stored patterns, N = {cap['N']}")
    ax[1].set(ylabel="fraction with m >= 0.99", title=f"modern: beta = {cap['beta']:.3g}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_digits(res: dict, path) -> bool:
    from ..diagnostics.plots import _pyplot
    plt = _pyplot()
    if plt is None:
        return False
    rows = ["clean", "corrupted"] + list(res["networks"])
    ex = res["examples"]
    P = len(ex["clean"])
    fig, ax = plt.subplots(len(rows), P, figsize=(P * 0.9, len(rows) * 1.0))
    for i, row in enumerate(rows):
        for j in range(P):
            a = ax[i, j]
            a.imshow(np.asarray(ex[row][j]).reshape(8, 8), cmap="gray_r", vmin=-1, vmax=1)
            a.set_xticks([])
            a.set_yticks([])
        label = row if row in ("clean", "corrupted") else f"{row}\n{res['networks'][row]['exact']:.0%} exact"
        ax[i, 0].set_ylabel(label, fontsize=7)
    fig.suptitle(f"8x8 digit prototypes, {res['flip']:.0%} of pixels flipped", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
