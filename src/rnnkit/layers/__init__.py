"""Composition layer: the `Module` protocol and the layers built on the math core."""
from .base import Module
from .embedding import Embedding
from .linear import Linear
from .recurrent import GRU, LSTM, RECURRENT_LAYERS, RNN, make_rnn

__all__ = ["GRU", "LSTM", "Embedding", "Linear", "Module", "RECURRENT_LAYERS", "RNN", "make_rnn"]
