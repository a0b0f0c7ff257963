"""rnnkit: recurrent neural networks (RNN, LSTM, GRU) on NumPy with exact backpropagation through time."""
from .errors import UserError
from .gradcheck import GradcheckReport, check_function, gradcheck
from .layers import GRU, LSTM, RNN, Module

__version__ = "0.1.0"

__all__ = ["GRU", "GradcheckReport", "LSTM", "Module", "RNN", "UserError", "__version__",
           "check_function", "gradcheck"]
