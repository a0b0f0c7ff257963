"""Hopfield networks: recurrent associative memory, where the loop itself is the memory.

`DiscreteHopfield` (Hopfield 1982; Hebbian and pseudo-inverse storage), `ContinuousHopfield`
(Hopfield 1984; graded units, an ODE with a Lyapunov energy) and `ModernHopfield` (Ramsauer et al.
2020; the attention-form update). `experiments` measures capacity against load and recall of digits.
"""
from .continuous import ContinuousHopfield
from .discrete import RULES, DiscreteHopfield
from .modern import ModernHopfield

__all__ = ["RULES", "ContinuousHopfield", "DiscreteHopfield", "ModernHopfield"]
