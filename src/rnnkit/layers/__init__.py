"""Layers: the `Module` base and the composable building blocks."""
from .base import Module
from .embedding import Embedding
from .linear import Linear

__all__ = ["Module", "Embedding", "Linear"]
