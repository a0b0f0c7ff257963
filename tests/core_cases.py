"""The configuration grid shared by the core engine's finite-difference and PyTorch-parity tests."""
import itertools

import numpy as np

import rnnkit

CELLS = {"rnn": rnnkit.RNN, "rnn_relu": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}
T, B, D, H = 5, 3, 3, 4
LENGTHS = [5, 2, 4]  # unsorted, one full-length, one short: exercises packing order and padding

GRID = list(itertools.product(CELLS, (1, 2), (False, True), (False, True), (False, True), (False, True)))
IDS = [f"{c}-L{l}-{'bi' if bi else 'uni'}-{'len' if ln else 'full'}-{'h0' if h0 else 'noh0'}-"
       f"{'dstate' if ds else 'nodstate'}" for c, l, bi, ln, h0, ds in GRID]


def make_layer(cell, num_layers, bidirectional, dtype=np.float64, seed=0, **kw):
    extra = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    return CELLS[cell](D, H, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype,
                       seed=seed, **extra, **kw)


def make_inputs(cell, num_layers, bidirectional, seed=1):
    rng = np.random.default_rng(seed)
    nd = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, D))
    h0 = rng.standard_normal((num_layers * nd, B, H)) * 0.5
    state = (h0, rng.standard_normal(h0.shape) * 0.5) if cell == "lstm" else h0
    return x, state
