"""rnnkit.distributed on a local Ray with 2 CPUs: data-parallel equality with one process, resume after a
killed worker or trial, the sweep's table and resume, and the many-series path (with a failing series)."""
import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.errors import UserError

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'rnnkit[distributed]')")
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (each start costs seconds); workers import this checkout's rnnkit."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
        mp.setenv("RAY_DEDUP_LOGS", "0")
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 << 20, log_to_driver=False)
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from rnnkit.tasks.textgen import default_corpus

    p = tmp_path_factory.mktemp("text") / "small.txt"
    p.write_text(default_corpus()[:12000], encoding="utf-8")
    return p


# Without dropout: each rank draws dropout masks of its own (`DataParallel.on_fresh_start`), not the ones
# one process draws for the whole batch, so with the char-level default's dropout the runs differ
_NO_DROPOUT = ("--dropout-input", "0", "--dropout-output", "0", "--weight-drop", "0")


def _textgen(corpus, out, *extra, steps=20, dtype="float64"):
    return [str(corpus), "--steps", str(steps), "--hidden", "12", "--embed", "6", "--batch", "6", "--seq-len", "12",
            "--dtype", dtype, "--sample-length", "0", "--no-progress", "--eval-every", "10", *_NO_DROPOUT,
            "--out", str(out), *map(str, extra)]


def _weights(run_dir):
    from safetensors.numpy import load_file

    return load_file(str(Path(run_dir) / "checkpoint" / "model.safetensors"))


def _history(run_dir):
    return json.loads((Path(run_dir) / "checkpoint" / "trainer.json").read_text())["history"]


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


@pytest.fixture(scope="module")
def one_process(corpus, tmp_path_factory):
    """The reference: the same textgen runs in this process, float64 (20 and 40 steps) and float32."""
    root = tmp_path_factory.mktemp("one")
    for name, steps, dtype in (("f64", 20, "float64"), ("f64-40", 40, "float64"), ("f32", 20, "float32")):
        assert main(["textgen", "train", *_textgen(corpus, root / name, steps=steps, dtype=dtype)]) == 0
    return root


@pytest.mark.parametrize("reducer", ["gloo", "object_store"])
@pytest.mark.slow  # a local Ray (32 s to start at load 13) and 2 workers: 18-121 s each
def test_data_parallel_textgen_equals_one_process_float64(local_ray, corpus, one_process, tmp_path, reducer):
    from rnnkit.distributed import train_data_parallel

    stats = train_data_parallel("textgen", _textgen(corpus, tmp_path / "dp"), workers=2, reducer=reducer)
    assert [r["reductions"] for r in stats["ranks"]] == [20, 20]
    diff = _max_diff(_weights(tmp_path / "dp"), _weights(one_process / "f64"))
    assert diff < 1e-10, f"parameters after 20 steps differ by {diff:.3g}"
    h1, h2 = _history(one_process / "f64"), _history(tmp_path / "dp")
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-12)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-12)
    # rank 1 trained on the other half of every batch: its carried state has 3 of the 6 streams
    from safetensors.numpy import load_file

    s0 = load_file(str(one_process / "f64" / "checkpoint" / "state.safetensors"))
    s1 = load_file(str(tmp_path / "dp" / "workers" / "rank-1" / "checkpoint" / "state.safetensors"))
    np.testing.assert_allclose(s1["s0"], s0["s0"][:, 3:], rtol=1e-9, atol=1e-12)


@pytest.mark.slow  # a local Ray (32 s to start at load 13) and 2 workers: 18-121 s each
def test_data_parallel_float32_loss_curve_within_rounding(local_ray, corpus, one_process, tmp_path):
    assert main(["textgen", "train", *_textgen(corpus, tmp_path / "dp", dtype="float32"), "--workers", "2"]) == 0
    h1, h2 = _history(one_process / "f32"), _history(tmp_path / "dp")
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=2e-5)
    assert _max_diff(_weights(tmp_path / "dp"), _weights(one_process / "f32")) < 1e-4


@pytest.mark.parametrize("batch", [9, 47])    # 47: the last batch of each epoch has 1 row, rank 1 none
@pytest.mark.slow  # a local Ray (32 s to start at load 13) and 2 workers: 18-121 s each
def test_data_parallel_classify_float64(local_ray, tmp_path, batch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 7, 2))
    y = (X[:, :, 0].sum(1) > 0).astype(int)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    common = ["classify", "train", str(tmp_path / "d.npz"), "--dtype", "float64", "--epochs", "2",
              "--batch-size", str(batch), "--hidden", "8", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--out", str(tmp_path / "dp"), "--workers", "2"]) == 0
    diff = _max_diff(_weights(tmp_path / "dp"), _weights(tmp_path / "one"))
    assert diff < 1e-10, f"classifier parameters differ by {diff:.3g}"
    assert _history(tmp_path / "dp")["step"][-1] == 2 * -(-48 // batch)   # 48 training rows, 2 epochs
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "dp" / "metrics.json").read_text())
    assert m1["accuracy"] == m2["accuracy"]


@pytest.mark.slow  # a local Ray (32 s to start at load 13) and 2 workers: 18-121 s each
def test_time_budget_stops_every_worker_at_the_same_step(local_ray, corpus, tmp_path):
    argv = [a for a in _textgen(corpus, tmp_path / "tb") if a not in ("--steps", "20")]
    assert main(["textgen", "train", *argv, "--time-budget", "6", "--workers", "2"]) == 0
    ranks = json.loads((tmp_path / "tb" / "parallel.json").read_text())["ranks"]
    steps = [json.loads((d / "checkpoint" / "trainer.json").read_text())["step"]
             for d in (tmp_path / "tb", tmp_path / "tb" / "workers" / "rank-1")]
    assert steps[0] == steps[1] == ranks[0]["reductions"] == ranks[1]["reductions"] > 1


@pytest.mark.slow
def test_classify_workers_resume_a_run_stopped_mid_training(local_ray, tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 5, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, :, 1].mean(1) > 0).astype(int))
    common = ["classify", "train", str(tmp_path / "d.npz"), "--dtype", "float64", "--batch-size", "8",
              "--hidden", "6", "--no-progress", "--checkpoint-every", "4"]
    assert main([*common, "--epochs", "4", "--out", str(tmp_path / "one")]) == 0
    dp = tmp_path / "dp"
    assert main([*common, "--epochs", "2", "--out", str(dp), "--workers", "2"]) == 0
    import shutil

    shutil.rmtree(dp / "model")              # as if stopped before the end: checkpoints, no model
    assert main([*common, "--epochs", "4", "--out", str(dp), "--resume", str(dp), "--workers", "2"]) == 0
    assert json.loads((dp / "parallel.json").read_text())["resumed_from_step"] == 8
    assert _max_diff(_weights(dp), _weights(tmp_path / "one")) < 1e-10


@pytest.mark.slow
def test_killed_worker_resumes_from_checkpoint_and_finishes(local_ray, corpus, one_process, tmp_path):
    from rnnkit.distributed import train_data_parallel

    out = tmp_path / "ft"
    argv = _textgen(corpus, out, "--checkpoint-every", "5", steps=40)
    result, errors = {}, []

    def run():
        try:
            result.update(train_data_parallel("textgen", argv, workers=2))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    killed_at, deadline = None, time.monotonic() + 120
    while t.is_alive() and killed_at is None and time.monotonic() < deadline:
        try:
            info = json.loads((out / "parallel.json").read_text())
            steps = {json.loads((d / "checkpoint" / "trainer.json").read_text())["step"]
                     for d in (out, out / "workers" / "rank-1")}
        except (OSError, ValueError, KeyError):
            time.sleep(0.02)
            continue
        step = min(steps)
        # kill once both ranks hold the same checkpoint; the kill may still land in the next save
        if info["attempt"] == 0 and len(steps) == 1 and 5 <= step < 40:
            os.kill(info["pids"][1], signal.SIGKILL)
            killed_at = step
    t.join(timeout=180)
    assert not t.is_alive(), "the run hung after its worker was killed"
    assert not errors, errors
    assert killed_at is not None and killed_at < 40, "the worker was not killed mid-run"
    # the kill may land in the next save: the ranks then resume from the step they all still hold
    assert result["attempt"] == 1 and result["resumed_from_step"] is not None, result
    assert result["resumed_from_step"] >= killed_at
    diff = _max_diff(_weights(out), _weights(one_process / "f64-40"))
    assert diff < 1e-10, f"the resumed run ends {diff:.3g} away from the uninterrupted one"


@pytest.mark.slow  # a local Ray (32 s to start at load 13) and 2 workers: 18-121 s each
def test_data_parallel_refuses_more_workers_than_batch_or_cpus(local_ray, corpus, tmp_path, capsys):
    assert main(["textgen", "train", *_textgen(corpus, tmp_path / "x"), "--workers", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smaller than --workers 8" in err[0]
    assert main(["textgen", "train", *_textgen(corpus, tmp_path / "y"), "--workers", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 2 CPUs but --workers 3" in err[0]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# -- sweeps -----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sweep_table_best_and_resume(local_ray, corpus, tmp_path):
    from rnnkit.distributed import sweep

    space = tmp_path / "space.toml"
    space.write_text('lr = {loguniform = [0.001, 0.02]}\ncell = {choice = ["lstm", "gru"]}\n')
    fixed = _textgen(corpus, "unused", steps=12, dtype="float32")[:-2]      # without --out
    fixed[fixed.index("--eval-every") + 1] = "4"
    out = tmp_path / "sw"
    sweep("textgen", fixed, space, 3, out, scheduler="asha", log=lambda m: None)
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and rows[0]["status"] == "finished"
    vals = [float(r["val_loss"]) for r in rows]
    assert vals == sorted(vals)
    for r in rows:                               # each trial is an ordinary run folder
        assert r["config/cell"] in ("lstm", "gru") and 0.001 <= float(r["config/lr"]) <= 0.02
        if r["status"] == "stopped early":       # ASHA stopped it at a validation before the end
            assert int(r["step"]) in (4, 8)
            continue
        assert r["status"] == "finished"
        m = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        assert m["steps"] == 12 and abs(m["val_loss_nats"] - float(r["val_loss"])) < 1e-9
    best = json.loads((out / "best.json").read_text())
    assert best["trial_id"] == rows[0]["trial_id"] and best["val_loss"] == pytest.approx(vals[0])
    again = sweep("textgen", fixed, space, 3, out, log=lambda m: None)  # restores; nothing is re-run
    assert [r["trial_id"] for r in again["rows"]] == [r["trial_id"] for r in rows]


@pytest.mark.slow
def test_sweep_trial_killed_resumes_from_its_checkpoint(local_ray, corpus, tmp_path):
    from rnnkit.distributed import sweep

    fixed = [*_textgen(corpus, "unused", steps=40, dtype="float64")[:-2], "--checkpoint-every", "5"]
    fixed[fixed.index("--eval-every") + 1] = "5"
    out = tmp_path / "sw"
    result, killed = {}, []

    def run():
        result.update(sweep("textgen", fixed, {"lr": {"choice": [0.004]}}, 1, out, log=lambda m: None))

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 120
    while t.is_alive() and not killed and time.monotonic() < deadline:
        for d in (out / "trials").glob("*"):
            try:
                step = json.loads((d / "checkpoint" / "trainer.json").read_text())["step"]
                pid = int((d / ".rnnkit.lock").read_text().split()[0])
            except (OSError, ValueError, KeyError, IndexError):
                continue
            if 5 <= step < 40:
                os.kill(pid, signal.SIGKILL)
                killed.append(step)
        time.sleep(0.02)
    t.join(timeout=180)
    assert killed, "the trial was not killed mid-run"
    row = result["rows"][0]
    assert row["status"] == "finished" and row["step"] == 40
    history = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())["val_history"]["step"]
    assert history == sorted(set(history)) and history[-1] == 40
    assert row["resumed_from_step"] >= 5       # the retry continued from the killed attempt's checkpoint
    one = tmp_path / "one"
    assert main(["textgen", "train", *fixed, "--lr", "0.004", "--out", str(one)]) == 0
    assert _max_diff(_weights(row["run_dir"]), _weights(one)) < 1e-10


def test_sweep_rejects_bad_space_before_starting(tmp_path, capsys):
    (tmp_path / "s.json").write_text('{"lr": {"loguniform": [0, 0.1]}}')
    assert main(["sweep", "textgen", "--search", str(tmp_path / "s.json"), "--trials", "2",
                 "--out", str(tmp_path / "o"), "--steps", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'lr'" in err[0] and "low > 0" in err[0]
    assert not (tmp_path / "o").exists()


def test_space_parsing_kinds_and_errors(tmp_path):
    from rnnkit.distributed.space import as_options, check_space, load_space

    (tmp_path / "s.json").write_text('{"seq_len": {"int": [8, 16]}, "clip": {"uniform": [1, 2]}}')
    assert load_space(tmp_path / "s.json") == {"seq-len": ("int", [8, 16]), "clip": ("uniform", [1, 2])}
    assert as_options({"seq-len": 9, "lr": 0.5}) == ["--seq-len", "9", "--lr", "0.5"]
    for bad in ({"lr": {"normal": [0, 1]}}, {"hidden": {"int": [1.5, 3]}}, {"cell": {"choice": []}}, {}):
        with pytest.raises(UserError):
            check_space(bad)


# -- many series ------------------------------------------------------------------------------------------
def _long_csv(path):
    rng = np.random.default_rng(1)
    lines = ["id,value"]
    for sid, n in (("north", 90), ("south", 90), ("tiny", 10), ("east west", 90)):
        lines += [f"{sid},{np.sin(t / 2) + 0.1 * rng.standard_normal():.4f}" for t in range(n)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow  # a local Ray (32 s to start at load 13) and 2 workers: 18-121 s each
def test_many_series_parallel_equals_serial_and_keeps_failures(local_ray, tmp_path, capsys):
    _long_csv(tmp_path / "long.csv")
    common = ["forecast", "train", str(tmp_path / "long.csv"), "--series-col", "id", "--column", "value",
              "--horizon", "3", "--season", "4", "--epochs", "2", "--origins", "2", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "serial")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--workers", "2"]) == 0
    tables = []
    for name in ("serial", "ray"):
        with open(tmp_path / name / "metrics.csv") as f:
            tables.append(list(csv.DictReader(f)))
    serial, par = tables
    assert [r["series"] for r in par] == ["north", "south", "tiny", "east west"]
    assert [r["status"] for r in par] == ["ok", "ok", "failed", "ok"]
    assert "too short" in par[2]["error"]
    # the same fits; float32 BLAS may round differently on another thread count (a busy machine gets
    # one-thread training steps, `Trainer.one_thread_when_busy`), so the scores agree to rounding
    for a, b in zip(serial, par):
        assert a["status"] == b["status"]
        if a["status"] == "ok":
            assert float(a["mase"]) == pytest.approx(float(b["mase"]), rel=1e-6)
            assert float(a["rmse"]) == pytest.approx(float(b["rmse"]), rel=1e-6)
    assert (tmp_path / "ray" / par[3]["folder"] / "model" / "manifest.json").is_file()
    capsys.readouterr()
    assert main(["forecast", "predict", str(tmp_path / "ray"), "--workers", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "series,step,forecast" and len(lines) == 1 + 3 * 3
    assert main(["forecast", "predict", str(tmp_path / "ray" / "series" / "north")]) == 0
    single = capsys.readouterr().out.strip().splitlines()[1:]
    assert [line.split(",", 1)[1] for line in lines[1:4]] == single


def test_resume_with_workers_needs_a_parallel_run(corpus, one_process, tmp_path, capsys):
    argv = _textgen(corpus, tmp_path / "x", steps=30)
    argv[argv.index("--out")] = "--resume"
    argv[argv.index("--resume") + 1] = str(one_process / "f64")          # a one-process run
    assert main(["textgen", "train", *argv, "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs the checkpoints of a textgen run with 2 workers" in err[0]
