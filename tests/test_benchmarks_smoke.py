"""Benchmark smoke: the A/B driver's summary and the busy-machine benchmark run end to end on a tiny
budget (their numbers are measured by running them, never by tests)."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RNNKIT_SHARED_DATA", ROOT / ".." / "shared" / "data"))


def _load(script):
    spec = importlib.util.spec_from_file_location(script, ROOT / "benchmarks" / f"{script}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ab_summary_takes_medians_per_side_and_the_ratio_of_them():
    ab = _load("ab_bench")
    row = {"cell": "lstm", "size": "B16 T200 D32 H64"}
    runs = {"a": [[{**row, "train_rnnkit_s": t}] for t in (0.010, 0.030, 0.020)],
            "b": [[{**row, "train_rnnkit_s": t}] for t in (0.012, 0.011, 0.040)]}
    (got,) = ab.summarise(runs, ["train", "fwd"])                     # no fwd timings: no fwd row
    assert got["a_ms"] == pytest.approx(20.0) and got["b_ms"] == pytest.approx(12.0)
    assert got["a_range"] == pytest.approx((10.0, 30.0)) and got["ratio"] == pytest.approx(0.6)
    with pytest.raises(SystemExit):
        ab.main(["--a", str(ROOT / "no-such-checkout")])


@pytest.mark.slow
def test_busy_machine_benchmark_runs_idle_and_beside_a_busy_process():
    pytest.importorskip("torch")
    text = DATA / "tinyshakespeare.txt"
    if not text.is_file():
        pytest.skip(f"{text} not found")
    bench = _load("busy_machine")
    conds = {"idle": None, "busy": bench.SPIN}
    rows = bench.measure(["rnnkit"], 0.5, 1, str(text), conditions=conds)
    assert [r["condition"] for r in rows] == ["idle", "busy"]
    assert all(r["chars_per_s"] > 0 and r["steps"] >= 1 for r in rows)
    out = bench.table(rows, ["rnnkit"])
    assert "| idle | " in out and "1.00x" in out and "| busy | " in out


def test_wordlm_benchmark_trains_both_frameworks_and_tabulates(tmp_path):
    pytest.importorskip("torch")
    text = DATA / "tinyshakespeare.txt"
    if not text.is_file():
        pytest.skip(f"{text} not found")
    bench = _load("wordlm_vs_torch")
    out = tmp_path / "wordlm.json"
    results = bench.main(["--budget", "0.3", "--max-tokens", "3000", "--size", "16", "--threads", "1",
                          "--data", str(text), "--no-write", "--json", str(out)])
    assert set(results) == {"rnnkit", "PyTorch"}
    for r in results.values():
        assert r["steps"] >= 1 and r["epochs"] >= 1 and np.isfinite(r["val_nats"]) and np.isfinite(r["test_nats"])
    saved = json.loads(out.read_text())
    assert saved["results"]["rnnkit"]["steps"] == results["rnnkit"]["steps"] and "rnnkit" in saved["load_average"]
