"""rnnkit.distributed where Ray cannot be imported: one clear line, or the serial many-series path."""
import csv
import sys

import numpy as np
import pytest

from rnnkit.cli import main


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)       # `import ray` now raises ImportError


def test_sweep_and_workers_without_ray_say_how_to_install(no_ray, tmp_path, capsys):
    (tmp_path / "s.json").write_text('{"lr": {"choice": [0.01]}}')
    (tmp_path / "t.txt").write_text("hello world, " * 200)
    runs = [["sweep", "textgen", str(tmp_path / "t.txt"), "--search", str(tmp_path / "s.json"), "--trials", "1",
             "--out", str(tmp_path / "sw"), "--steps", "2"],
            ["textgen", "train", str(tmp_path / "t.txt"), "--steps", "2", "--batch", "4", "--seq-len", "8",
             "--out", str(tmp_path / "dp"), "--workers", "2"]]
    for argv in runs:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pip install 'rnnkit[distributed]'" in err[0], err
    assert not (tmp_path / "sw").exists() and not (tmp_path / "dp").exists()   # nothing half-written


def test_many_series_fall_back_to_serial_without_ray(no_ray, tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = ["sid,y"] + [f"{s},{np.cos(t / 3) + 0.1 * rng.standard_normal():.3f}" for s in "ab" for t in range(60)]
    (tmp_path / "long.csv").write_text("\n".join(rows) + "\n")
    assert main(["forecast", "train", str(tmp_path / "long.csv"), "--series-col", "sid", "--column", "y",
                 "--horizon", "2", "--epochs", "1", "--origins", "2", "--no-progress", "--workers", "2",
                 "--out", str(tmp_path / "fc")]) == 0
    assert "one after another" in capsys.readouterr().err
    with open(tmp_path / "fc" / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["series"], r["status"]) for r in table] == [("a", "ok"), ("b", "ok")]
    assert all(float(r["mase"]) > 0 for r in table)


def test_forecast_workers_without_series_col_is_refused(tmp_path, capsys):
    (tmp_path / "s.csv").write_text("y\n" + "\n".join(str(i % 7) for i in range(50)) + "\n")
    assert main(["forecast", "train", str(tmp_path / "s.csv"), "--column", "y", "--horizon", "2",
                 "--workers", "2", "--out", str(tmp_path / "o")]) == 2
    assert "need --series-col" in capsys.readouterr().err
