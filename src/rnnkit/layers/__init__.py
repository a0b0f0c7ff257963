"""Composition layer: the `Module` protocol and the layers built on the math core."""
from .base import Module
from .recurrent import GRU, LSTM, RNN

__all__ = ["GRU", "LSTM", "Module", "RNN"]
