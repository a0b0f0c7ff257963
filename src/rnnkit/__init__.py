"""rnnkit: recurrent neural networks (RNN, LSTM, GRU) on NumPy with exact backpropagation through time."""
from .errors import UserError
from .gradcheck import GradcheckReport, check_function, gradcheck
from .layers import GRU, LSTM, RNN, Module
from .layers.embedding import Embedding
from .layers.linear import Linear

__version__ = "0.1.0"

__all__ = ["Embedding", "GRU", "GradcheckReport", "LSTM", "Linear", "Module", "RNN", "UserError", "__version__",
           "check_function", "gradcheck"]
