"""Fixed and slow points of a recurrent layer, and their linearisation (Sussillo & Barak 2013, "Opening
the black box: low-dimensional dynamics in high-dimensional recurrent neural networks").

With the input held at a constant x*, a layer is the map s -> F(s, x*) on its state s (h for RNN
and GRU, s = [h; c] for LSTM, S = H or 2H). Its fixed points solve F(s) = s; Sussillo & Barak find
them, and slow points, by minimising

    q(s) = 1/2 ||F(s, x*) - s||^2

from many states the network visits on real inputs. Here each candidate is minimised by
Levenberg-Marquardt on the residual r = F(s) - s with the exact step Jacobian J = dF/ds, A = J - I:

    s <- s - (A^T A + lam I)^{-1} A^T r     (lam halves after a step that lowers q, grows x10 otherwise)

which is Gauss-Newton on q far from trouble and gradient descent (grad q = A^T r) near singular A.
The Jacobians come from `diagnostics.jacobians` (closed forms of the cells' step equations, checked
against finite differences of `rnnkit.cells` in the tests). A point is *fixed* when q < `q_tol`;
its eigenvalues of J say stable (all |lambda| < 1), saddle (some > 1: the unstable directions) or
marginal (|lambda| within `marginal_tol` of 1: the flat direction of a line or plane attractor, a
continuum of fixed points along which a value is held, as in the adding problem).

Shapes: K candidates/points, S state size, T time, B batch, D input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .jacobians import CELLS, _cell_kind


def _params(layer) -> dict:
    if layer.num_layers != 1 or layer.bidirectional:
        raise ValueError("fixed points need a one-layer, one-direction RNN/LSTM/GRU layer")
    return {k[:-3]: v.astype(np.float64) for k, v in layer.params.items() if k.endswith("_l0")}


def _split(kind: str, s: np.ndarray, H: int) -> tuple:
    return (s[:, :H], s[:, H:]) if kind == "LSTM" else (s,)


def step_and_jacobian(layer, s: np.ndarray, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """F(s, x) (K, S) and J = dF/ds (K, S, S) for states s (K, S) and one input x (D,) (default 0)."""
    kind = _cell_kind(layer)
    p = _params(layer)
    H = layer.hidden_size
    s = np.asarray(s, dtype=np.float64)
    xk = np.broadcast_to(np.zeros(layer.input_size) if x is None else np.asarray(x, dtype=np.float64),
                         (s.shape[0], layer.input_size))
    kw = {"nonlinearity": layer.cell_kwargs.get("nonlinearity", "tanh")} if kind == "RNN" else {}
    terms = CELLS[kind][0](p, xk, _split(kind, s, H), np.zeros((s.shape[0], H)), s.shape[0], **kw)
    return np.concatenate(terms.state, axis=1), terms.J


def trajectory(layer, x: np.ndarray, state0=None) -> np.ndarray:
    """The states s_1..s_T (T, B, S) the layer visits on inputs x (T, B, D) from state0 (B, S; 0)."""
    kind = _cell_kind(layer)
    p = _params(layer)
    H = layer.hidden_size
    S = H * CELLS[kind][2]
    x = np.asarray(x, dtype=np.float64)
    s = np.zeros((x.shape[1], S)) if state0 is None else np.asarray(state0, dtype=np.float64)
    kw = {"nonlinearity": layer.cell_kwargs.get("nonlinearity", "tanh")} if kind == "RNN" else {}
    out = []
    for t in range(x.shape[0]):
        terms = CELLS[kind][0](p, x[t], _split(kind, s, H), np.zeros((x.shape[1], H)), 0, **kw)
        s = np.concatenate(terms.state, axis=1)
        out.append(s)
    return np.stack(out)


@dataclass
class FixedPoints:
    """Distinct points found, one row each."""
    states: np.ndarray          # (K, S)
    q: np.ndarray               # (K,) 1/2 ||F(s) - s||^2
    eigenvalues: np.ndarray     # (K, S) complex, of J at the point, by decreasing |lambda|
    fixed: np.ndarray           # (K,) bool: q < q_tol (the others are slow points)
    x: np.ndarray               # (D,) the constant input
    marginal_tol: float = 1e-3  # | |lambda| - 1 | below this: a marginal direction (line attractor)

    @property
    def n_unstable(self) -> np.ndarray:
        return (np.abs(self.eigenvalues) > 1.0 + self.marginal_tol).sum(1)

    @property
    def n_marginal(self) -> np.ndarray:
        return (np.abs(np.abs(self.eigenvalues) - 1.0) <= self.marginal_tol).sum(1)

    @property
    def stable(self) -> np.ndarray:
        """Fixed, no unstable and no marginal direction: an isolated attractor."""
        return self.fixed & (self.n_unstable == 0) & (self.n_marginal == 0)

    def to_dict(self) -> dict:
        return {"states": self.states.tolist(), "q": self.q.tolist(), "fixed": self.fixed.tolist(),
                "stable": self.stable.tolist(), "n_unstable": self.n_unstable.tolist(),
                "n_marginal": self.n_marginal.tolist(), "marginal_tol": self.marginal_tol,
                "max_abs_eigenvalue": np.abs(self.eigenvalues[:, 0]).tolist(),
                "eigenvalues_top": [[[float(v.real), float(v.imag)] for v in e[:5]] for e in self.eigenvalues],
                "x": self.x.tolist()}


def minimize_q(layer, s0: np.ndarray, x=None, max_iters: int = 200, lam: float = 1e-2,
               q_stop: float = 1e-20) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on q from each row of s0 (K, S). Returns (states (K, S), q (K,))."""
    s = np.array(s0, dtype=np.float64)
    K, S = s.shape
    eye = np.eye(S)
    F, J = step_and_jacobian(layer, s, x)
    r = F - s
    q = 0.5 * (r * r).sum(1)
    lam = np.full(K, lam)
    for _ in range(max_iters):
        live = q > q_stop
        if not live.any():
            break
        A = J[live] - eye                                                    # (k, S, S)
        At = A.transpose(0, 2, 1)
        g = np.einsum("kij,kj->ki", At, r[live])                             # A^T r = grad q
        step = np.linalg.solve(At @ A + lam[live, None, None] * eye, g[..., None])[..., 0]
        trial = s[live] - step
        Ft, Jt = step_and_jacobian(layer, trial, x)
        rt = Ft - trial
        qt = 0.5 * (rt * rt).sum(1)
        better = qt < q[live]
        idx = np.flatnonzero(live)
        acc = idx[better]
        s[acc], J[acc], r[acc], q[acc] = trial[better], Jt[better], rt[better], qt[better]
        lam[acc] = np.maximum(lam[acc] * 0.5, 1e-12)
        lam[idx[~better]] *= 10.0
    return s, q


def find_fixed_points(layer, initial_states: np.ndarray, x=None, *, noise: float = 0.0, seed=None,
                      max_iters: int = 200, q_tol: float = 1e-10, unique_tol: float = 1e-3,
                      keep_slow: bool = False) -> FixedPoints:
    """Fixed (and with `keep_slow`, slow) points reached from `initial_states` (K, S).

    `noise` adds Gaussian noise of that standard deviation to the starts (it also finds the saddles
    between attractors, which states on real trajectories rarely start next to). Points closer than
    `unique_tol` (max-norm) are merged, keeping the lowest q."""
    s0 = np.asarray(initial_states, dtype=np.float64)
    if s0.ndim != 2:
        raise ValueError(f"initial_states must be (K, S), got shape {s0.shape}")
    if noise:
        s0 = s0 + noise * np.random.default_rng(seed).standard_normal(s0.shape)
    s, q = minimize_q(layer, s0, x, max_iters=max_iters)
    keep = np.isfinite(q) & ((q < q_tol) | keep_slow)
    s, q = s[keep], q[keep]
    order = np.argsort(q)
    chosen = []
    for i in order:
        if all(np.max(np.abs(s[i] - s[j])) > unique_tol for j in chosen):
            chosen.append(i)
    s, q = s[chosen], q[chosen]
    _, J = step_and_jacobian(layer, s, x) if len(s) else (None, np.zeros((0,) + (s0.shape[1],) * 2))
    ev = np.linalg.eigvals(J) if len(s) else np.zeros((0, s0.shape[1]), complex)
    ev = np.take_along_axis(ev, np.argsort(-np.abs(ev), axis=1), axis=1)
    xs = np.zeros(layer.input_size) if x is None else np.asarray(x, dtype=np.float64)
    return FixedPoints(s, q, ev, q < q_tol, xs)


def pca(states: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (S,), components (k, S), explained variance ratio (k,)) of states (N, S)."""
    mean = states.mean(0)
    _, sv, vt = np.linalg.svd(states - mean, full_matrices=False)
    var = sv ** 2
    return mean, vt[:k], var[:k] / var.sum()
