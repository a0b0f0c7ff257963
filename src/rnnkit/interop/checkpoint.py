"""Imported models as rnnkit checkpoint folders: weights in safetensors, the structure as JSON.

`rnnkit import FILE --out DIR` writes DIR with `rnnkit.train.save_checkpoint` (model.safetensors and
interop.json, written to a temporary folder and renamed); `load_imported(DIR)` rebuilds the model from
the JSON (`_common.describe`/`rebuild`), so loading runs no code from the folder.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ._common import describe, rebuild

KEY = "interop"


def save_imported(model, out_dir, source: str) -> Path:
    """Write `model` to the new checkpoint folder `out_dir`; `source` records where it came from."""
    from ..train.checkpoint import save_checkpoint

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{str(out_dir)!r} already exists and is not an empty folder; choose a new --out")
    return save_checkpoint(out_dir, {"model": model.state_dict()},
                           {KEY: {**describe(model), "source": source}})


def is_imported(path) -> bool:
    return (Path(path) / f"{KEY}.json").is_file()


def load_imported(path):
    """The model saved by `save_imported` in `path` (eval mode)."""
    from ..train.checkpoint import load_checkpoint

    arrays, jsons = load_checkpoint(path)
    if KEY not in jsons or "model" not in arrays:
        raise UserError(f"{str(path)!r} is not a folder written by 'rnnkit import'")
    model = rebuild(jsons[KEY], str(path))
    try:
        model.load_state_dict(arrays["model"])
    except ValueError as e:
        raise UserError(f"{path}: the weights do not fit the saved structure: {e}") from None
    return model.eval()
