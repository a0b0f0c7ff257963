"""Trainer: budgets, exact resume, non-finite recovery, early stopping, checkpoints, CLI options."""
import argparse
import json

import numpy as np
import pytest

from rnnkit.cli.common import add_train_args, train_config_from_args
from rnnkit.errors import UserError
from rnnkit.layers import Linear, Module
from rnnkit.losses import mse
from rnnkit.train import TrainConfig, Trainer, load_checkpoint, save_checkpoint


class Carry:
    """State carried between batches (like a truncated-BPTT hidden state) that changes the loss."""

    def __init__(self):
        self.c = np.zeros(3)

    def state_dict(self):
        return {"c": self.c}

    def load_state_dict(self, d):
        self.c = np.array(d["c"], dtype=float)


def make_task(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((32, 3))
    Y = X @ rng.standard_normal((3, 2)) + 0.1
    model = Linear(3, 2, seed=seed).astype(np.float64)
    carry = Carry()

    def batches(epoch, rng):
        perm = rng.permutation(len(X))
        for i in range(0, len(X), 8):
            yield perm[i:i + 8]

    def step(idx):
        x = X[idx] + 0.01 * carry.c
        loss, dy = mse(model.forward(x), Y[idx])
        model.backward(dy)
        carry.c = 0.5 * carry.c + x.mean(0)
        return loss, len(idx)

    def evaluate():
        return mse(model.forward(X), Y)[0]

    return model, carry, batches, step, evaluate


def test_trainer_learns_and_counts(tmp_path):
    model, carry, batches, step, ev = make_task()
    tr = Trainer(model, TrainConfig(epochs=20, lr=0.05, eval_every=10, progress=False), out_dir=tmp_path)
    tr.fit(batches, step, ev, carry)
    h = tr.history
    assert tr.step == 80 and tr.epoch == 20 and tr.items == 640
    assert h["val_loss"][-1] < 0.1 * h["val_loss"][0]
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_matches_uninterrupted_run(tmp_path, optimizer):
    cfg = dict(lr=0.05, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0, eval_every=3,
               progress=False, seed=7)
    model, carry, batches, step, ev = make_task()
    full = Trainer(model, TrainConfig(steps=14, **cfg)).fit(batches, step, ev, carry)
    # interrupted after 6 steps (mid-epoch: 4 batches per epoch), then resumed in a fresh process state
    model, carry, batches, step, ev = make_task()
    Trainer(model, TrainConfig(steps=6, **cfg), out_dir=tmp_path).fit(batches, step, ev, carry)
    model2, carry2, b2, s2, e2 = make_task()
    model2.load_state_dict(make_task(seed=1)[0].state_dict())  # another init: resume must overwrite it
    part = Trainer(model2, TrainConfig(steps=14, **cfg)).resume(tmp_path)
    assert part.step == 6 and part.epoch == 1 and part.batch_in_epoch == 2
    part.fit(b2, s2, e2, carry2)
    assert part.history["loss"] == full.history["loss"]
    assert part.history["val_loss"] == full.history["val_loss"]
    for k, v in full.model.params.items():
        assert np.array_equal(v, model2.params[k]), k


def make_dropout_task(seed=0):
    """Every kind of dropout in one model: embedding, variational, between layers, weight-drop,
    element-wise; each draws new masks at every step, so a resume must restore their generators."""
    from rnnkit import LSTM, Dropout, Embedding, Module, VariationalDropout

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, (40, 6))                                # (N, T) sequences of tokens
    Y = rng.standard_normal((40, 2))
    model = Module()
    emb = model.add_module("emb", Embedding(7, 3, dtype=np.float64, seed=seed, dropout=0.2))
    vd = model.add_module("vd", VariationalDropout(0.3, seed=seed + 1))
    rnn = model.add_module("rnn", LSTM(3, 4, num_layers=2, dropout=0.3, weight_drop=0.4,
                                       dtype=np.float64, seed=seed + 2))
    drop = model.add_module("drop", Dropout(0.25, seed=seed + 3))
    head = model.add_module("head", Linear(4, 2, seed=seed + 4).astype(np.float64))

    def batches(epoch, rng):
        perm = rng.permutation(len(ids))
        for i in range(0, len(ids), 8):
            yield perm[i:i + 8]

    def step(idx):
        model.train()
        h, _ = rnn.forward(vd.forward(emb.forward(ids[idx].T)))     # (T, B, H)
        loss, dy = mse(head.forward(drop.forward(h[-1])), Y[idx])
        dh = np.zeros_like(h)
        dh[-1] = drop.backward(head.backward(dy))
        emb.backward(vd.backward(rnn.backward(dh)[0]))
        return loss, len(idx)

    def evaluate():
        model.eval()
        h, _ = rnn.forward(emb.forward(ids.T))
        return mse(head.forward(h[-1]), Y)[0]

    return model, batches, step, evaluate


def test_resume_with_dropout_is_bit_identical(tmp_path):
    """Stopped at step 7 (mid-epoch) and resumed into a model built with other seeds (other weights and
    other mask generators): the weights after 15 steps equal the uninterrupted run's bit for bit."""
    cfg = dict(lr=0.02, eval_every=4, progress=False, seed=3)
    model, batches, step, ev = make_dropout_task()
    full = Trainer(model, TrainConfig(steps=15, **cfg)).fit(batches, step, ev)
    model, batches, step, ev = make_dropout_task()
    Trainer(model, TrainConfig(steps=7, **cfg), out_dir=tmp_path).fit(batches, step, ev)
    saved = json.loads((tmp_path / "checkpoint" / "trainer.json").read_text())["model_random_state"]
    assert saved == model.random_state_dict() and len(saved) == 5
    model2, b2, s2, e2 = make_dropout_task(seed=10)
    part = Trainer(model2, TrainConfig(steps=15, **cfg)).resume(tmp_path)
    assert model2.random_state_dict() == saved
    part.fit(b2, s2, e2)
    assert part.history["loss"] == full.history["loss"]
    for k, v in full.model.params.items():
        assert np.array_equal(v, model2.params[k]), k
    # without the generators the resumed steps draw other masks: the check above is not vacuous
    model3, b3, s3, e3 = make_dropout_task(seed=10)
    t3 = Trainer(model3, TrainConfig(steps=15, **cfg)).resume(tmp_path)
    model3.load_random_state_dict(make_dropout_task(seed=10)[0].random_state_dict())
    t3.fit(b3, s3, e3)
    assert t3.history["loss"][7:] != full.history["loss"][7:]


def test_resume_refuses_generators_of_another_model(tmp_path):
    """Same weights, one dropout module fewer: its saved generator has no place; one UserError line."""
    model, batches, step, ev = make_dropout_task()
    Trainer(model, TrainConfig(steps=2, progress=False), out_dir=tmp_path).fit(batches, step, ev)
    other = Module()
    for name, child in model.children():
        if name != "drop":                                           # Dropout has no parameters
            other.add_module(name, child)
    assert set(other.params) == set(model.params)
    with pytest.raises(UserError, match="from another model: .*unexpected .*drop.rng"):
        Trainer(other, TrainConfig(steps=4, progress=False)).resume(tmp_path)


def test_plateau_schedule_lowers_lr_and_resumes_exactly(tmp_path):
    """A validation loss that stops improving halves the lr after `plateau_patience` + 1 flat
    validations; the plateau state is in the checkpoint, so a resumed run has the same lr at every step."""
    model, carry, batches, step, _ = make_task()
    vals = iter([5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    cfg = dict(lr=0.01, schedule="plateau", plateau_patience=1, lr_gamma=0.5, eval_every=2, progress=False)
    full = Trainer(model, TrainConfig(steps=18, **cfg)).fit(batches, step, lambda: next(vals), carry)
    lrs = full.history["lr"]
    # validations after steps 2, 4, ...: 5 4 4 4 3 3 3 3 3; lowered after the 2nd flat one (steps 8, 14)
    assert lrs[:8] == [0.01] * 8 and lrs[8:14] == [0.005] * 6 and lrs[14:] == [0.0025] * 4
    model, carry, batches, step, _ = make_task()
    vals = iter([5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    Trainer(model, TrainConfig(steps=9, **cfg), out_dir=tmp_path).fit(batches, step, lambda: next(vals), carry)
    model2, carry2, b2, s2, _ = make_task()
    part = Trainer(model2, TrainConfig(steps=18, **cfg)).resume(tmp_path)
    assert part.plateau.factor == 0.5 and part.plateau.best == 4.0
    part.fit(b2, s2, lambda: next(vals), carry2)
    assert part.history["lr"] == lrs


def test_nt_averaging_validates_and_saves_the_average(tmp_path):
    """NT-ASGD: the validation after the trigger and the model after fit hold the mean of the iterates
    since the trigger; the iterate goes on training; stopped inside the averaging and resumed, the
    average and the iterate equal the uninterrupted run's bit for bit."""
    def run(steps, out=None, resume=None):
        model, carry, batches, step, _ = make_task()
        iterates = []

        def train_step(idx):
            iterates.append({k: v.copy() for k, v in model.params.items()})  # after the previous step
            return step(idx)

        vals = [5.0, 4.0, 3.0, 4.5, 3.6, 3.7, 3.8, 3.9, 4.0]  # 4th validation (step 8) triggers
        seen = []

        def ev():
            seen.append({k: v.copy() for k, v in model.params.items()})
            return vals[len(tr.history["val_loss"])]

        cfg = TrainConfig(steps=steps, lr=0.05, optimizer="sgd", averaging="nt", nonmono=1, eval_every=2,
                          progress=False, seed=1)
        tr = Trainer(model, cfg, out_dir=out)
        if resume is not None:
            tr.resume(resume)
        tr.fit(batches, train_step, ev, carry)
        return tr, model, iterates, seen

    tr, model, iterates, seen = run(16)
    assert tr.avg_start == 8 and tr.avg_n == 8
    final_iterate = tr._iterate
    its = iterates[9:] + [final_iterate]                  # the iterates after steps 9..16
    for k, v in model.params.items():
        np.testing.assert_allclose(v, np.mean([p[k] for p in its], axis=0), rtol=1e-12, err_msg=k)
        assert not np.allclose(v, final_iterate[k])
    # the validation after step 10 saw the average of the iterates after steps 9 and 10
    np.testing.assert_allclose(seen[4]["weight"], (iterates[9]["weight"] + iterates[10]["weight"]) / 2,
                               rtol=1e-12)
    # stopped at step 12 (averaging on), resumed to 16
    run(12, out=tmp_path)
    arrays, _ = load_checkpoint(tmp_path / "checkpoint")
    assert set(arrays) >= {"model", "iterate"}
    tr2, model2, _, _ = run(16, resume=tmp_path)
    for k, v in model.params.items():
        assert np.array_equal(v, model2.params[k]), k
        assert np.array_equal(final_iterate[k], tr2._iterate[k]), k
    assert tr2.history["val_loss"] == tr.history["val_loss"]


def test_weight_decay_and_plateau_options(capsys):
    p = argparse.ArgumentParser()
    add_train_args(p, out="runs/x")
    cfg = train_config_from_args(p.parse_args(["--weight-decay", "0.01", "--optimizer", "adamw", "--schedule",
                                               "plateau", "--lr-gamma", "0.25", "--plateau-patience", "3"]))
    assert (cfg.weight_decay, cfg.optimizer, cfg.schedule, cfg.lr_gamma, cfg.plateau_patience) == \
        (0.01, "adamw", "plateau", 0.25, 3)
    tr = Trainer(Linear(2, 2), cfg)
    assert tr.optimizer.weight_decay == 0.01 and tr.optimizer.decoupled
    for bad in (["--weight-decay", "-1"], ["--lr-gamma", "0"], ["--lr-gamma", "2"], ["--plateau-patience", "x"],
                ["--dropout", "1.5"]):
        with pytest.raises(SystemExit) as e:
            p.parse_args(bad)
        assert e.value.code == 2
    with pytest.raises(UserError, match="plateau schedule needs validations"):
        TrainConfig(schedule="plateau", eval_every=0)
    with pytest.raises(UserError, match="weight-decay"):
        TrainConfig(weight_decay=float("nan"))
    assert p.parse_args([]).dropout is None and p.parse_args(["--dropout", "0.2"]).dropout == 0.2
    cfg = train_config_from_args(p.parse_args(["--averaging", "nt", "--nonmono", "3"]))
    assert (cfg.averaging, cfg.nonmono) == ("nt", 3)
    with pytest.raises(UserError, match="averaging nt needs validations"):
        TrainConfig(averaging="nt", eval_every=0)


def test_nonfinite_step_is_skipped_and_recovered(capsys):
    model, carry, batches, step, ev = make_task()
    calls = {"n": 0}

    def flaky(idx):
        calls["n"] += 1
        loss, n = step(idx)
        if calls["n"] == 5:
            model._grads["weight"][0, 0] = np.inf
        return loss, n

    tr = Trainer(model, TrainConfig(steps=10, lr=0.05, progress=False)).fit(batches, flaky)
    err = capsys.readouterr().err
    assert "non-finite" in err and "step skipped" in err and "weights restored from step 3" in err
    assert tr.step == 10 and tr.nonfinite_total == 1 and tr.lr_scale == 0.5
    assert all(np.isfinite(v).all() for v in model.params.values())
    assert tr.history["lr"][-1] == 0.025


def test_nonfinite_recovery_restores_the_optimiser_state_of_the_last_good_step(capsys):
    """The snapshot is rewritten in place at every step: what a recovery restores must still be the
    Adam moments it was taken with (before the last good step's update, as the weights: "restored from
    step 3" when step 5 fails), and not the live arrays."""
    model, carry, batches, step, ev = make_task()
    seen = {}
    tr = Trainer(model, TrainConfig(steps=8, lr=0.05, optimizer="adam", progress=False))

    def flaky(idx):
        seen["n"] = seen.get("n", 0) + 1
        if seen["n"] == 4:                              # the state the snapshot of step 4 holds
            seen["good"] = {n: {k: np.array(v, copy=True) for k, v in st.items()}
                            for n, st in tr.optimizer.state.items()}
        if seen["n"] == 6:
            seen["restored"] = {n: {k: np.array(v, copy=True) for k, v in st.items()}
                                for n, st in tr.optimizer.state.items()}
        loss, n = step(idx)
        if seen["n"] == 5:
            model._grads["weight"][0, 0] = np.inf
        return loss, n

    tr.fit(batches, flaky)
    assert "weights restored from step 3" in capsys.readouterr().err
    good, restored = seen["good"], seen["restored"]
    assert good.keys() == restored.keys() and good
    for n in good:
        for k in good[n]:
            assert np.array_equal(good[n][k], restored[n][k]), (n, k)
    live = [v for st in tr.optimizer.state.values() for v in st.values() if isinstance(v, np.ndarray)]
    snap = [v for st in tr._snapshot["opt"].values() for v in st.values() if isinstance(v, np.ndarray)]
    assert not any(np.shares_memory(a, b) for a in live for b in snap)


def test_diverging_run_stops_with_a_clear_error():
    model, carry, batches, step, ev = make_task()
    with pytest.raises(UserError, match="diverged"):
        Trainer(model, TrainConfig(steps=20, progress=False, max_nonfinite=3)).fit(
            batches, lambda b: (float("nan"), 1))


def test_early_stopping_restores_best():
    model, carry, batches, step, ev = make_task()
    vals = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    tr = Trainer(model, TrainConfig(steps=100, eval_every=2, patience=2, progress=False))
    snaps = []
    tr.fit(batches, step, lambda: (snaps.append(model.state_dict()), next(vals))[1])
    assert tr.stopped_early and tr.step == 8 and tr.best_step == 4
    for k, v in snaps[1].items():
        assert np.array_equal(model.params[k], v)


def test_time_budget_and_progress_bar(capsys):
    model, carry, batches, step, ev = make_task()
    tr = Trainer(model, TrainConfig(time_budget=0.3, progress=True)).fit(batches, step, ev)
    assert 0.3 <= tr.elapsed < 3.0 and tr.step > 0
    assert "items/s" in capsys.readouterr().err


def test_empty_data_is_an_error():
    model, *_ = make_task()
    with pytest.raises(UserError, match="no batches"):
        Trainer(model, TrainConfig(steps=3, progress=False)).fit(lambda e, r: iter(()), lambda b: (0.0, 1))


def test_checkpoint_errors(tmp_path):
    path = tmp_path / "ck"
    save_checkpoint(path, {"model": {"w": np.arange(3.0)}}, {"config": {"a": 1}})
    save_checkpoint(path, {"model": {"w": np.arange(4.0)}}, {"config": {"a": 2}})  # replaced atomically
    arrays, jsons = load_checkpoint(path)
    assert arrays["model"]["w"].tolist() == [0, 1, 2, 3] and jsons["config"] == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(UserError, match="no manifest"):
        load_checkpoint(tmp_path)
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[:-5])
    with pytest.raises(UserError, match="truncated"):
        load_checkpoint(path)
    f.write_bytes(data)
    m = json.loads((path / "manifest.json").read_text())
    m["version"] = 99
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="version 99"):
        load_checkpoint(path)
    (path / "manifest.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_checkpoint(path)
    model, *_ = make_task()
    save_checkpoint(path, {"model": {"w": np.arange(4.0)}}, {"trainer": {}})
    with pytest.raises(UserError, match="does not fit"):
        Trainer(model, TrainConfig(progress=False)).resume(path)


def test_config_validation():
    with pytest.raises(UserError, match="steps must be a positive integer"):
        TrainConfig(steps=0)
    with pytest.raises(UserError, match="unknown optimizer"):
        TrainConfig(optimizer="adamx")
    with pytest.raises(UserError, match="cosine"):
        TrainConfig(schedule="cosine")
    with pytest.raises(UserError, match="unknown training option"):
        TrainConfig.from_dict({"stepz": 3})
    assert TrainConfig().epochs == 1
    assert TrainConfig.from_dict(TrainConfig(steps=3).to_dict()).steps == 3


def test_cli_common_args(capsys):
    p = argparse.ArgumentParser()
    add_train_args(p, time_budget=60.0, out="runs/x")
    a = p.parse_args(["--steps", "10", "--lr", "0.01", "--clip", "0"])
    cfg = train_config_from_args(a)
    assert cfg.steps == 10 and cfg.lr == 0.01 and cfg.clip is None and cfg.time_budget == 60.0
    for bad in (["--steps", "-1"], ["--lr", "abc"], ["--cell", "tcn"], ["--lr", "nan"]):
        with pytest.raises(SystemExit) as e:
            p.parse_args(bad)
        assert e.value.code == 2
    with pytest.raises(UserError, match="--clip"):
        train_config_from_args(p.parse_args(["--clip", "-1"]))
