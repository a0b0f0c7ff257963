"""Imported models as rnnkit checkpoint folders: weights in safetensors, the structure as JSON.

`rnnkit import FILE --out DIR` writes DIR/model with `rnnkit.train.save_checkpoint` (model.safetensors
and interop.json, written to a temporary folder and renamed); `load_imported(DIR)` (DIR or DIR/model)
rebuilds the model from the JSON (`_common.describe`/`rebuild`), so loading runs no code from the folder.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ._common import describe, rebuild

KEY = "interop"


def save_imported(model, path, source: str) -> Path:
    """Write `model` as the checkpoint folder `path` (replacing one there); `source` records where it
    came from."""
    from ..train.checkpoint import save_checkpoint

    return save_checkpoint(path, {"model": model.state_dict()}, {KEY: {**describe(model), "source": source}})


def imported_folder(path) -> Path | None:
    """The checkpoint folder of an imported model: `path` itself or path/model; None if neither."""
    for p in (Path(path), Path(path) / "model"):
        if (p / f"{KEY}.json").is_file():
            return p
    return None


def load_imported(path):
    """The model saved by `save_imported` in `path` or path/model (eval mode)."""
    from ..train.checkpoint import load_checkpoint

    path = imported_folder(path) or Path(path)
    arrays, jsons = load_checkpoint(path)
    if KEY not in jsons or "model" not in arrays:
        raise UserError(f"{str(path)!r} is not a folder written by 'rnnkit import'")
    model = rebuild(jsons[KEY], str(path))
    try:
        model.load_state_dict(arrays["model"])
    except ValueError as e:
        raise UserError(f"{path}: the weights do not fit the saved structure: {e}") from None
    return model.eval()
