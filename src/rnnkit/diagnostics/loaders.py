"""Rebuild a saved model and a batch of its own data for `rnnkit diagnose`.

A run directory holds a Trainer checkpoint (`DIR/checkpoint`, or DIR itself) whose `config.json`
names the task; `LOADERS[task](arrays, config, batch_size, seed, path=DIR)` returns the model with its weights,
a batch, the `loss_fn` for `gradient_flow` (None: the model's `loss_and_backward`) and a description.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError


def _memory(arrays, config, batch_size, seed, path=None):
    from .memory import MemoryModel
    from .memory_tasks import delayed_recall
    from ..train.checkpoint import check_config_sizes

    K = config["n_symbols"]
    check_config_sizes(path, arrays["model"], config["hidden"], 1, input_width=K + 2 if isinstance(K, int) else K)
    model = MemoryModel(config["cell"], K + 2, int(config["hidden"]), K)
    model.load_state_dict(arrays["model"])
    model.astype(np.float64)
    batch = delayed_recall(batch_size, delay=int(config["delay"]), n_symbols=K, rng=seed, dtype=np.float64)
    desc = dict(config, summary=f"{config['cell']} on delayed recall, delay {config['delay']}")
    return model, batch, None, desc


def _textgen(arrays, config, batch_size, seed, path=None):
    """A `rnnkit textgen train` run: B random windows of its corpus, the loss on the last step only
    (the next-symbol prediction at T-1), so the flow shows how far back that one prediction reaches."""
    from ..losses import softmax_cross_entropy
    from ..tasks import textgen as tg
    model, vocab, cfg = tg.load(path)
    data = tg.default_corpus() if cfg.corpus == tg.DEFAULT_CORPUS else tg.read_corpus(cfg.corpus, cfg.level)
    ids = vocab.encode(data)
    T = cfg.seq_len
    if len(ids) < T + 2:
        raise UserError(f"the corpus {cfg.corpus!r} is shorter than one window of {T + 1} symbols")
    starts = np.random.default_rng(seed).integers(0, len(ids) - T - 1, size=batch_size)
    win = np.stack([ids[s:s + T + 1] for s in starts], axis=1)        # (T+1, B)
    model.astype(np.float64)

    def loss_fn(m, batch):
        x, y = batch
        logits, _ = m.forward(x)
        loss, dl = softmax_cross_entropy(logits[-1], y[-1])
        dlogits = np.zeros_like(logits)
        dlogits[-1] = dl
        m.backward(dlogits)
        return loss

    desc = dict(cfg.to_json(), summary=f"{cfg.cell} language model, loss at the last of {T} steps")
    return model, (win[:-1], win[1:]), loss_fn, desc


LOADERS = {"memory": _memory, "textgen": _textgen}


def load_for_diagnosis(path, batch_size: int = 16, seed: int = 0):
    from ..train import load_checkpoint
    from ..train.checkpoint import checkpoint_dir
    path = Path(path)
    ck = checkpoint_dir(path)
    arrays, jsons = load_checkpoint(ck)
    config = jsons.get("config")
    task = config.get("task") if isinstance(config, dict) else None
    if task not in LOADERS:
        raise UserError(f"{str(path)!r}: cannot diagnose a model of task {task!r}; supported: "
                        f"{', '.join(sorted(LOADERS))} (a run directory of `rnnkit memory`)")
    from ..train.checkpoint import checkpoint_content

    with checkpoint_content(ck):
        return LOADERS[task](arrays, config, batch_size, seed, path=path)
