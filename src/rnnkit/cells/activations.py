"""Element-wise activations and their derivatives written in terms of the activation's *output*.

Backward passes only keep outputs (`h`, gate values), so derivatives are `1 - y**2` for tanh,
`y * (1 - y)` for the sigmoid and `y > 0` for ReLU; no pre-activation has to be stored.
"""
from __future__ import annotations

import numpy as np


def sigmoid(a, out=None):
    """Logistic function as 0.5 * (1 + tanh(a / 2)): no overflow warning for large |a|."""
    out = np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def tanh(a, out=None):
    return np.tanh(a, out=out)


def relu(a, out=None):
    return np.maximum(a, 0, out=out)


def dtanh(y):
    return 1.0 - y * y


def dsigmoid(y):
    return y * (1.0 - y)


def drelu(y):
    return (y > 0).astype(y.dtype)


# name -> (activation, derivative from the output); the registry the RNN cell's `nonlinearity` reads.
NONLINEARITIES = {
    "tanh": (tanh, dtanh),
    "relu": (relu, drelu),
}
