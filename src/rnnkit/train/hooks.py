"""Trainer hooks: a small, explicit way for code outside a task to take part in every training step.

A hook subclasses `TrainerHook` and overrides any of its methods (the rest do nothing):
    on_fresh_start(trainer)                        before the first step of a run from scratch (not
                                                   on resume: the checkpoint holds what it set)
    shard(batch) -> batch                          before `train_step`: keep this process's part
    shard_size(n) -> int                           how many of a batch's n items `shard` keeps
    reduce(trainer, loss, n_items) -> (loss, n)    after `train_step`, before clipping: combine
                                                   `trainer.model.grads` with other processes
    on_evaluate(trainer, val_loss)                 after every validation (e.g. report it to a tuner)
    before_save(trainer, path)                     before a checkpoint is written to `path`
    time_is_up(trainer) -> bool | None             whether the time budget is spent (None: the Trainer's
                                                   own clock decides), so processes agree on the step
Data-parallel training (`rnnkit.distributed`) shards and reduces; a sweep reports validation losses.

Hooks reach a Trainer in two ways: `Trainer(..., hooks=[...])`, or `with trainer_hooks(h): ...` around
code that builds its Trainer itself (a task's `train`, a CLI command). The second sets a context variable
for the block only, so nothing stays installed in the process after it.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_ACTIVE: ContextVar[tuple] = ContextVar("rnnkit_trainer_hooks", default=())


class TrainerHook:
    """Base class with the no-op defaults; subclasses override what they need."""

    def on_fresh_start(self, trainer) -> None:
        return None

    def shard(self, batch):
        return batch

    def shard_size(self, n: int) -> int:
        return n

    def reduce(self, trainer, loss, n_items):
        return loss, n_items

    def on_evaluate(self, trainer, val_loss) -> None:
        return None

    def time_is_up(self, trainer) -> bool | None:
        return None

    def before_save(self, trainer, path) -> None:
        return None


@contextmanager
def trainer_hooks(*hooks):
    """Every Trainer created inside the block also gets `hooks` (after its own)."""
    token = _ACTIVE.set(_ACTIVE.get() + tuple(hooks))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def local_batch_size(n: int) -> int:
    """The part of a global batch of n items that this process trains on, under the active hooks
    (e.g. to check the size of state carried between batches)."""
    for h in _ACTIVE.get():
        n = h.shard_size(n)
    return n


def active_hooks() -> tuple:
    """The hooks installed by the enclosing `trainer_hooks` blocks, outermost first."""
    return _ACTIVE.get()
