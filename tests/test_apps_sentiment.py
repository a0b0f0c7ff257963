"""Text classification for small data: pretrained word vectors (reader and use), concat pooling (FD),
the dropouts of the classifier network (FD with fixed masks), language-model pretraining (ULMFiT),
ensembles of seeds (save/load round trip), and a small check on the real sentiment files."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from rnnkit import check_function
from rnnkit.cli import main
from rnnkit.data.embeddings import embedding_matrix, read_word_vectors
from rnnkit.errors import UserError
from rnnkit.layers.heads import pool_backward, pool_forward
from rnnkit.models import SequenceNet
from rnnkit.models.ensemble import Ensemble
from rnnkit.tasks.classify import SequenceClassifier
from rnnkit.tasks.pretrain import pretrain_language_model, transfer

FAST = dict(hidden_size=6, embedding_dim=5, epochs=2, batch_size=8, seed=0, ensemble=1)


def shared_data() -> Path:
    return Path(os.environ.get("RNNKIT_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def toy_text(n=60, seed=0):
    rng = np.random.default_rng(seed)
    words = {"1": ["good", "great", "fine", "love"], "0": ["bad", "awful", "poor", "hate"]}
    labels = ["1", "0"] * (n // 2)
    return [f"the {' '.join(rng.choice(words[y], 2))} film" for y in labels], np.array(labels)


# -- word vectors ---------------------------------------------------------------------------------------
VECS = {"good": [0.5, 1.0, -1.5], "bad": [-0.5, -1.0, 1.5], "film": [0.0, 0.25, 2.0], "zebra": [9.0, 9.0, 9.0]}


def write_vectors(path: Path, fmt: str, extra_line: str | None = None, at: int | None = None):
    lines = [f"{w} {' '.join(repr(v) for v in vec)}" for w, vec in VECS.items()]
    if extra_line is not None:
        lines.insert(len(lines) if at is None else at, extra_line)
    if fmt == "word2vec":
        lines.insert(0, f"{len(lines)} 3")
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt,name", [("glove", "v.txt"), ("word2vec", "v.vec"), ("glove", "v.txt.gz")])
def test_read_word_vectors_keeps_only_the_vocabulary(tmp_path, fmt, name):
    wv = read_word_vectors(write_vectors(tmp_path / name, fmt), keep={"good", "film", "absent"})
    assert wv.dim == 3 and wv.n_read == 4 and wv.format == fmt
    assert sorted(wv.vectors) == ["film", "good"]                      # "zebra" read, checked, not kept
    np.testing.assert_array_equal(wv.vectors["good"], VECS["good"])


def test_read_word_vectors_lowercase_first_form_wins(tmp_path):
    p = tmp_path / "v.txt"
    p.write_text("Good 1 2\ngood 3 4\nGOOD 5 6\n")
    np.testing.assert_array_equal(read_word_vectors(p, {"good"}, lowercase=True).vectors["good"], [1, 2])
    np.testing.assert_array_equal(read_word_vectors(p, {"good"}).vectors["good"], [3, 4])


@pytest.mark.parametrize("fmt,line,at,lineno,msg", [
    ("glove", "oops 1.0 2.0", 2, 3, "expected a word and 3 numbers"),
    ("glove", "oops 1.0 x 2.0", 1, 2, "'x' is not a number"),
    ("glove", "oops 1.0 nan 2.0", 3, 4, "NaN or infinity"),
    ("word2vec", "oops 1.0 2.0 3.0 4.0", 0, 2, "expected a word and 3 numbers"),  # line 1 is the header
])
def test_read_word_vectors_bad_line_names_file_and_line(tmp_path, fmt, line, at, lineno, msg):
    p = write_vectors(tmp_path / "bad.txt", fmt, line, at)
    with pytest.raises(UserError) as e:
        read_word_vectors(p, {"good"})
    text = str(e.value)
    assert len(text.splitlines()) == 1 and text.startswith(f"{p}:{lineno}:") and msg in text, text


def test_read_word_vectors_header_count_and_binary(tmp_path):
    p = tmp_path / "w.vec"
    p.write_text("5 2\na 1 2\nb 3 4\n")
    with pytest.raises(UserError, match="header says 5 vectors, the file has 2"):
        read_word_vectors(p)
    b = tmp_path / "w.bin"
    b.write_bytes(b"2 2\n\xff\xfe\x00\x01binary")
    with pytest.raises(UserError, match="not UTF-8.*binary=False"):
        read_word_vectors(b)
    with pytest.raises(UserError, match="no such embeddings file"):
        read_word_vectors(tmp_path / "none.txt")


def test_embedding_matrix_rows():
    vocab = {"good": 2, "film": 3, "unseen": 4}
    wv = read_word_vectors.__globals__["WordVectors"](3, {k: np.array(v) for k, v in VECS.items()}, 4, "glove")
    W, found = embedding_matrix(vocab, wv, 5, seed=0)
    assert W.shape == (5, 3) and found == 2
    np.testing.assert_array_equal(W[2], VECS["good"])
    np.testing.assert_array_equal(W[0], 0.0)                          # padding
    assert np.all(W[4] != 0)                                          # drawn, not zero


def test_classifier_uses_the_vectors_and_saves_them(tmp_path):
    X, y = toy_text()
    path = write_vectors(tmp_path / "v.txt", "glove")
    clf = SequenceClassifier(embeddings=str(path), **{**FAST, "embedding_dim": 99, "epochs": 1})
    clf.set_params(lr=1e-12)  # training leaves the rows (almost) where the file put them
    clf.fit(X, y)
    assert clf.embedding_dim_ == 3 and clf.embeddings_found_ == 3   # good, bad, film (zebra not in X)
    W = clf.model_.embed.params["weight"]
    np.testing.assert_allclose(W[clf.vocab_["good"]], VECS["good"], atol=1e-6)
    clf.save(tmp_path / "m")
    path.unlink()                                                    # the saved model needs no vector file
    back = SequenceClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_cli_embeddings_bad_line_exit_2(tmp_path, capsys):
    X, y = toy_text(20)
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(f"{a},{b}" for a, b in zip(X, y)) + "\n")
    bad = write_vectors(tmp_path / "bad.vec", "word2vec", "good 1 2", 1)
    code = main(["classify", "train", str(tmp_path / "t.csv"), "--text-col", "text", "--label-col", "label",
                 "--out", str(tmp_path / "o"), "--embeddings", str(bad), "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("rnnkit: error:") and f"{bad}:3:" in err, err  # header, "good", the bad line


# -- concat pooling and the network's dropouts -----------------------------------------------------------
def test_bad_pooling_names():
    out = np.zeros((2, 1, 2))
    for bad in ["sum", "max+max", "max+", ""]:
        with pytest.raises(ValueError, match="pooling must be one of"):
            pool_forward(out, [2], bad)


@pytest.mark.parametrize("cell,pooling", [("gru", "concat"), ("lstm", "max+mean")])
def test_sequence_net_with_dropouts_gradient_fd(cell, pooling):
    """Every dropout on (embedding rows, variational input, between layers, weight-drop, pooled vector):
    FD with the masks fixed by restoring the generators before each forward."""
    net = SequenceNet(1, 3, cell=cell, hidden_size=3, num_layers=2, bidirectional=True, pooling=pooling,
                      vocab_size=9, embedding_dim=4, dropout=0.3, seed=2, embedding_dropout=0.3,
                      input_dropout=0.3, output_dropout=0.3, weight_drop=0.3).astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 9, (5, 3))
    lengths = np.array([5, 2, 4])
    state = net.random_state_dict()

    def forward(**params):
        net.load_random_state_dict(state)
        return net.forward(x, lengths)

    def backward(up):
        forward()
        net.backward(up)
        return {k: v.copy() for k, v in net.grads.items()}

    report = check_function(forward, backward, dict(net.params), seed=3)
    assert report.passed, str(report)
    net.eval()  # evaluation: no masks, the same output every call
    a = net.forward(x, lengths)
    np.testing.assert_array_equal(a, net.forward(x, lengths))
    net.train()
    assert not np.array_equal(net.forward(x, lengths), net.forward(x, lengths))


# -- language-model pretraining --------------------------------------------------------------------------
def test_language_model_learns_and_transfers_both_directions():
    rng = np.random.default_rng(0)
    seqs = [np.array([2, 3, 4, 5, 6])[: int(rng.integers(2, 6))] for _ in range(40)]  # always 2 3 4 ...
    lm = pretrain_language_model(seqs, 8, 4, 6, 1, "gru", epochs=30, lr=0.02, batch_size=8, seed=0)
    logits, _ = lm.forward(np.array([[2], [3]]))
    assert logits[0, 0].argmax() == 3 and logits[1, 0].argmax() == 4     # it learned "2 -> 3 -> 4"
    bwd = pretrain_language_model(seqs, 8, 4, 6, 1, "gru", epochs=2, seed=1, reverse=True,
                                  embedding=lm.embedding.params["weight"], freeze_embedding=True)
    np.testing.assert_array_equal(bwd.embedding.params["weight"], lm.embedding.params["weight"])  # frozen
    net = SequenceNet(1, 2, cell="gru", hidden_size=6, bidirectional=True, vocab_size=8, embedding_dim=4)
    assert sorted(transfer(lm, net)) == ["embed.weight", "rnn.bias_hh_l0", "rnn.bias_ih_l0",
                                         "rnn.weight_hh_l0", "rnn.weight_ih_l0"]
    assert len(transfer(bwd, net, reverse=True, embedding=False)) == 4
    np.testing.assert_array_equal(net.params["rnn.weight_hh_l0_reverse"], bwd.params["rnn.weight_hh_l0"])
    np.testing.assert_array_equal(net.params["embed.weight"], lm.params["embedding.weight"])


def test_pretraining_changes_the_initial_weights(monkeypatch):
    """fit with pretrain_epochs > 0 starts the classifier from the language models' weights; a resumed
    or pretrain_epochs=0 fit does not pretrain."""
    import rnnkit.tasks.classify as C

    X, y = toy_text()
    starts = {}
    real = C.run_training

    def spy(est, net, *a, **k):
        starts[int(est.pretrain_epochs)] = {n: v.copy() for n, v in net.params.items()}
        return real(est, net, *a, **k)

    monkeypatch.setattr(C, "run_training", spy)
    for epochs in (0, 2):
        SequenceClassifier(pretrain_epochs=epochs, bidirectional=True, pooling="max", **FAST).fit(X, y)
    plain, pre = starts[0], starts[2]
    for name in ["embed.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0_reverse"]:
        assert not np.allclose(plain[name], pre[name]), name
    np.testing.assert_array_equal(plain["head.weight"], pre["head.weight"])  # the head is not pretrained


def test_pretrain_text_widens_the_vocabulary(tmp_path):
    X, y = toy_text()
    (tmp_path / "more.txt").write_text("a splendid film\n\nan unusual film\n")
    clf = SequenceClassifier(pretrain_epochs=1, pretrain_text=str(tmp_path / "more.txt"), **FAST).fit(X, y)
    assert "splendid" in clf.vocab_ and "unusual" in clf.vocab_
    with pytest.raises(UserError, match="no such pretraining text file"):
        SequenceClassifier(pretrain_text=str(tmp_path / "none.txt"), **FAST).fit(X, y)


# -- ensembles -------------------------------------------------------------------------------------------
def test_ensemble_averages_members_and_round_trips(tmp_path):
    X, y = toy_text()
    clf = SequenceClassifier(**{**FAST, "ensemble": 3}).fit(X, y)
    assert isinstance(clf.model_, Ensemble) and len(clf.model_.members) == 3
    assert len(clf.history_["members"]) == 3
    singles = [SequenceClassifier(**{**FAST, "seed": s}).fit(X, y).predict_proba(X) for s in (0, 1, 2)]
    np.testing.assert_allclose(clf.predict_proba(X), np.mean(singles, axis=0), rtol=1e-5, atol=1e-7)
    assert not np.allclose(singles[0], singles[1])                    # members differ
    clf.save(tmp_path / "m")
    names = json.loads((tmp_path / "m" / "estimator.json").read_text())["params"]
    assert names["ensemble"] == 3
    back = SequenceClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert sorted(back.model_.params) == sorted(clf.model_.params)
    assert "m2.rnn.weight_hh_l0" in back.model_.params


def test_cli_ensemble_model_folder_and_predict(tmp_path, capsys):
    X, y = toy_text(40)
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(f"{a},{b}" for a, b in zip(X, y)) + "\n")
    args = ["--text-col", "text", "--label-col", "label"]
    assert main(["classify", "train", str(tmp_path / "t.csv"), *args, "--out", str(tmp_path / "o"),
                 "--ensemble", "2", "--epochs", "1", "--hidden", "4", "--no-progress"]) == 0
    assert (tmp_path / "o" / "model" / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["classify", "predict", str(tmp_path / "o"), str(tmp_path / "t.csv"), "--text-col", "text"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 41


# -- real data -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_default_text_classifier_on_a_real_sentiment_file():
    """The default text recipe on one real file learns well beyond the majority class (a weak bar, so a
    change of machine cannot fail it; the comparison with bag-of-words is in benchmarks/)."""
    path = shared_data() / "sentiment" / "amazon_cells_labelled.txt"
    if not path.is_file():
        pytest.skip("shared data not present")
    from rnnkit.data.tables import read_text_labels

    texts, y = read_text_labels(path, 0, 1, header=False)
    order = np.random.default_rng(0).permutation(len(texts))
    te, tr = order[:200], order[200:]
    clf = SequenceClassifier(ensemble=1).fit([texts[i] for i in tr], y[tr])
    assert clf.score([texts[i] for i in te], y[te]) >= 0.7


def test_cli_dropout_goes_into_the_classifier(tmp_path):
    X, y = toy_text(40)
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(f"{a},{b}" for a, b in zip(X, y)) + "\n")
    assert main(["classify", "train", str(tmp_path / "t.csv"), "--text-col", "text", "--label-col", "label",
                 "--out", str(tmp_path / "o"), "--dropout", "0.3", "--epochs", "1", "--hidden", "4",
                 "--no-progress"]) == 0
    params = json.loads((tmp_path / "o" / "model" / "estimator.json").read_text())["params"]
    assert params["input_dropout"] == params["output_dropout"] == params["dropout"] == 0.3
    assert params["cell"] == "gru" and params["pooling"] == "max+mean"   # the text recipe, written out
    assert params["ensemble"] == 5
    back = SequenceClassifier.load(tmp_path / "o" / "model")
    assert all(m.input_drop.p == 0.3 and m.output_drop.p == 0.3 for m in back.model_.members)


def test_cli_ensemble_resume_is_exact(tmp_path):
    """A run stopped after member 0 (member 1 not started, no model yet) resumed, and a finished run
    resumed for more epochs, end with the bits of the uninterrupted runs."""
    import shutil

    from safetensors.numpy import load_file

    X, y = toy_text(40)
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(f"{a},{b}" for a, b in zip(X, y)) + "\n")
    base = ["classify", "train", str(tmp_path / "t.csv"), "--text-col", "text", "--label-col", "label",
            "--ensemble", "2", "--hidden", "4", "--no-progress"]

    def weights(d):
        return load_file(str(tmp_path / d / "model" / "model.safetensors"))

    assert main([*base, "--out", str(tmp_path / "full"), "--epochs", "2"]) == 0
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "model")
    shutil.rmtree(tmp_path / "cut" / "members" / "1")
    assert main([*base, "--out", str(tmp_path / "cut"), "--resume", str(tmp_path / "cut"), "--epochs", "2"]) == 0
    assert main([*base, "--out", str(tmp_path / "one"), "--epochs", "1"]) == 0
    assert main([*base, "--out", str(tmp_path / "one"), "--resume", str(tmp_path / "one"), "--epochs", "2"]) == 0
    full = weights("full")
    for d in ("cut", "one"):
        w = weights(d)
        assert w.keys() == full.keys() and all(np.array_equal(w[k], full[k]) for k in full), d


def test_export_ensemble_one_graph_per_member(tmp_path, capsys):
    """`rnnkit export` of a 2-seed classifier writes FILE_m0.onnx and FILE_m1.onnx; the mean of their
    softmaxes is the classifier's predict_proba."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    X, y = toy_text(40)
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(f"{a},{b}" for a, b in zip(X, y)) + "\n")
    assert main(["classify", "train", str(tmp_path / "t.csv"), "--text-col", "text", "--label-col", "label",
                 "--out", str(tmp_path / "o"), "--ensemble", "2", "--epochs", "1", "--hidden", "4",
                 "--no-progress"]) == 0
    assert main(["export", str(tmp_path / "o"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    est = SequenceClassifier.load(tmp_path / "o" / "model")
    x, lengths = est._batch(est._encode(X[:5]), np.arange(5))
    probs = []
    for k in range(2):
        z = ort.InferenceSession(str(tmp_path / f"m_m{k}.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {"x": x, "sequence_lens": lengths.astype(np.int32)})[0]
        e = np.exp(z - z.max(1, keepdims=True))
        probs.append(e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(np.mean(probs, axis=0), est.predict_proba(X[:5]), atol=1e-5)
