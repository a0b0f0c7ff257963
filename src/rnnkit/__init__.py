"""rnnkit: recurrent neural networks (RNN, LSTM, GRU) on NumPy with exact backpropagation through time."""
from .backends import set_backend
from .errors import UserError
from .gradcheck import GradcheckReport, check_function, gradcheck
from .layers import GRU, LSTM, RNN, Dropout, Embedding, Linear, Module, VariationalDropout, dropout_mask

__version__ = "0.1.0"

__all__ = ["GRU", "Dropout", "Embedding", "GradcheckReport", "LSTM", "Linear", "Module", "RNN", "UserError",
           "__version__", "check_function", "gradcheck", "set_backend", "side_by_side",
           "SequenceClassifier", "Forecaster", "VariationalDropout", "dropout_mask"]

# Task estimators load lazily (PEP 562): SequenceClassifier picks up scikit-learn's base classes when
# that is installed, and `import rnnkit` should not pay for importing it.
# `side_by_side` lives with the fused kernels, which `import rnnkit` does not load.
_LAZY = {"SequenceClassifier": ".tasks.classify", "Forecaster": ".tasks.forecast",
         "side_by_side": ".kernels._parallel"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
