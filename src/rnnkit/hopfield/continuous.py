"""The continuous Hopfield network (Hopfield 1984, "Neurons with graded response"): graded units
V = tanh(gain * u) under the ODE

    tau du/dt = -u + W V + bias

with its Lyapunov energy (R = 1, so the leak term's integral is sum_i int_0^{V_i} g^-1(v) dv)

    E(V) = -1/2 V^T W V - bias . V + sum_i [V_i atanh(V_i) + 1/2 log(1 - V_i^2)] / gain

dE/dt = -tau sum_i g'(u_i) (du_i/dt)^2 <= 0 for symmetric W, so E decreases along every trajectory
and the network settles in a minimum. Integrator: classical fourth-order Runge-Kutta with a fixed step
`dt` (in units of tau); at the default dt = 0.05 the tests see the energy fall at every step.

Shapes: N units, B states; a state is (N,) or (B, N).
"""
from __future__ import annotations

import numpy as np

from .discrete import RULES, _patterns


def energy(W: np.ndarray, bias: np.ndarray, V: np.ndarray, gain: float) -> np.ndarray:
    """Hopfield's 1984 energy of graded states V in (-1, 1): (N,) -> scalar array, (B, N) -> (B,)."""
    V = np.clip(V, -1 + 1e-15, 1 - 1e-15)
    leak = (V * np.arctanh(V) + 0.5 * np.log1p(-V * V)).sum(-1) / gain
    return -0.5 * np.einsum("...i,ij,...j->...", V, W, V) - V @ bias + leak


def velocity(W: np.ndarray, bias: np.ndarray, u: np.ndarray, gain: float, tau: float) -> np.ndarray:
    """du/dt = (-u + W tanh(gain u) + bias) / tau."""
    return (-u + np.tanh(gain * u) @ W + bias) / tau


def rk4_step(W, bias, u, gain: float, tau: float, dt: float) -> np.ndarray:
    """One classical Runge-Kutta step of the ODE."""
    k1 = velocity(W, bias, u, gain, tau)
    k2 = velocity(W, bias, u + 0.5 * dt * k1, gain, tau)
    k3 = velocity(W, bias, u + 0.5 * dt * k2, gain, tau)
    k4 = velocity(W, bias, u + dt * k3, gain, tau)
    return u + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


class ContinuousHopfield:
    """`ContinuousHopfield(n_units, rule="hebbian", gain=4.0, tau=1.0, dt=0.05)`; `fit(patterns)`,
    `recall(x, max_steps=None)` (graded V of the same shape), `trajectory(x, steps)`, `energy(V)`.
    Learned: `weight_` (N, N) from the discrete network's storage rule, `bias_` (N,) zeros."""

    def __init__(self, n_units: int, rule: str = "hebbian", gain: float = 4.0, tau: float = 1.0,
                 dt: float = 0.05):
        self.n_units, self.rule, self.gain, self.tau, self.dt = n_units, rule, gain, tau, dt

    def fit(self, patterns) -> "ContinuousHopfield":
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {sorted(RULES)}, got {self.rule!r}")
        if not (self.gain > 0 and self.tau > 0 and self.dt > 0):
            raise ValueError("gain, tau and dt must be > 0")
        X = _patterns(patterns)
        if X.shape[1] != self.n_units:
            raise ValueError(f"patterns have {X.shape[1]} units, the network {self.n_units}")
        self.weight_ = RULES[self.rule](X)
        self.bias_ = np.zeros(self.n_units)
        return self

    def energy(self, V) -> np.ndarray:
        return energy(self.weight_, self.bias_, np.asarray(V, dtype=np.float64), self.gain)

    def trajectory(self, x, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """From V(0) = x (clipped into (-1, 1)) for `steps` RK4 steps: V (steps+1, *x.shape) and the
        energy at each step (steps+1, *x.shape[:-1])."""
        V = np.clip(np.asarray(x, dtype=np.float64), -0.999, 0.999)
        if V.shape[-1] != self.n_units or V.ndim not in (1, 2):
            raise ValueError(f"x must be (N,) or (B, N) with N = {self.n_units}, got shape {V.shape}")
        u = np.arctanh(V) / self.gain
        Vs = [V]
        for _ in range(steps):
            u = rk4_step(self.weight_, self.bias_, u, self.gain, self.tau, self.dt)
            Vs.append(np.tanh(self.gain * u))
        Vs = np.stack(Vs)
        return Vs, self.energy(Vs)

    def recall(self, x, max_steps: int | None = None) -> np.ndarray:
        """V after `max_steps` RK4 steps (default 400, i.e. 20 tau at dt = 0.05); same shape as x."""
        Vs, _ = self.trajectory(x, 400 if max_steps is None else max_steps)
        return Vs[-1]
