"""Math core: one file per cell, each with pure forward/backward functions for one layer and one
direction over a whole sequence (`forward`, `backward`) and for one time step (`step_forward`,
`step_backward`, `step`).

Shapes: T time, B batch, D input features, H hidden size; G gates (1 RNN, 3 GRU, 4 LSTM).
Parameters use torch.nn names without the layer suffix: `weight_ih` (G*H, D), `weight_hh` (G*H, H),
`bias_ih` (G*H,), `bias_hh` (G*H,); the biases may be absent (`bias=False`).
A cell's state is always a tuple: `(h,)` for RNN and GRU, `(h, c)` for LSTM, each (B, H).
`mask` is None or a (T, B, 1) array of 0/1 in the parameters' dtype: where it is 0 the step is padding,
the state is carried through unchanged, the output is 0 and no gradient reaches the weights.
`backward(params, cache, dout, dstate, dh_seq=None)` -> `(dx, dstate0, grads)`; `dh_seq`, a (T, B, H)
array, is filled with dL/dh_t (gradient-flow diagnostics).

This package is the reference (the oracle the fast path is tested against): plain NumPy, one
expression per equation, and it imports nothing from `rnnkit.kernels`. Layers reach it, or the fused
kernels, only through `rnnkit.backends`.
"""
from . import gru, lstm, rnn

CELLS = {"rnn": rnn, "lstm": lstm, "gru": gru}

__all__ = ["CELLS", "gru", "lstm", "rnn"]
