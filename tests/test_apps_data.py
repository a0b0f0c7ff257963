"""The `.ts` reader, CSV/TSV/npz readers, metrics, baselines and the rolling-origin backtest."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data import bundled
from rnnkit.data.tables import (check_sequences, fill_missing, read_npz_sequences, read_series_csv,
                                read_table, read_text_labels)
from rnnkit.data.ts_format import load_ts, parse_ts
from rnnkit.errors import UserError
from rnnkit.tasks import metrics as M

HEAD = "@problemName Toy\n@timeStamps false\n@missing {miss}\n@univariate {uni}\n{dims}" \
       "@equalLength {eq}\n{slen}@classLabel true a b\n@data\n"


def ts(rows, miss="false", uni="false", dims="@dimensions 2\n", eq="true", slen="@seriesLength 3\n"):
    return HEAD.format(miss=miss, uni=uni, dims=dims, eq=eq, slen=slen) + "\n".join(rows) + "\n"


def test_ts_multivariate_equal_length():
    d = parse_ts("# comment\n" + ts(["1,2,3:4,5,6:a", "7,8,9:1,1,1:b"]))
    assert d.problem_name == "Toy" and d.class_labels == ["a", "b"]
    assert d.to_array().shape == (2, 3, 2)
    np.testing.assert_array_equal(d.X[0][:, 1], [4, 5, 6])
    assert d.y.tolist() == ["a", "b"]


def test_ts_unequal_length_missing_and_univariate():
    d = parse_ts(ts(["1,2,3,4:a", "?,5:b"], miss="true", uni="true", dims="", eq="false", slen=""))
    assert [x.shape for x in d.X] == [(4, 1), (2, 1)] and not d.equal_length
    assert np.isnan(d.X[1][0, 0]) and d.X[1][1, 0] == 5
    with pytest.raises(UserError, match="different lengths"):
        d.to_array()


def test_ts_timestamps_and_regression_target():
    text = ("@problemName R\n@timeStamps true\n@univariate true\n@targetLabel true\n@data\n"
            "(2007-01-01 00:00:00,1.5),(2007-01-01 00:01:00,2.5):0.25\n")
    d = parse_ts(text)
    np.testing.assert_array_equal(d.X[0][:, 0], [1.5, 2.5])
    assert d.y.dtype == np.float64 and d.y[0] == 0.25


@pytest.mark.parametrize("text,msg", [
    (ts(["1,2,3:a"]), "1 dimensions, but the header says 2"),
    (ts(["1,2,3:4,5,6:c"]), "'c' is not among"),
    (ts(["1,2:4,5:a"]), "seriesLength 3"),
    (ts(["1,?,3:4,5,6:a"]), "@missing true"),
    (ts(["1,x,3:4,5,6:a"]), "not a number"),
    (ts(["1,2,3:4,5:a"]), "different lengths"),
    (ts(["1,2,3:4,5,6:a", "1,2,3,4:4,5,6,7:a"], slen=""), "equalLength true"),
    (ts(["1,2:4,5:a", "1,2:4,5:b"], uni="true", slen=""), "@univariate true"),
    ("@problemName X\n1,2,3\n", "expected a '@tag'"),
    ("@problemName X\n", "no '@data'"),
    ("@missing maybe\n@data\n", "true or false"),
    (ts([]), "no cases"),
])
def test_ts_file_breaking_its_header_is_refused(text, msg):
    with pytest.raises(UserError, match=msg):
        parse_ts(text, "bad.ts")


def test_ts_file_errors_name_the_line(tmp_path):
    p = tmp_path / "bad.ts"
    p.write_text(ts(["1,2,3:4,5,6:a", "1,2,3:4,5,6:zzz"]))
    with pytest.raises(UserError, match=r"bad.ts:11: class label"):
        load_ts(p)
    with pytest.raises(UserError, match="no such file"):
        load_ts(tmp_path / "none.ts")


def test_basicmotions_shipped_by_aeon():
    if bundled.package_dir("aeon") is None:
        pytest.skip("aeon not installed")
    tr, te = bundled.load_ts_shipped("BasicMotions", "TRAIN"), bundled.load_ts_shipped("BasicMotions", "TEST")
    assert tr.to_array().shape == (40, 100, 6) and te.to_array().shape == (40, 100, 6)
    assert sorted(set(tr.y)) == ["Badminton", "Running", "Standing", "Walking"]


def test_shipped_series():
    for name, n in [("sunspots", 309), ("nile", 100), ("elnino", 732), ("airline", 144)]:
        pkg = bundled.SERIES[name][0]
        if bundled.package_dir(pkg) is None:
            continue
        y, season = bundled.load_series(name)
        assert y.shape == (n,) and np.isfinite(y).all() and season >= 1
    with pytest.raises(UserError, match="unknown series"):
        bundled.series_path("nope")


def test_tables_csv_tsv_and_missing(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("t,v,w\n1,1.0,a\n2,,b\n3,3.0,c\n4,NA,d\n5,5,e\n")
    with pytest.raises(UserError, match=r"2 missing values at rows 3, 5; .*--fill"):
        read_series_csv(p, "v")
    v, t = read_series_csv(p, "v", time_col="t", fill="linear")
    np.testing.assert_allclose(v, [1, 2, 3, 4, 5])
    assert t == ["1", "2", "3", "4", "5"]
    v, _ = read_series_csv(p, "v", fill="ffill")
    np.testing.assert_allclose(v, [1, 1, 3, 3, 5])
    with pytest.raises(UserError, match="row 2: 'a' in column 'w' is not a number"):
        read_series_csv(p, "w")
    with pytest.raises(UserError, match="no column named 'x'"):
        read_series_csv(p, "x")
    np.testing.assert_allclose(fill_missing([np.nan, 2.0, np.nan], "ffill"), [2, 2, 2])
    with pytest.raises(UserError):
        fill_missing([np.nan], "linear")
    q = tmp_path / "s.tsv"
    q.write_text('He said "great" ok\t1\nbad\t0\n')
    texts, labels = read_text_labels(q, "0", "1", header=False)
    assert texts[0] == 'He said "great" ok' and labels.tolist() == ["1", "0"]
    assert read_table(q, header=False).header == ["0", "1"]
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(UserError, match="empty"):
        read_table(tmp_path / "e.csv")


def test_npz_and_sequence_checks(tmp_path):
    X = np.arange(24, dtype=float).reshape(3, 4, 2)
    np.savez(tmp_path / "a.npz", X=X, y=np.array([0, 1, 0]), lengths=np.array([4, 2, 3]))
    Xs, y = read_npz_sequences(tmp_path / "a.npz")
    assert [x.shape for x in Xs] == [(4, 2), (2, 2), (3, 2)] and y.tolist() == [0, 1, 0]
    np.savez(tmp_path / "b.npz", X=X)
    with pytest.raises(UserError, match="needs arrays 'X' and 'y'"):
        read_npz_sequences(tmp_path / "b.npz")
    with pytest.raises(UserError, match="empty sequence"):
        check_sequences([np.zeros((2, 1)), np.zeros((0, 1))])
    with pytest.raises(UserError, match="NaN"):
        check_sequences([np.array([[1.0], [np.nan]])])
    with pytest.raises(UserError, match="ragged"):
        check_sequences([[[1, 2], [3]]])
    with pytest.raises(UserError, match="features per step"):
        check_sequences([np.zeros((2, 1)), np.zeros((2, 3))])


def test_classification_metrics():
    y, p = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    cm, labels = M.confusion_matrix(y, p)
    assert labels == ["a", "b", "c"] and cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert M.accuracy(y, p) == 0.5
    # F1: a = 2*1/(2+1) = 2/3, b = 2*1/(1+3) = 1/2, c = 0
    assert M.macro_f1(y, p) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    rep = M.classification_report(y, p)
    assert rep["n"] == 4 and rep["confusion_matrix"][0] == [1, 1, 0]


def test_forecast_metrics_and_baselines():
    y = np.array([1.0, 2, 3, 4, 5, 6])
    assert M.rmse([1, 2], [1, 4]) == pytest.approx(np.sqrt(2))
    assert M.mae([1, 2], [1, 4]) == 1.0
    assert M.mase_scale(y) == 1.0 and M.mase([7], [9], y) == 2.0
    np.testing.assert_array_equal(M.naive_forecast(y, 3), [6, 6, 6])
    np.testing.assert_array_equal(M.seasonal_naive_forecast(y, 5, 2), [5, 6, 5, 6, 5])
    assert M.backtest_origins(20, 3, 3) == [11, 14, 17]
    season = np.tile([0.0, 10.0, 5.0], 10)
    res = M.rolling_origin_backtest(season, 3, M.backtest_origins(30, 3, 4), season=3,
                                    methods={"perfect": lambda h, H: season[len(h):len(h) + H]})
    assert res["seasonal_naive"]["rmse"] == 0 and res["perfect"]["mae"] == 0
    assert np.isnan(res["naive"]["mase"])  # a perfectly periodic series has a zero MASE scale
