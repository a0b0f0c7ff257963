"""Trainer hooks: installed by argument or by `trainer_hooks`, and each of shard / reduce / on_evaluate used."""
import numpy as np

from rnnkit.train import TrainConfig, Trainer, TrainerHook, trainer_hooks
from test_train_trainer import make_task


class Recorder(TrainerHook):
    def __init__(self):
        self.sizes, self.vals, self.scale = [], [], 1.0

    def shard(self, batch):
        self.sizes.append(len(batch))
        return batch[: len(batch) // 2]          # train on the first half of every batch

    def reduce(self, trainer, loss, n_items):
        for g in trainer.model.grads.values():
            g *= self.scale
        return loss, n_items

    def on_evaluate(self, trainer, val_loss):
        self.vals.append((trainer.step, val_loss))


def _fit(hooks=(), **kw):
    model, carry, batches, step, ev = make_task()
    tr = Trainer(model, TrainConfig(epochs=2, lr=0.05, eval_every=3, progress=False), hooks=hooks, **kw)
    return tr.fit(batches, step, ev, carry)


def test_hooks_see_every_step_and_validation():
    rec = Recorder()
    tr = _fit([rec])
    assert rec.sizes == [8] * 8                                   # 32 items, batches of 8, two epochs
    assert tr.items == 8 * 4                                      # the halves were trained on
    assert rec.vals == list(zip(tr.history["val_step"], tr.history["val_loss"]))


def test_reduce_changes_the_update_and_context_installs_only_inside():
    plain = _fit()
    rec = Recorder()
    rec.scale = 0.0                                               # a zero gradient: Adam leaves the weights
    with trainer_hooks(rec):
        frozen = _fit()
    after = _fit()                                                # outside the block: no hook any more
    w0 = make_task()[0].params["weight"]
    assert np.array_equal(frozen.model.params["weight"], w0)
    assert not np.array_equal(plain.model.params["weight"], w0)
    assert np.array_equal(after.model.params["weight"], plain.model.params["weight"])
    assert len(rec.sizes) == 8 and not after.hooks
