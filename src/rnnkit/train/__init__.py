"""Training: `TrainConfig`, the `Trainer` loop and its hooks and atomic safetensors + JSON checkpoints."""
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .hooks import TrainerHook, trainer_hooks
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "TrainerHook", "trainer_hooks", "load_checkpoint", "save_checkpoint"]
