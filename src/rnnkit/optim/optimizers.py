"""Optimisers with `torch.optim` semantics, updating parameter arrays in place.

`opt.step(params, grads)` takes two dicts with the same keys (a module's `params` and `grads`) and updates
every array in `params` in place. Per-parameter state (moment buffers) is keyed by parameter name, so
`state_dict()` / `load_state_dict()` round-trip through a checkpoint. `opt.lr` is a plain attribute that
schedules set before each step. Update rules (g the gradient, p the parameter, t the step count from 1):

SGD:      g += wd p;  b = g (t = 1) else b = mu b + (1 - dampening) g;
          d = g + mu b (Nesterov) or b (momentum) or g (plain);  p -= lr d
Adam:     g += wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
AdamW:    p *= 1 - lr wd (decoupled decay, Loshchilov & Hutter 2019), then Adam with wd = 0
RMSprop:  g += wd p;  s = alpha s + (1 - alpha) g^2;  centred: a = alpha a + (1 - alpha) g, d = sqrt(s - a^2) + eps
          else d = sqrt(s) + eps;  momentum: b = mu b + g / d, p -= lr b;  else p -= lr g / d
Adagrad:  clr = lr / (1 + (t - 1) lr_decay);  g += wd p;  s += g^2;  p -= clr g / (sqrt(s) + eps)
"""
from __future__ import annotations

import math

import numpy as np


class Optimizer:
    """Base class: hyper-parameters, a step counter and per-parameter state buffers."""

    #: hyper-parameter names saved in state_dict (besides lr)
    hyper: tuple[str, ...] = ()

    def __init__(self, lr: float):
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"{type(self).__name__}: lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.t = 0                                     # number of steps taken
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def step(self, params: dict, grads: dict) -> None:
        missing = set(params) - set(grads)
        if missing:
            raise ValueError(f"{type(self).__name__}.step: no gradient for {sorted(missing)}")
        self.t += 1
        for name, p in params.items():
            g = np.asarray(grads[name])
            if g.shape != p.shape:
                raise ValueError(f"{type(self).__name__}.step: gradient {name!r} has shape {g.shape}, "
                                 f"parameter has {p.shape}")
            self._update(name, p, g.astype(p.dtype, copy=False), self.state.setdefault(name, {}))

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, st: dict) -> None:
        raise NotImplementedError

    def _buf(self, st, key, p, fill=0.0):
        if key not in st:
            st[key] = np.full_like(p, fill)
        return st[key]

    def state_dict(self) -> dict:
        """{"type", "lr", "t", "hyper": {...}, "state": {param: {buffer: array}}} (arrays copied)."""
        return {"type": type(self).__name__, "lr": self.lr, "t": self.t,
                "hyper": {h: getattr(self, h) for h in self.hyper},
                "state": {n: {k: v.copy() for k, v in st.items()} for n, st in self.state.items()}}

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("type") != type(self).__name__:
            raise ValueError(f"optimizer state is for {sd.get('type')!r}, not {type(self).__name__!r}")
        self.lr, self.t = float(sd["lr"]), int(sd["t"])
        for h, v in sd.get("hyper", {}).items():
            setattr(self, h, v)
        self.state = {n: {k: np.array(v, copy=True) for k, v in st.items()} for n, st in sd["state"].items()}


class SGD(Optimizer):
    hyper = ("momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, lr=1e-2, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening == 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)

    def _update(self, name, p, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if "momentum_buffer" not in st:
                st["momentum_buffer"] = g.copy()
            else:
                b = st["momentum_buffer"]
                b *= self.momentum
                b += (1.0 - self.dampening) * g
            b = st["momentum_buffer"]
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g


class Adam(Optimizer):
    hyper = ("beta1", "beta2", "eps", "weight_decay")
    decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.eps, self.weight_decay = float(eps), float(weight_decay)

    def _update(self, name, p, g, st):
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = self._buf(st, "exp_avg", p), self._buf(st, "exp_avg_sq", p)
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        bc1 = 1.0 - self.beta1 ** self.t
        bc2 = 1.0 - self.beta2 ** self.t
        denom = np.sqrt(v)
        denom *= 1.0 / math.sqrt(bc2)
        denom += self.eps
        np.divide(m, denom, out=denom)
        denom *= self.lr / bc1
        p -= denom


class AdamW(Adam):
    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    hyper = ("alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(lr)
        self.alpha, self.eps, self.weight_decay = float(alpha), float(eps), float(weight_decay)
        self.momentum, self.centered = float(momentum), bool(centered)

    def _update(self, name, p, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self._buf(st, "square_avg", p)
        s *= self.alpha
        s += (1.0 - self.alpha) * (g * g)
        if self.centered:
            a = self._buf(st, "grad_avg", p)
            a *= self.alpha
            a += (1.0 - self.alpha) * g
            d = np.sqrt(s - a * a) + self.eps
        else:
            d = np.sqrt(s) + self.eps
        if self.momentum > 0:
            b = self._buf(st, "momentum_buffer", p)
            b *= self.momentum
            b += g / d
            p -= self.lr * b
        else:
            p -= self.lr * (g / d)


class Adagrad(Optimizer):
    hyper = ("lr_decay", "weight_decay", "eps", "initial_accumulator_value")

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(lr)
        self.lr_decay, self.weight_decay, self.eps = float(lr_decay), float(weight_decay), float(eps)
        self.initial_accumulator_value = float(initial_accumulator_value)

    def _update(self, name, p, g, st):
        clr = self.lr / (1.0 + (self.t - 1) * self.lr_decay)
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self._buf(st, "sum", p, self.initial_accumulator_value)
        s += g * g
        p -= clr * (g / (np.sqrt(s) + self.eps))


# name -> class, for configs and the CLI
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def make_optimizer(name: str, lr: float, **kwargs) -> Optimizer:
    """Build an optimiser from its registry name (`sgd`, `adam`, `adamw`, `rmsprop`, `adagrad`)."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}") from None
    return cls(lr=lr, **kwargs)
