"""`rnnkit memory` and `rnnkit diagnose` end to end on a tiny budget, and their bad-input errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False


@pytest.fixture(scope="module")
def memdir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mem")
    rc = main(["memory", "--task", "recall", "--cells", "rnn,lstm", "--lengths", "2,4", "--budget", "4",
               "--hidden", "8", "--symbols", "4", "--out", str(out)])
    assert rc == 0
    return out


def test_memory_end_to_end(memdir, capsys):
    res = json.loads((memdir / "memory.json").read_text())
    assert res["task"] == "recall" and res["threshold"] == 0.9 and res["trivial"] == 0.25
    assert res["lengths"] == [2, 4]
    for cell in ("rnn", "lstm"):
        r = res["cells"][cell]
        assert set(r["final_score"]) == {"2", "4"}
        assert all(0.0 <= a <= 1.0 for a in r["final_score"].values())
        assert r["stages"] and r["stages"][0]["T"] == 2 and all(s["steps"] > 0 for s in r["stages"])
        # the curriculum moves on only from a solved stage
        assert all(s["solved"] for s in r["stages"][:-1])
        solved = [s["T"] for s in r["stages"] if s["solved"]]
        assert r["longest_solved"] == (max(solved) if solved else None)
        assert r["recipe"]["lr"] > 0 and r["recipe"]["why"]
        assert (memdir / cell / "checkpoint" / "manifest.json").is_file()
        assert set(r["gradient_norms"]) == {str(s["T"]) for s in r["stages"]}   # the Trainer's log
    flow = json.loads((memdir / "gradient_flow.json").read_text())
    assert set(flow["cells"]) == {"rnn", "lstm"}
    for f in flow["cells"].values():
        g = f["grad_norm_by_distance"]
        assert len(g) == flow["T"] + 2 and max(g) == pytest.approx(1.0)
    assert (memdir / "memory.png").is_file() == HAVE_MPL
    assert (memdir / "gradient_flow.png").is_file() == HAVE_MPL


def test_diagnose_end_to_end(memdir, tmp_path, capsys):
    out = tmp_path / "diag"
    assert main(["diagnose", str(memdir / "lstm"), "--out", str(out), "--batch", "4"]) == 0
    text = capsys.readouterr().out
    assert "memory horizon" in text and "W_hh[f]" in text
    res = json.loads((out / "gradient_flow.json").read_text())
    T = res["model"]["T"]
    assert res["model"]["cell"] == "lstm" and res["model"]["memory_task"] == "recall" and T in (2, 4)
    (lay,) = res["layers"]
    assert len(lay["grad_norm"]) == T + 2 and len(lay["jacobian"]["spectral_radius"]) == T + 2
    assert lay["weight_grad_check"] < 1e-8                       # per-step terms sum to dL/dW_hh
    assert set(lay["weights"]) == {"i", "f", "g", "o"}
    assert (out / "gradient_flow.png").is_file() == HAVE_MPL


def test_without_matplotlib_json_only(memdir, tmp_path, capsys, monkeypatch):
    import rnnkit.diagnostics.plots as plots
    monkeypatch.setattr(plots, "_pyplot", lambda: None)      # as if matplotlib were not installed
    assert main(["diagnose", str(memdir / "rnn"), "--out", str(tmp_path)]) == 0
    assert "matplotlib not installed" in capsys.readouterr().out
    assert (tmp_path / "gradient_flow.json").is_file() and not (tmp_path / "gradient_flow.png").exists()


def test_exploding_regime_options(tmp_path, capsys):
    rc = main(["memory", "--cells", "rnn", "--task", "recall", "--lengths", "3", "--budget", "1", "--hidden", "8",
               "--radius", "3", "--clip", "0", "--optimizer", "sgd", "--lr", "0.05",
               "--nonlinearity", "relu", "--out", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "memory.json").read_text())
    assert res["config"]["clip"] is None and res["config"]["radius"] == 3.0


def test_scale_recurrent_sets_spectral_radius():
    from rnnkit.diagnostics.memory import MemoryModel
    m = MemoryModel("gru", 5, 6, 3, seed=0).scale_recurrent(2.5)
    W = m.params["rnn.weight_hh_l0"].astype(np.float64)
    for j in range(3):
        assert np.abs(np.linalg.eigvals(W[j * 6:(j + 1) * 6])).max() == pytest.approx(2.5, rel=1e-5)


@pytest.mark.parametrize("argv,msg", [
    (["memory", "--cells", "rnn,foo", "--out", "X"], "--cells"),
    (["memory", "--lengths", "5,x", "--out", "X"], "--lengths"),
    (["memory", "--lengths", "1,5", "--out", "X"], "--lengths"),
    (["memory", "--threshold", "2", "--out", "X"], "--threshold"),
    (["memory", "--budget", "0", "--out", "X"], "--budget"),
    (["memory", "--clip", "-1", "--out", "X"], "--clip"),
    (["diagnose", "/nonexistent/run"], "not a directory"),
])
def test_bad_input_one_line(argv, msg, tmp_path, capsys):
    argv = [a if a != "X" else str(tmp_path / "o") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_diagnose_not_a_checkpoint_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    p = subprocess.run([sys.executable, "-m", "rnnkit", "diagnose", str(tmp_path)], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.startswith("rnnkit: error:") and "checkpoint" in p.stderr


def test_diagnose_a_textgen_run(tmp_path, capsys):
    pytest.importorskip("rnnkit.tasks.textgen")
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    run = tmp_path / "tg"
    assert main(["textgen", "train", str(corpus), "--steps", "3", "--hidden", "8", "--seq-len", "12",
                 "--batch", "4", "--cell", "gru", "--out", str(run)]) == 0
    out = tmp_path / "d"
    assert main(["diagnose", str(run), "--out", str(out), "--batch", "3"]) == 0
    res = json.loads((out / "gradient_flow.json").read_text())
    (lay,) = res["layers"]
    assert lay["cell"] == "GRU" and len(lay["grad_norm"]) == 12
    assert lay["weight_grad_check"] < 1e-8


@pytest.mark.parametrize("task,metric", [("copy", "accuracy"), ("adding", "mse")])
def test_memory_other_tasks_tiny_budget(task, metric, tmp_path, capsys):
    rc = main(["memory", "--task", task, "--cells", "gru", "--lengths", "2,3", "--budget", "1",
               "--hidden", "4", "--out", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "memory.json").read_text())
    assert res["task"] == task and res["metric"] == metric
    r = res["cells"]["gru"]
    assert r["recipe"]["layer"] == {"init": "orthogonal"} and r["stages"][0]["T"] == 2
    assert set(r["final_score"]) == {"2", "3"}
    if task == "adding":
        assert res["trivial"] == pytest.approx(1 / 6) and res["threshold"] == 0.01
    else:
        assert res["trivial"] == pytest.approx(1 / 8) and all(0 <= v <= 1 for v in r["final_score"].values())
    assert "longest solved" in capsys.readouterr().out
