"""`--dropout` in the tasks nobody else owns (translate, transcribe, names): validation, the models'
gradients with dropout on (float64 FD, fixed masks), the probability saved with the model, and a
stopped-then-resumed `translate train --dropout` run bit-identical to an uninterrupted one."""
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from rnnkit.cli import main
from rnnkit.gradcheck import check_function
from rnnkit.models.one_to_many import VectorToSequence
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.tasks.speech import CTCModel

FAST = ["--no-progress", "--hidden", "8", "--seed", "0"]
PAIRS = "".join(f"{s}\t{t}\n" for s, t in [
    ("I see.", "Je vois."), ("Go.", "Va !"), ("Hi.", "Salut !"), ("Run!", "Cours !"), ("Who?", "Qui ?"),
    ("Wow!", "Ça alors !"), ("Fire!", "Au feu !"), ("Help!", "À l'aide !"), ("Stop!", "Arrête !"),
    ("Wait!", "Attends !"), ("I try.", "J'essaye."), ("I won!", "J'ai gagné !")])


def fixed_mask_check(model, inputs, forward, backward):
    """Finite differences where every forward draws the first one's masks (generators put back)."""
    start = model.random_state_dict()

    def fwd(**arrays):
        model.load_random_state_dict(start)
        return forward(**arrays)

    def bwd(u):
        fwd(**inputs)
        return backward(u)

    return check_function(fwd, bwd, inputs, seed=2)


@pytest.mark.parametrize("cell,bi,attention,layers", [("lstm", True, "general", 2), ("gru", False, None, 1)])
def test_seq2seq_dropout_gradients(cell, bi, attention, layers):
    rng = np.random.default_rng(0)
    model = Seq2Seq(7, 6, embed=3, hidden=3, layers=layers, cell=cell, bidirectional=bi, attention=attention,
                    dtype=np.float64, seed=1, dropout=0.4)
    src, src_len = rng.integers(4, 7, size=(5, 3)), np.array([5, 2, 4])
    tgt, tgt_len = rng.integers(4, 6, size=(4, 3)), np.array([4, 3, 1])
    report = fixed_mask_check(model, model.params, lambda **_: model.forward(src, src_len, tgt, tgt_len),
                              lambda u: (model.backward(u), {k: v.copy() for k, v in model.grads.items()})[1])
    assert report.max_error < 1e-6, str(report)
    assert set(report.errors) == set(model.params)
    assert np.any(model.out_drop._mask == 0) and np.any(model.src_drop._mask == 0)
    assert model.encoder.dropout == (0.4 if layers > 1 else 0.0)


@pytest.mark.parametrize("cell,condition,layers", [("lstm", "state", 2), ("gru", "input", 1)])
def test_vector_to_sequence_dropout_gradients(cell, condition, layers):
    rng = np.random.default_rng(0)
    model = VectorToSequence(5, 7, embed=3, hidden=4, layers=layers, cell=cell, condition=condition,
                             dtype=np.float64, seed=0, dropout=0.4)
    v, tokens, lengths = rng.normal(size=(3, 5)), rng.integers(1, 7, size=(4, 3)), np.array([4, 2, 3])

    def backward(u):
        dv = model.backward(u)
        return {"v": dv, **{k: g.copy() for k, g in model.grads.items()}}

    report = fixed_mask_check(model, {"v": v, **model.params}, lambda v, **_: model.forward(v, tokens, lengths),
                              backward)
    assert report.max_error < 1e-6, str(report)


def test_ctc_model_dropout_gradients():
    rng = np.random.default_rng(0)
    model = CTCModel(4, 5, "lstm", hidden=3, layers=2, dtype=np.float64, seed=0, dropout=0.4)
    x, lengths = rng.normal(size=(6, 2, 4)), np.array([6, 4])

    def backward(u):
        dx = model.backward(u)
        return {"x": dx, **{k: g.copy() for k, g in model.grads.items()}}

    report = fixed_mask_check(model, {"x": x, **model.params}, lambda x, **_: model.forward(x, lengths), backward)
    assert report.max_error < 1e-6, str(report)


def test_models_in_eval_mode_ignore_dropout():
    """Dropout on or off, the same weights give the same eval-mode outputs (decoding, metrics)."""
    rng = np.random.default_rng(0)
    src, src_len = rng.integers(4, 7, size=(5, 3)), np.array([5, 2, 4])
    tgt, tgt_len = rng.integers(4, 6, size=(4, 3)), np.array([4, 3, 1])
    a = Seq2Seq(7, 6, embed=3, hidden=3, layers=2, dtype=np.float64, seed=1, dropout=0.5).eval()
    b = Seq2Seq(7, 6, embed=3, hidden=3, layers=2, dtype=np.float64, seed=1).eval()
    np.testing.assert_array_equal(a.forward(src, src_len, tgt, tgt_len), b.forward(src, src_len, tgt, tgt_len))
    assert a.greedy(src, src_len) == b.greedy(src, src_len)
    assert not np.array_equal(a.train().forward(src, src_len, tgt, tgt_len), b.forward(src, src_len, tgt, tgt_len))


@pytest.mark.parametrize("value", ["1.5", "-0.1", "1", "abc"])
def test_bad_dropout_is_one_line_exit_2(tmp_path, capsys, value):
    (tmp_path / "p.tsv").write_text(PAIRS, encoding="utf-8")
    for argv in (["translate", "train", str(tmp_path / "p.tsv")], ["names", "train", str(tmp_path)],
                 ["transcribe", "train", str(tmp_path / "m.csv")]):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--out", str(tmp_path / "o"), "--dropout", value])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "--dropout" in err and "0 <= P < 1" in err and repr(value) in err, err


def test_translate_dropout_is_saved_and_resume_is_bit_identical(tmp_path, capsys):
    """--dropout reaches the model and its config; stopped at step 3 and resumed to 7, the weights
    equal those of one 7-step run bit for bit (the dropout generators come back from the checkpoint)."""
    (tmp_path / "p.tsv").write_text(PAIRS, encoding="utf-8")
    common = ["--batch-size", "4", "--embed", "8", "--test-fraction", "0.2", "--layers", "2", *FAST]
    pairs = str(tmp_path / "p.tsv")
    assert main(["translate", "train", pairs, "--out", str(tmp_path / "full"), "--steps", "7",
                 "--dropout", "0.3", *common]) == 0
    assert main(["translate", "train", pairs, "--out", str(tmp_path / "part"), "--steps", "3",
                 "--dropout", "0.3", *common]) == 0
    assert main(["translate", "train", pairs, "--out", str(tmp_path / "part"), "--resume", str(tmp_path / "part"),
                 "--steps", "7", *common]) == 0
    capsys.readouterr()
    metrics = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert metrics["steps"] == 7 and metrics["config"]["dropout"] == 0.3
    trainer = json.loads((tmp_path / "part" / "checkpoint" / "trainer.json").read_text())
    assert {"src_drop.rng", "out_drop.rng", "encoder.dropout_rng"} <= set(trainer["model_random_state"])
    full = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    part = load_file(str(tmp_path / "part" / "checkpoint" / "model.safetensors"))
    assert full.keys() == part.keys()
    for k in full:
        assert np.array_equal(full[k], part[k]), k
    # the run without dropout is another run: the option changed the training
    assert main(["translate", "train", pairs, "--out", str(tmp_path / "none"), "--steps", "7", *common]) == 0
    none = load_file(str(tmp_path / "none" / "checkpoint" / "model.safetensors"))
    assert not np.array_equal(none["out.weight"], full["out.weight"])
    assert json.loads((tmp_path / "none" / "metrics.json").read_text())["config"]["dropout"] == 0.0


def test_names_and_transcribe_take_dropout(tmp_path, capsys):
    from rnnkit.tasks.one_to_many import load_names_model
    from rnnkit.tasks.speech import SpeechConfig, build_model

    speech = build_model(SpeechConfig(layers=2, dropout=0.2, alphabet="ab"), seed=0)
    assert speech.drop.p == 0.2 and speech.rnn.dropout == 0.2

    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "Polish.txt").write_text("Nowak\nKowalski\nWojcik\nKaminski\n", encoding="utf-8")
    (tmp_path / "names" / "Czech.txt").write_text("Novak\nSvoboda\nDvorak\nCerny\n", encoding="utf-8")
    assert main(["names", "train", str(tmp_path / "names"), "--out", str(tmp_path / "m"), "--steps", "3",
                 "--dropout", "0.25", *FAST]) == 0
    model, cfg = load_names_model(tmp_path / "m")
    assert cfg.dropout == 0.25 and model.in_drop.p == 0.25 and not model.training
    capsys.readouterr()


@pytest.mark.slow
def test_translate_dropout_killed_then_resumed_is_bit_identical(tmp_path):
    """A real `translate train --dropout 0.3` process killed with SIGKILL after a few checkpoints, then
    resumed: its weights equal those of one uninterrupted run of the same number of steps."""
    import time

    from fault_tools import popen, rnnkit
    from rnnkit.train import load_checkpoint

    (tmp_path / "p.tsv").write_text(PAIRS, encoding="utf-8")
    pairs, out = tmp_path / "p.tsv", tmp_path / "run"
    common = ["--batch-size", "4", "--embed", "8", "--test-fraction", "0.2", "--layers", "2", *FAST]
    p = popen("translate", "train", pairs, "--out", out, "--steps", 1_000_000, "--checkpoint-every", "2",
              "--checkpoint-seconds", "0", "--dropout", "0.3", *common)
    try:
        deadline = time.monotonic() + 120
        step = 0
        while time.monotonic() < deadline and step < 6:
            time.sleep(0.2)
            if (out / "checkpoint" / "manifest.json").is_file():
                try:
                    step = load_checkpoint(out / "checkpoint")[1]["trainer"]["step"]
                except Exception:                                    # mid-rename: look again
                    pass
    finally:
        p.kill()
        p.wait()
        p.stderr.close()
        p.stdout.close()
    step = load_checkpoint(out / "checkpoint")[1]["trainer"]["step"]
    assert step >= 6, "the run made no checkpoints"
    r = rnnkit("translate", "train", pairs, "--out", out, "--resume", out, "--steps", step + 3, *common)
    assert r.returncode == 0, r.stderr
    r = rnnkit("translate", "train", pairs, "--out", tmp_path / "full", "--steps", step + 3, "--dropout", "0.3",
               *common)
    assert r.returncode == 0, r.stderr
    a = load_file(str(out / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    for k in a:
        assert np.array_equal(a[k], b[k]), k
