"""rnnkit: recurrent neural networks (RNN, LSTM, GRU) on NumPy with exact backpropagation through time."""
from .errors import UserError
from .layers.base import Module
from .layers.embedding import Embedding
from .layers.linear import Linear

__version__ = "0.1.0"

__all__ = ["Embedding", "Linear", "Module", "UserError", "__version__"]
