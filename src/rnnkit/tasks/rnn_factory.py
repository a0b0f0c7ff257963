"""Recurrent layer by cell name, a registry over the core's RNN, LSTM and GRU layers."""
from __future__ import annotations


def make_rnn(cell: str, input_size: int, hidden_size: int, **kwargs):
    """`make_rnn("lstm"|"gru"|"rnn", D, H, num_layers=..., bidirectional=..., dtype=..., seed=...)`."""
    from .. import GRU, LSTM, RNN  # the core engine's layers

    cells = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
    if cell not in cells:
        raise ValueError(f"cell must be one of {sorted(cells)}, got {cell!r}")
    return cells[cell](input_size, hidden_size, **kwargs)
