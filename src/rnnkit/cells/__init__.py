"""Math core: one file per cell, each with pure forward/backward functions for one layer and one
direction over a whole sequence (`forward`, `backward`) and for one time step (`step_forward`,
`step_backward`, `step`).

Shapes: T time, B batch, D input features, H hidden size; G gates (1 RNN, 3 GRU, 4 LSTM).
Parameters use torch.nn names without the layer suffix: `weight_ih` (G*H, D), `weight_hh` (G*H, H),
`bias_ih` (G*H,), `bias_hh` (G*H,); the biases may be absent (`bias=False`).
A cell's state is always a tuple: `(h,)` for RNN and GRU, `(h, c)` for LSTM, each (B, H).
`mask` is None or a (T, B, 1) array of 0/1 in the parameters' dtype: where it is 0 the step is padding,
the state is carried through unchanged, the output is 0 and no gradient reaches the weights.
`hs` (keyword, optional) is a (T+1, B, H) array of any strides that `forward` writes the states into
(hs[0] = h_0) and keeps in its cache instead of a new one: a bidirectional layer passes views of one
buffer shared by both directions, so that the layer's output is that buffer and needs no copy.
"""
from . import gru, lstm, rnn

CELLS = {"rnn": rnn, "lstm": lstm, "gru": gru}

__all__ = ["CELLS", "gru", "lstm", "rnn"]
