"""Applications built from the layers and the trainer: one module per task."""
