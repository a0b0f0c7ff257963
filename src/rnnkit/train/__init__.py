"""Training: `TrainConfig`, the `Trainer` loop and atomic safetensors + JSON checkpoints."""
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .trainer import Terminated, Trainer, saved_train_config

__all__ = ["Terminated", "TrainConfig", "Trainer", "load_checkpoint", "save_checkpoint", "saved_train_config"]
