"""An ensemble of classifiers with the same inputs: the mean of their class probabilities.

    p = (1/K) sum_k softmax(z_k),   z_k = member_k.forward(x, lengths)   (B, C)
    forward returns log p, so softmax(forward(...)) = p (p sums to one) and a caller that turns logits
    into probabilities gets the averaged probabilities unchanged.
Members are children "m0", "m1", ..., so the state dict reads "m0.rnn.weight_ih_l0" and the whole
ensemble saves and loads as one model. Members are trained one by one (each its own `backward`); the
ensemble itself is for prediction only.
"""
from __future__ import annotations

import numpy as np

from ..layers.base import Module


class Ensemble(Module):
    """`Ensemble([net, ...])`: members with the same forward(x, lengths) -> logits (B, C)."""

    def __init__(self, members):
        super().__init__()
        self.members = [self.add_module(f"m{k}", m) for k, m in enumerate(members)]
        if not self.members:
            raise ValueError("Ensemble: needs at least one member")

    def forward(self, x, lengths):
        """log of the mean member probability, (B, C) float64."""
        p = 0.0
        for m in self.members:
            z = np.asarray(m.forward(x, lengths), dtype=np.float64)
            e = np.exp(z - z.max(1, keepdims=True))
            p = p + e / e.sum(1, keepdims=True)
        return np.log(np.maximum(p / len(self.members), 1e-300))

    def backward(self, dy, input_grad=True):
        raise NotImplementedError("Ensemble is for prediction; train each member on its own")
