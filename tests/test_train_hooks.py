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


class StartRecorder(TrainerHook):
    def __init__(self):
        self.starts = []

    def on_fresh_start(self, trainer):
        self.starts.append(trainer.step)


def test_fresh_start_is_seen_once_and_not_on_resume(tmp_path):
    rec = StartRecorder()
    model, carry, batches, step, ev = make_task()
    cfg = TrainConfig(steps=3, lr=0.05, progress=False, checkpoint_every=3)
    Trainer(model, cfg, out_dir=tmp_path, hooks=[rec]).fit(batches, step, ev, carry)
    assert rec.starts == [0]
    model, carry, batches, step, ev = make_task()
    more = TrainConfig(steps=6, lr=0.05, progress=False)
    tr = Trainer(model, more, hooks=[rec]).resume(tmp_path / "checkpoint", carry)
    tr.fit(batches, step, ev, carry)
    assert tr.step == 6 and rec.starts == [0]                     # the resumed run did not start afresh


def test_data_parallel_ranks_draw_dropout_masks_of_their_own():
    from types import SimpleNamespace

    import rnnkit
    from rnnkit.distributed.data_parallel import DataParallel

    def moved(rank):
        lstm = rnnkit.LSTM(3, 4, num_layers=2, dropout=0.5, weight_drop=0.5, seed=0)
        DataParallel(rank, 3, None, None).on_fresh_start(SimpleNamespace(model=lstm))
        return lstm.random_state_dict()

    base = rnnkit.LSTM(3, 4, num_layers=2, dropout=0.5, weight_drop=0.5, seed=0).random_state_dict()
    r0, r1, r2 = moved(0), moved(1), moved(2)
    assert r0 == base                                             # rank 0 is the one-process run
    for name in base:
        if name.endswith("weight_drop_rng"):                      # one mask per batch: shared, as in one process
            assert r1[name] == r2[name] == base[name], name
        else:
            assert r1[name] != base[name] and r2[name] != base[name] and r1[name] != r2[name], name
    assert any(n.endswith("weight_drop_rng") for n in base) and any(n.endswith(".dropout_rng") or n == "dropout_rng" for n in base)
    assert moved(1) == r1                                         # derived from the seed: reproducible
