"""Saving a fitted app estimator as an rnnkit checkpoint folder (safetensors + JSON) and loading it back.

Layout (via `rnnkit.train.checkpoint`): `model.safetensors` the network's state dict; `learned.safetensors`
the estimator's learned arrays (scaling, training series); `estimator.json` the class name, the
constructor arguments and the learned JSON values (classes, vocabulary). Loading rebuilds the estimator
with the same arguments, restores the learned attributes and copies the weights into a fresh network.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..train.checkpoint import check_config_sizes, checkpoint_content, load_checkpoint, save_checkpoint


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    return v


class Persist:
    """Mixin: `save(path)` and `load(path)`. Subclasses list `_LEARNED_ARRAYS`, `_LEARNED_JSON` and
    implement `_build_model()` from their learned attributes."""

    _LEARNED_ARRAYS: tuple = ()
    _LEARNED_JSON: tuple = ()

    def save(self, path):
        if not hasattr(self, "model_"):
            raise UserError(f"this {type(self).__name__} is not fitted yet; nothing to save")
        params = {k: _jsonable(v) for k, v in self.get_params().items() if k != "train_config"}
        learned = {k: np.ascontiguousarray(getattr(self, k), dtype=np.float64) for k in self._LEARNED_ARRAYS}
        info = {"class": type(self).__name__, "params": params,
                "learned": {k: _jsonable(getattr(self, k)) for k in self._LEARNED_JSON},
                "history": getattr(self, "history_", None)}
        return save_checkpoint(path, {"model": self.model_.state_dict(), **self._extra_state_dicts(),
                                      "learned": learned}, {"estimator": info})

    @classmethod
    def load(cls, path):
        arrays, jsons = load_checkpoint(path)
        info = jsons.get("estimator")
        if not isinstance(info, dict) or info.get("class") != cls.__name__:
            raise UserError(f"{path} does not hold a saved {cls.__name__} "
                            f"(found {info.get('class') if isinstance(info, dict) else 'another checkpoint'})")
        with checkpoint_content(path):
            if not isinstance(info["params"], dict) or not isinstance(info["learned"], dict):
                raise TypeError("estimator.json: params and learned must be objects")
            unknown = sorted(set(info["learned"]) - set(cls._LEARNED_JSON))
            if unknown or set(arrays.get("learned", {})) - set(cls._LEARNED_ARRAYS):
                raise ValueError(f"estimator.json: unknown learned values {unknown}")
            est = cls(**info["params"])
            for k, v in arrays.get("learned", {}).items():
                setattr(est, k, v)
            for k, v in info["learned"].items():
                setattr(est, k, v)
            est.history_ = info.get("history")
            est._restore_learned()
            check_config_sizes(path, arrays["model"], **est._saved_sizes())
            est.model_ = est._build_model()
            est.model_.load_state_dict(arrays["model"])
            est._load_extra_state_dicts(arrays)
        est.model_.eval()
        return est

    def _extra_state_dicts(self) -> dict:
        """Further networks to save beside model_ (file stem -> state dict); default: none."""
        return {}

    def _load_extra_state_dicts(self, arrays: dict) -> None:
        """Rebuild the networks `_extra_state_dicts` saved, from the checkpoint's arrays; default: nothing."""

    def _restore_learned(self):
        """Turn JSON values back into their types (e.g. lists into arrays); default: nothing."""

    def _saved_sizes(self) -> dict:
        """The sizes `_build_model` allocates from, for `check_config_sizes` (hidden, layers, others)."""
        return {}
