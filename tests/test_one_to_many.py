"""VectorToSequence gradients (float64 FD, vector included), generation, digits and names tasks, CLI."""
import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.gradcheck import check_function
from rnnkit.models.one_to_many import BOS, VectorToSequence


@pytest.mark.parametrize("cell,condition,layers", [("lstm", "state", 2), ("gru", "input", 1), ("rnn", "state", 1)])
def test_vector_to_sequence_gradients(cell, condition, layers):
    rng = np.random.default_rng(0)
    model = VectorToSequence(5, 7, embed=3, hidden=4, layers=layers, cell=cell, condition=condition,
                             dtype=np.float64, seed=0)
    v = rng.normal(size=(3, 5))
    tokens = rng.integers(1, 7, size=(4, 3))
    lengths = np.array([4, 2, 3])

    def forward(**_):
        return model.forward(v, tokens, lengths)

    def backward(up):
        forward()
        dv = model.backward(up)
        return {"v": dv, **{k: g.copy() for k, g in model.grads.items()}}

    report = check_function(forward, backward, {"v": v, **model.params}, seed=1)
    assert report.passed, str(report)


def test_generate_greedy_and_sampled():
    model = VectorToSequence(4, 6, seed=0)
    v = np.eye(4)[:2]
    g = model.generate(v, max_len=5)
    assert len(g) == 2 and all(len(s) <= 5 for s in g)
    s1 = model.generate(v, max_len=5, temperature=1.0, rng=3)
    assert s1 == model.generate(v, max_len=5, temperature=1.0, rng=3)
    with pytest.raises(ValueError, match="condition"):
        VectorToSequence(4, 6, condition="both")


def test_spell_digits_learns():
    pytest.importorskip("sklearn")
    from rnnkit.tasks.one_to_many import OneToManyConfig, spell_digits
    from rnnkit.train import TrainConfig
    m = spell_digits(TrainConfig(steps=250, lr=2e-2, progress=False, seed=0), OneToManyConfig(hidden=24, embed=8))
    assert m["exact_match"] > 0.5 and m["cer"] < 0.4, m


def test_names_cli(tmp_path, capsys):
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "Italian.txt").write_text("Rossi\nRusso\nFerrari\nEsposito\nBianchi\n" * 4)
    (tmp_path / "names" / "Polish.txt").write_text("Nowak\nKowalski\nWojcik\nLewandowski\n" * 4)
    assert main(["names", "train", str(tmp_path / "names"), "--out", str(tmp_path / "m"), "--steps", "5",
                 "--hidden", "8", "--batch-size", "8", "--no-progress"]) == 0
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert m["steps"] == 5 and set(m["greedy"]) == {"Italian", "Polish"}
    capsys.readouterr()
    assert main(["names", "sample", str(tmp_path / "m"), "--language", "Polish", "-n", "3", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    for argv, msg in [(["names", "sample", str(tmp_path / "m"), "--language", "Klingon"], "unknown language"),
                      (["names", "train", str(tmp_path), "--out", str(tmp_path / "x")], "Language>.txt")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and err.count("\n") == 1
