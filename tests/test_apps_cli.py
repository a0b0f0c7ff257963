"""`rnnkit classify ...` and `rnnkit forecast ...`: real runs on small files, and every bad input case
ending as one line on stderr with exit status 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main

FAST = ["--epochs", "2", "--hidden", "4", "--no-progress"]


def shared_data() -> Path:
    return Path(os.environ.get("RNNKIT_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    words = {"1": ["good", "great", "fine", "love"], "0": ["bad", "awful", "poor", "hate"]}
    rows = [f"{' '.join(rng.choice(words[lab], 3))} film,{lab}" for lab in ["1", "0"] * 20]
    (tmp_path / "text.csv").write_text("review,label\n" + "\n".join(rows) + "\n")
    X = rng.standard_normal((30, 6, 2))
    y = (X[:, :, 0].sum(1) > 0).astype(int)
    np.savez(tmp_path / "seq.npz", X=X, y=y, lengths=rng.integers(2, 7, 30))
    ts = ["@problemName T", "@univariate true", "@equalLength true", "@seriesLength 4",
          "@classLabel true a b", "@data"]
    ts += [f"{','.join(str(v) for v in rng.standard_normal(4) + (i % 2))}:{'ab'[i % 2]}" for i in range(20)]
    (tmp_path / "d.ts").write_text("\n".join(ts) + "\n")
    t = np.arange(80)
    series = 10 + np.sin(2 * np.pi * t / 8)
    (tmp_path / "s.csv").write_text("month,value,other\n" + "\n".join(
        f"m{i},{v:.4f},{v * 2 + 1:.4f}" for i, v in zip(t, series)) + "\n")
    return tmp_path


def test_classify_train_predict_csv(files, capsys):
    out = files / "run"
    assert main(["classify", "train", str(files / "text.csv"), "--text-col", "review", "--label-col", "label",
                 "--out", str(out), *FAST]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "confusion_matrix", "labels", "n_test"} <= set(m) and m["n_test"] == 8
    assert np.sum(m["confusion_matrix"]) == 8
    capsys.readouterr()
    assert main(["classify", "predict", str(out), str(files / "text.csv"), "--text-col", "review"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "row,label,probability" and len(lines) == 41


def test_classify_train_npz_and_ts_with_test_file(files):
    assert main(["classify", "train", str(files / "seq.npz"), "--out", str(files / "a"), *FAST]) == 0
    assert main(["classify", "train", str(files / "d.ts"), "--test", str(files / "d.ts"), "--pooling", "mean",
                 "--out", str(files / "b"), *FAST]) == 0
    m = json.loads((files / "b" / "metrics.json").read_text())
    assert m["n_test"] == 20 and m["labels"] == ["a", "b"]


def test_forecast_train_predict(files, capsys):
    out = files / "f"
    assert main(["forecast", "train", str(files / "s.csv"), "--column", "value", "--time-col", "month",
                 "--horizon", "4", "--season", "8", "--interval", "0.8", "--origins", "3", "--out", str(out),
                 *FAST]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["backtest"]) >= {"rnnkit", "naive", "seasonal_naive", "origins"}
    assert 0 <= m["backtest"]["interval"]["coverage"] <= 1 and m["backtest"]["interval"]["nominal"] == 0.8
    assert len(m["forecast"]) == 4 and all(lo < hi for lo, hi in zip(m["lower"], m["upper"]))
    capsys.readouterr()
    assert main(["forecast", "predict", str(out), "--horizon", "3"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[0] == "step,forecast,lower,upper"
    assert main(["forecast", "train", str(files / "s.csv"), "--column", "value", "--horizon", "2",
                 "--strategy", "recursive", "--difference", "--out", str(files / "g"), *FAST]) == 0
    # multivariate: two columns modelled together, the first one scored and plotted
    assert main(["forecast", "train", str(files / "s.csv"), "--column", "value", "--column", "other",
                 "--horizon", "3", "--out", str(files / "mv"), *FAST]) == 0
    assert json.loads((files / "mv" / "metrics.json").read_text())["columns"] == ["value", "other"]
    capsys.readouterr()
    assert main(["forecast", "predict", str(files / "mv")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "step,forecast0,forecast1"


def _bad_cases(d: Path):
    (d / "one.csv").write_text("text,label\nfoo,1\nbar,1\nbaz,1\nqux,1\n")
    np.savez(d / "empty.npz", X=np.zeros((2, 3, 1)), y=[0, 1], lengths=[3, 0])
    np.savez(d / "pickled.npz", X=np.array([np.zeros((3, 1)), np.zeros((2, 2))], dtype=object), y=[0, 1])
    np.savez(d / "nanlabel.npz", X=np.zeros((3, 2, 1)), y=[0.0, np.nan, 1.0])
    np.savez(d / "nan.npz", X=np.array([[1.0, np.nan], [2.0, 3.0]]), y=[0, 1])
    (d / "word.csv").write_text("t,v\n1,1.0\n2,abc\n3,3.0\n")
    (d / "gap.csv").write_text("t,v\n1,1.0\n2,\n3,3.0\n4,4\n5,5\n6,6\n")
    (d / "bad.ts").write_text("@problemName B\n@univariate true\n@classLabel true a b\n@data\n1,2:3,4:a\n")
    return {
        "labels with one class": (["classify", "train", "one.csv", "--text-col", "text", "--label-col",
                                   "label"], "only one class"),
        "CSV without the named column": (["classify", "train", "one.csv", "--text-col", "body", "--label-col",
                                          "label"], "no column named 'body'"),
        "empty sequence": (["classify", "train", "empty.npz"], "empty sequence"),
        "object array (a pickle) in an .npz": (["classify", "train", "pickled.npz"], "does not load"),
        "NaN label in an .npz": (["classify", "train", "nanlabel.npz"], "missing label(s) ('nan') at row(s) 1"),
        "NaN in features": (["classify", "train", "nan.npz"], "NaN"),
        ".ts breaking its header": (["classify", "train", "bad.ts"], "univariate true"),
        "missing file": (["classify", "train", "nope.csv", "--text-col", "a", "--label-col", "b"], "no such file"),
        "non-numeric series": (["forecast", "train", "word.csv", "--column", "v", "--horizon", "1"],
                               "row 3: 'abc' in column 'v' is not a number"),
        "horizon longer than the series": (["forecast", "train", "gap.csv", "--column", "v", "--fill", "ffill",
                                            "--horizon", "20"], "not shorter than the series"),
        "missing values without --fill": (["forecast", "train", "gap.csv", "--column", "v", "--horizon", "1"],
                                          "missing values at rows 3"),
        "predict from a folder without a model": (["forecast", "predict", "nowhere"], "does not exist"),
    }


def test_bad_input_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for what, (argv, msg) in _bad_cases(tmp_path).items():
        if argv[1] == "train":
            argv = argv + ["--out", "o", *FAST]
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, f"{what}: exit {code}, stderr {err!r}"
        assert len(err.splitlines()) == 1 and err.startswith("rnnkit: error:"), f"{what}: {err!r}"
        assert msg in err, f"{what}: {err!r}"


def test_cli_subprocess_no_traceback(tmp_path):
    (tmp_path / "one.csv").write_text("text,label\nfoo,1\nbar,1\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    r = subprocess.run([sys.executable, "-m", "rnnkit", "classify", "train", str(tmp_path / "one.csv"),
                        "--text-col", "text", "--label-col", "label", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "only one class" in r.stderr


def test_sentiment_file_from_shared_data(tmp_path):
    path = shared_data() / "sentiment" / "yelp_labelled.txt"
    if not path.is_file():
        pytest.skip("shared data not present")
    assert main(["classify", "train", str(path), "--no-header", "--text-col", "0", "--label-col", "1",
                 "--out", str(tmp_path / "y"), "--epochs", "1", "--hidden", "8", "--no-progress"]) == 0
    m = json.loads((tmp_path / "y" / "metrics.json").read_text())
    assert m["n_test"] == 200 and m["labels"] == ["0", "1"]


@pytest.mark.slow  # 37 s at load 13
def test_benchmark_script_runs(tmp_path):
    pytest.importorskip("sklearn")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "apps_results.py"
    r = subprocess.run([sys.executable, str(script), "--only", "digits", "nile", "--budget", "1",
                        "--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| digits" in r.stdout and "| nile" in r.stdout  # nile: a row, or "skipped: statsmodels ..."
    rows = json.loads((tmp_path / "r.json").read_text())
    assert rows[0]["metric"] == "accuracy" and 0 <= rows[0]["rnnkit"] <= 1


def test_classify_resume_continues_the_step_count(files):
    out = files / "r"
    common = ["classify", "train", str(files / "seq.npz"), "--out", str(out), "--hidden", "4", "--no-progress"]
    assert main(common + ["--steps", "2"]) == 0
    assert main(common + ["--steps", "4", "--resume", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["training"]["steps"] == 4
