"""Models composed from layers with one forward/backward."""
from .language_model import CELL_NAMES, RNNLanguageModel

__all__ = ["CELL_NAMES", "RNNLanguageModel"]
