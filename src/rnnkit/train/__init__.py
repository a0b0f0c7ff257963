"""Training: `TrainConfig`, the `Trainer` loop and its hooks and atomic safetensors + JSON checkpoints."""
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .hooks import TrainerHook, trainer_hooks
from .trainer import Terminated, Trainer, saved_train_config

__all__ = ["Terminated", "TrainConfig", "Trainer", "TrainerHook", "load_checkpoint", "save_checkpoint",
           "saved_train_config", "trainer_hooks"]
