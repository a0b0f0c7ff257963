"""Tasks: data preparation, training and inference for one kind of problem each."""
