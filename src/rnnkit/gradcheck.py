"""Gradient checking by float64 central differences (cs231n's `eval_numerical_gradient_array` idea).

For a function y = f(inputs) and a *random* upstream gradient u, the scalar L = sum(u * y) has
dL/dinput = the vector-Jacobian product that `backward(u)` must return. Each input element is moved by
+-eps and (L(+) - L(-)) / (2 eps) is compared with the analytic value. A random u (not ones) catches
transposed or permuted gradients that a plain sum would hide.

The error reported per tensor is the worst element's error relative to the tensor's largest
gradient: max|analytic - numeric| / max(max|analytic|, max|numeric|). It is scale-free and does not
blow up on the many near-zero entries of, e.g., padded steps.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class GradcheckReport:
    """Worst relative error per checked tensor; `passed` compares the worst of them with `tol`."""

    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-6

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.max_error < self.tol

    def __str__(self) -> str:
        width = max((len(k) for k in self.errors), default=4)
        lines = [f"{'tensor':<{width}}  worst relative error"]
        lines += [f"{k:<{width}}  {v:.2e}{'' if v < self.tol else '  FAIL'}" for k, v in self.errors.items()]
        lines.append(f"{'max':<{width}}  {self.max_error:.2e}  ({'pass' if self.passed else 'FAIL'} at tol {self.tol:g})")
        return "\n".join(lines)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"analytic gradient has shape {analytic.shape}, numeric {numeric.shape}")
    if analytic.size == 0:
        return 0.0
    scale = max(np.abs(analytic).max(), np.abs(numeric).max())
    diff = np.abs(analytic - numeric).max()
    return 0.0 if diff == 0 else float(diff / max(scale, 1e-300))


def numeric_gradient(loss: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """dloss/darray by central differences, perturbing `array` in place (restored afterwards)."""
    grad = np.zeros(array.shape, dtype=np.float64)
    flat = array.reshape(-1)  # a view: perturbations reach whatever `loss` reads
    if not np.shares_memory(flat, array):
        raise ValueError("numeric_gradient needs a contiguous array it can perturb in place")
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        lp = loss()
        flat[i] = old - eps
        lm = loss()
        flat[i] = old
        gflat[i] = (lp - lm) / (2 * eps)
    return grad


def check_function(forward: Callable[..., object], backward: Callable[[object], dict],
                   inputs: dict[str, np.ndarray], *, seed: int = 0, eps: float = 1e-6,
                   tol: float = 1e-6) -> GradcheckReport:
    """Check any function's analytic gradients.

    forward(**inputs) -> an array or a tuple of arrays; backward(upstream) -> {name: gradient} for any
    subset of `inputs`, where `upstream` has the structure of forward's output. `inputs` are float64
    arrays that are perturbed in place.
    """
    rng = np.random.default_rng(seed)
    out = forward(**inputs)
    outs = out if isinstance(out, tuple) else (out,)
    ups = tuple(rng.standard_normal(np.shape(o)) for o in outs)
    analytic = backward(ups if isinstance(out, tuple) else ups[0])

    def loss() -> float:
        o = forward(**inputs)
        o = o if isinstance(o, tuple) else (o,)
        return float(sum(np.sum(a * u) for a, u in zip(o, ups)))

    report = GradcheckReport(tol=tol)
    for name, grad in analytic.items():
        report.errors[name] = relative_error(grad, numeric_gradient(loss, inputs[name], eps))
    return report


def gradcheck(layer, x, state=None, lengths=None, dstate: bool = True, *, seed: int = 0,
              eps: float = 1e-6, tol: float = 1e-6) -> GradcheckReport:
    """Check a recurrent layer's BPTT: every parameter, the input and (if given) the initial state.

    The layer is copied and converted to float64 (the caller's layer is untouched). Dropout is switched
    off (eval mode) because a new mask per call would make the finite differences meaningless.
    `dstate=True` also sends a random gradient into the final state. Returns a `GradcheckReport`;
    `print(report)` shows the table.
    """
    layer = copy.deepcopy(layer).astype(np.float64).eval()
    x = np.array(x, dtype=np.float64)
    n_states = layer.cell.N_STATES
    if state is not None:
        state = tuple(np.array(s, dtype=np.float64) for s in (state if n_states == 2 else (state,)))
    pack = (lambda s: s) if n_states == 2 else (lambda s: s[0])

    def forward(**arrays):
        st = None if state is None else pack(tuple(arrays[f"state[{i}]"] for i in range(n_states)))
        out, fin = layer.forward(arrays["x"], st, lengths)
        fin = fin if n_states == 2 else (fin,)
        return (out, *fin) if dstate else out

    def backward(ups):
        dout, dfin = (ups[0], pack(ups[1:])) if dstate else (ups, None)
        forward(**inputs)                                            # re-cache at the unperturbed point
        dx, dst0 = layer.backward(dout, dfin)
        dst0 = dst0 if n_states == 2 else (dst0,)
        grads = {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}
        if state is not None:
            grads.update({f"state[{i}]": dst0[i] for i in range(n_states)})
        return grads

    inputs = {"x": x, **layer.params}
    if state is not None:
        inputs.update({f"state[{i}]": s for i, s in enumerate(state)})
    return check_function(forward, backward, inputs, seed=seed, eps=eps, tol=tol)
