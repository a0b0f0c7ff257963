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


needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")


@pytest.mark.slow
def test_benchmark_runs_a_tiny_case(tmp_path):
    pytest.importorskip("torch")
    bench = _load("bench_vs_torch")
    for cell in ("rnn", "lstm", "gru"):
        r = bench.bench_case(cell, (2, 5, 3, 4, 1, False), ["train", "fwd", "step", "mem"], 1, 1,
                             step_count=3)
        for part in ("train", "fwd", "step"):
            assert r[f"{part}_rnnkit_s"] > 0 and r[f"{part}_ratio"] > 0
        assert r["mem_peak_mb"] > 0 and r["train_gflops"] > 0 and r["matmul_peak_gflops"] > 0
        share = 100 * r["train_gflops"] / r["matmul_peak_gflops"]
        assert f"({share:.0f}%)" in bench.fmt_row(r, 1e-9)[12]     # the case's own peak, not the run's
        assert r["step_bound_s"] > 0 and r["step_bound_ratio"] > 0
        assert "x)" in bench.fmt_row(r, 100.0)[11]                   # the step floor column
    r = bench.bench_case("lstm", (2, 5, 3, 4, 2, True), ["train", "fwd", "step"], 1, 1, step_count=3)
    assert "step_ratio" not in r and r["train_ratio"] > 0
    assert "GFLOP" in bench.markdown_table([r], 100.0)


def test_bench_summary_reports_medians_and_goals(tmp_path, capsys):
    import json

    summary = _load("bench_summary")
    sizes = ("B16 T200 D32 H64", "B128 T50 D256 H512")
    for i, ratio in enumerate((1.2, 1.8, 1.6)):           # three runs; median train ratio 1.6
        results = [{"cell": "lstm", "size": size, "H": H, "train_ratio": ratio, "train_rnnkit_s": 0.01,
                    "train_gflops": 100.0, "step_ratio": 2.5 + i, "step_rnnkit_s": 0.001,
                    "mem_ratio": 1.25, "mem_ratio_wo_dx": 1.1, "mem_ratio_data": 1.31 + i / 100}
                   for size, H in zip(sizes, (64, 512))]
        run = {"meta": {"matmul_peak_gflops": 200.0}, "results": results}
        (tmp_path / f"run{i}.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    out = capsys.readouterr().out
    assert "| LSTM | B16 T200 D32 H64 | 1.60 (1.20-1.80) |" in out and "| 1.25 (1.32) |" in out
    assert "met    LSTM B16 T200 D32 H64         train >= 1.5x (H <= 128): 1.60" in out
    assert "met    LSTM B128 T50 D256 H512       train >= 1.0x (H = 512): 1.60" in out
    assert "MISSED LSTM B128 T50 D256 H512       train >= 70% of peak (H = 512): 50.00" in out
    run["results"][1]["matmul_peak_gflops"] = 125.0       # a case's own peak counts over the run's
    (tmp_path / "run2.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    assert "train >= 70% of peak (H = 512): 50.00" in capsys.readouterr().out  # median of 50, 50, 80
    for i in range(2):
        run["results"][1]["matmul_peak_gflops"] = 125.0
        (tmp_path / f"run{i}.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    assert "met    LSTM B128 T50 D256 H512       train >= 70% of peak (H = 512): 80.00" in capsys.readouterr().out
    assert "step >= 3x: 3.50" in out and "met    LSTM B16 T200 D32 H64         memory <= 1.3x (with dx): 1.25" in out
    assert "MISSED LSTM B16 T200 D32 H64         memory <= 1.3x (on data, no dx): 1.32" in out
    del run["results"][0]["mem_ratio_data"]               # runs from before input_grad: dx subtracted
    for i in range(3):
        (tmp_path / f"run{i}.json").write_text(json.dumps(run))
    summary.main([str(p) for p in sorted(tmp_path.glob("run*.json"))] + ["--goals"])
    out = capsys.readouterr().out
    assert "| 1.25 (1.10 w/o dx) |" in out and "H64         memory <= 1.3x (on data" not in out


@needs_numba
def test_side_by_side_benchmark_measures_both_paths():
    """bench_side_by_side.measure: both paths per round (it asserts which one each took), positive
    times; bad options exit with a message."""
    script = _load("bench_side_by_side")
    res = script.measure(["rnn"], 1, 1, 8)
    assert set(res["rnn"]) == {"side", "seq"} and all(v[0] > 0 for v in res["rnn"].values())
    with pytest.raises(SystemExit):
        script.main(["--cells", "lstm,cnn"])
    from rnnkit.kernels import _blas

    if _blas.enabled() and _blas.threads() is not None:         # --one-thread: restores the count
        before = _blas.threads()
        res = script.measure_one_thread(["rnn"], 1, 1)
        assert set(res["rnn"]) == {"side", "seq"} and all(v[0] > 0 for v in res["rnn"].values())
        assert _blas.threads() == before


def test_profile_runs_a_tiny_case(capsys):
    prof = _load("profile_core")
    prof.profile_case("gru", (2, 5, 3, 4), repeats=1, top=5)
    assert "cumulative" in capsys.readouterr().out


@needs_numba
@pytest.mark.slow
def test_first_call_script_times_a_fresh_and_a_cached_run(capsys):
    script = _load("first_call")
    first, cached = script.main(["--cells", "rnn"])
    assert set(first) == set(cached) == {"import rnnkit", "rnn"}
    assert first["rnn"] > cached["rnn"] > 0       # the fresh copy compiles; the second run loads the cache
    assert "first use" in capsys.readouterr().out


@needs_numba
def test_fallback_paths_times_the_three_paths_of_a_layer():
    """fallback_paths.measure: one row per part with a positive time for each path; the table prints
    each path's column and the ratios to the compiled loop."""
    script = _load("fallback_paths")
    from rnnkit.kernels import _blas

    if not _blas.AVAILABLE:
        pytest.skip("NumPy's CBLAS gemm was not found in this process")
    rows = script.measure(["rnn"], [0], 1, 1)
    assert [r["part"] for r in rows] == ["train", "fwd"]
    assert all(r[p][0] > 0 for r in rows for p in script.PATHS)
    assert "| RNN | B16 T200 D32 H64 | train |" in script.table(rows)


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


def test_docs_block_is_replaced_between_its_markers_and_the_rest_kept(tmp_path):
    docs = _load("_docs")
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- a:start -->\nold\n<!-- a:end -->\noutro\n", encoding="utf-8")
    docs.write_block(page, "<!-- a:start -->", "<!-- a:end -->", "| new |")
    assert page.read_text() == "intro\n<!-- a:start -->\n| new |\n<!-- a:end -->\noutro\n"
    docs.write_block(page, "<!-- b:start -->", "<!-- b:end -->", "b")      # missing markers: appended
    assert page.read_text().endswith("outro\n\n<!-- b:start -->\nb\n<!-- b:end -->\n")
