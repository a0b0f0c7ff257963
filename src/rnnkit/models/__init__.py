"""Models composed from layers with one forward/backward."""
from .language_model import CELL_NAMES, RNNLanguageModel
from .sequence_net import SequenceNet

__all__ = ["CELL_NAMES", "RNNLanguageModel", "SequenceNet"]
