"""Moved to `rnnkit.models.sequence_net` (a model, not a task); re-exported for old imports."""
from ..models.sequence_net import CELLS, SequenceNet, make_recurrent  # noqa: F401
