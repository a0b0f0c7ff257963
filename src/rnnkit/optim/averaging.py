"""Iterate averaging (Polyak & Juditsky 1992) with the non-monotonic trigger of NT-ASGD (Merity et al.
2017, "Regularizing and Optimizing LSTM Language Models", AWD-LSTM).

Averaging: from the step it starts, the weights used for evaluation and saved are the mean of the
iterates after each optimiser step, kept as a running mean in place:
    n += 1;   avg += (p - avg) / n                                  (`average_update`)
(torch.optim.ASGD with lambd = 0, t0 = the start: ax += (p - ax) * 1 / n). Training itself goes on
from the last iterate p, not from the average.

Trigger (NT): averaging starts at the first validation whose loss is worse than the best loss of the
validations more than `nonmono` before it (AWD-LSTM's `val > min(logs[:-nonmono])`):
    start = len(prev) > nonmono and val > min(prev[:-nonmono])      (`nt_trigger`)
"""
from __future__ import annotations

import numpy as np


def nt_trigger(prev: list, val: float, nonmono: int) -> bool:
    """Start averaging now? `prev` the validation losses before `val`, oldest first."""
    return len(prev) > nonmono and val > min(prev[:-nonmono] if nonmono else prev)


def average_update(avg: dict[str, np.ndarray], params: dict[str, np.ndarray], n: int) -> None:
    """avg += (p - avg) / n for every parameter, in place; n counts the iterates averaged, this one included."""
    for k, p in params.items():
        a = avg[k]
        a += (p - a) / n
