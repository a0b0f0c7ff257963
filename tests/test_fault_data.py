"""Fault suite: hostile or absurd input data, and the strictness of every JSON file rnnkit writes.

Each case ends in one line and exit 2 (or, for data that is odd but legitimate, a normal run), and every
JSON file a run writes parses with a strict parser (no NaN/Infinity, UTF-8).
"""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.tables import read_table, read_text_labels
from rnnkit.errors import UserError
from rnnkit.jsonio import read_json, to_json, write_json

FAST = ["--epochs", "1", "--hidden", "4", "--no-progress"]


def strict(path):
    """Parse `path` as strict JSON: NaN, Infinity and -Infinity are refused."""
    def refuse(name):
        raise AssertionError(f"{path} holds {name}, which is not JSON")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def run(argv, capsys):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code, err):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error:") and "Traceback" not in err, err
    return lines[0]


def test_strict_json_writer(tmp_path):
    obj = {"a": float("nan"), "b": [float("inf"), -float("inf"), np.float32(1.5)], "c": np.int64(3),
           "d": np.array([1.0, np.nan])}
    text = to_json(obj)
    assert json.loads(text, parse_constant=lambda n: pytest.fail(n)) == {"a": None, "b": [None, None, 1.5],
                                                                       "c": 3, "d": [1.0, None]}
    p = write_json(tmp_path / "m.json", obj)
    assert strict(p)["a"] is None and not list(tmp_path.glob(".m.json.tmp-*"))
    (tmp_path / "bad.json").write_text('{"x": NaN}')
    with pytest.raises(UserError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bin.json").write_bytes(b'{"x": "\xff"}')
    with pytest.raises(UserError, match="not UTF-8"):
        read_json(tmp_path / "bin.json")


def test_every_json_a_run_writes_is_strict(tmp_path, capsys):
    """A classify run whose validation never happens and a forecast run: metrics.json and every JSON
    file of their checkpoints parse strictly."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 4, 2))
    np.savez(tmp_path / "seq.npz", X=X, y=(X[:, :, 0].sum(1) > 0).astype(int))
    (tmp_path / "s.csv").write_text("v\n" + "\n".join(f"{math.sin(i / 3) + 2:.4f}" for i in range(50)) + "\n")
    assert run(["classify", "train", tmp_path / "seq.npz", "--out", tmp_path / "c", *FAST], capsys)[0] == 0
    assert run(["forecast", "train", tmp_path / "s.csv", "--column", "v", "--horizon", "2", "--origins", "1",
                "--out", tmp_path / "f", *FAST], capsys)[0] == 0
    files = [p for d in ("c", "f") for p in (tmp_path / d).rglob("*.json")]
    assert len(files) >= 8
    for p in files:
        strict(p)


@pytest.mark.parametrize("values, expect", [
    ([1e300 * (1 + math.sin(i / 3)) for i in range(40)], "too large to train on"),
    ([(-1) ** i * 1e200 for i in range(40)], "too large to train on"),
    ([5.0] * 40, "the series is constant"),
])
def test_absurd_series_refused(values, expect, tmp_path, capsys):
    (tmp_path / "s.csv").write_text("v\n" + "\n".join(repr(v) for v in values) + "\n")
    code, _, err = run(["forecast", "train", tmp_path / "s.csv", "--column", "v", "--horizon", "2",
                        "--out", tmp_path / "o", *FAST], capsys)
    assert expect in one_line(code, err)
    assert not (tmp_path / "o").exists()


def test_absurd_features_refused(tmp_path, capsys):
    X = np.full((10, 3, 1), 1e250)
    X[::2] *= -1
    np.savez(tmp_path / "big.npz", X=X, y=np.arange(10) % 2)
    code, _, err = run(["classify", "train", tmp_path / "big.npz", "--out", tmp_path / "o", *FAST], capsys)
    assert "too large to train on" in one_line(code, err)


def test_csv_fields_beyond_the_csv_modules_limit(tmp_path, capsys):
    """A review of 300,000 characters (the csv module refuses fields over 131,072 by default) is read, and
    the process-wide limit is left as it was."""
    limit = csv.field_size_limit()
    long = "good " * 60_000
    rows = [f'"{long}",1', '"bad film",0'] * 6
    (tmp_path / "long.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    texts, labels = read_text_labels(tmp_path / "long.csv", "text", "label")
    assert len(texts[0]) == len(long) and list(labels[:2]) == ["1", "0"]
    assert csv.field_size_limit() == limit
    assert read_table(tmp_path / "long.csv").rows[0][0] == long


@pytest.mark.parametrize("label", ["nan", "NaN", "", "NA"])
def test_missing_label_refused_with_its_row(label, tmp_path, capsys):
    rows = ["good film,1", "bad film,0", f"odd film,{label}", "fine film,1", "awful film,0"]
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    code, _, err = run(["classify", "train", tmp_path / "t.csv", "--text-col", "text", "--label-col", "label",
                        "--out", tmp_path / "o", *FAST], capsys)
    line = one_line(code, err)
    assert "missing label" in line and "rows 4" in line  # line 4 of the file (the header is line 1)


def test_npz_object_arrays_and_bad_dtypes_refused(tmp_path, capsys):
    np.savez(tmp_path / "obj.npz", X=np.array([np.zeros((2, 1)), np.zeros((3, 1))], dtype=object), y=[0, 1])
    np.savez(tmp_path / "ylab.npz", X=np.zeros((2, 3, 1)), y=np.array([np.zeros(1), None], dtype=object))
    np.savez(tmp_path / "strX.npz", X=np.array([["a", "b"], ["c", "d"]]), y=[0, 1])
    np.savez(tmp_path / "len.npz", X=np.zeros((2, 3, 1)), y=[0, 1], lengths=[3, 9])
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    for name, expect in [("obj", "does not load"), ("ylab", "does not load"), ("strX", "must be numeric"),
                         ("len", "lengths must be in"), ("junk", "not a readable .npz")]:
        code, _, err = run(["classify", "train", tmp_path / f"{name}.npz", "--out", tmp_path / "o", *FAST],
                           capsys)
        assert expect in one_line(code, err), (name, err)
