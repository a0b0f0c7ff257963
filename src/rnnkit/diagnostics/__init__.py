"""Diagnostics: gradient flow through time, Jacobian spectra, short-term memory tasks."""
from .memory_tasks import MemoryBatch, adding_problem, copy_task, delayed_recall

__all__ = ["MemoryBatch", "adding_problem", "copy_task", "delayed_recall"]
