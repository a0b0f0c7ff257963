"""Composition layer: the `Module` protocol and the layers built on the math core."""
from .base import Module
from .dropout import Dropout, VariationalDropout, dropout_mask
from .embedding import Embedding
from .linear import Linear
from .recurrent import GRU, LSTM, RECURRENT_LAYERS, RNN, make_rnn

__all__ = ["GRU", "LSTM", "Dropout", "Embedding", "Linear", "Module", "RECURRENT_LAYERS", "RNN",
           "VariationalDropout", "dropout_mask", "make_rnn"]
