"""`rnnkit export DIR --onnx FILE` on a trained model of every task, and `rnnkit import FILE --out DIR`
for PyTorch, ONNX and Keras files: the written graphs run in ONNX Runtime with the task model's own
outputs (1e-5), and bad input ends as one line on stderr with exit status 2 and nothing written."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from test_seq_cli import PAIRS, _tones  # noqa: E402  (the tiny data the task CLI tests train on)

# Keras 3's torch backend converts with np.array(x) (a NumPy 2 deprecation inside Keras, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
FAST = ["--no-progress", "--hidden", "6", "--seed", "0"]
ROOT = Path(__file__).resolve().parents[1]


def run_graph(path, feeds):
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def metadata(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def close(name, ours, theirs):
    err = np.abs(np.asarray(ours) - np.asarray(theirs)).max()
    assert err < 1e-5, f"{name}: max abs difference {err:.2e} from ONNX Runtime"


def export(run, tmp_path, capsys, name="m.onnx"):
    capsys.readouterr()
    assert main(["export", str(run), "--onnx", str(tmp_path / name)]) == 0
    return capsys.readouterr().out


def test_export_textgen(tmp_path, capsys):
    from rnnkit.tasks import textgen as tg

    (tmp_path / "c.txt").write_text("the quick brown fox jumps over the lazy dog. " * 30)
    assert main(["textgen", "train", str(tmp_path / "c.txt"), "--steps", "2", "--seq-len", "10", "--batch", "4",
                 "--layers", "2", "--out", str(tmp_path / "tg"), *FAST]) == 0
    out = export(tmp_path / "tg", tmp_path, capsys)
    assert "textgen model" in out and "logits (T, B" in out
    model, vocab, _ = tg.load(tmp_path / "tg")
    ids = vocab.encode("the lazy fox")[:, None].repeat(2, axis=1).astype(np.int64)  # (T, 2)
    zeros = np.zeros((2, 2, model.hidden_size), np.float32)
    got = run_graph(tmp_path / "m.onnx", {"ids": ids, "h0": zeros, "c0": zeros})
    close("logits", model.forward(ids)[0], got[0])
    assert json.loads(metadata(tmp_path / "m.onnx")["rnnkit.vocab"]) == vocab.to_json()


def test_export_classifier_with_sequence_lens(tmp_path, capsys):
    from rnnkit.tasks.classify import SequenceClassifier

    rng = np.random.default_rng(0)
    words = {"1": ["good", "great", "fine"], "0": ["bad", "awful", "poor"]}
    rows = [f"{' '.join(rng.choice(words[lab], rng.integers(1, 5)))},{lab}" for lab in ["1", "0"] * 15]
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    assert main(["classify", "train", str(tmp_path / "t.csv"), "--text-col", "text", "--label-col", "label",
                 "--bidirectional", "--pooling", "max", "--epochs", "1", "--ensemble", "1",
                 "--out", str(tmp_path / "clf"), *FAST]) == 0
    export(tmp_path / "clf", tmp_path, capsys)
    est = SequenceClassifier.load(tmp_path / "clf" / "model")
    seqs = est._encode(["good fine great film", "bad", "awful poor"])
    x, lengths = est._batch(seqs, np.arange(3))
    got = run_graph(tmp_path / "m.onnx", {"x": x, "sequence_lens": lengths.astype(np.int32)})
    close("logits", est.model_.forward(x, lengths), got[0])
    meta = json.loads(metadata(tmp_path / "m.onnx")["rnnkit.estimator"])
    assert meta["classes_"] == est.classes_.tolist() and meta["vocab_"] == est.vocab_


def test_export_forecaster(tmp_path, capsys):
    from rnnkit.tasks.forecast import Forecaster

    t = np.arange(60)
    (tmp_path / "s.csv").write_text("v\n" + "\n".join(f"{10 + np.sin(i / 3):.4f}" for i in t) + "\n")
    assert main(["forecast", "train", str(tmp_path / "s.csv"), "--column", "v", "--horizon", "2", "--lookback", "8",
                 "--epochs", "1", "--out", str(tmp_path / "fc"), *FAST]) == 0
    export(tmp_path / "fc", tmp_path, capsys)
    est = Forecaster.load(tmp_path / "fc" / "model")
    x = np.random.default_rng(1).standard_normal((8, 3, 1)).astype(np.float32)
    close("outputs", est.model_.forward(x, np.full(3, 8)), run_graph(tmp_path / "m.onnx", {"x": x})[0])
    # the default ensemble: each further network is a graph of its own, the steps around them metadata
    assert len(est.members_) == 4
    close("outputs", est.members_[3].forward(x, np.full(3, 8)), run_graph(tmp_path / "m-member4.onnx", {"x": x})[0])
    meta = json.loads(metadata(tmp_path / "m.onnx")["rnnkit.estimator"])
    assert meta["n_members_"] == 5 and meta["lookback_"] == 8 and meta["transform_"] in ("none", "log")


def test_export_ctc_acoustic_model(tmp_path, capsys):
    from rnnkit.tasks.speech import load_speech_model

    m = _tones(tmp_path)
    assert main(["transcribe", "train", str(m), "--out", str(tmp_path / "asr"), "--steps", "1", "--batch-size", "4",
                 "--n-features", "8", *FAST]) == 0
    export(tmp_path / "asr", tmp_path, capsys)
    model, cfg = load_speech_model(tmp_path / "asr")
    x = np.random.default_rng(2).standard_normal((12, 2, model.rnn.input_size)).astype(np.float32)
    lens = np.array([12, 7], np.int32)
    close("logits", model.forward(x, lens), run_graph(tmp_path / "m.onnx", {"x": x, "sequence_lens": lens})[0])
    assert json.loads(metadata(tmp_path / "m.onnx")["rnnkit.speech_config"])["alphabet"] == cfg.alphabet


def test_export_seq2seq_encoder_and_decoder_step(tmp_path, capsys):
    from rnnkit.tasks.translate import load_translator

    (tmp_path / "p.tsv").write_text(PAIRS, encoding="utf-8")
    assert main(["translate", "train", str(tmp_path / "p.tsv"), "--out", str(tmp_path / "mt"), "--steps", "1",
                 "--batch-size", "4", "--embed", "8", "--test-fraction", "0.34", *FAST]) == 0
    out = export(tmp_path / "mt", tmp_path, capsys)
    assert "m-encoder.onnx" in out and "m-decoder_step.onnx" in out
    model, src_vocab, _, _ = load_translator(tmp_path / "mt")
    src = np.random.default_rng(4).integers(4, len(src_vocab), (3, 2))                 # (S, 2) ids
    src_len = np.array([3, 2], np.int32)
    enc_out, state0, mask = model.encode(src, src_len)
    got = run_graph(tmp_path / "m-encoder.onnx", {"src": src, "src_len": src_len})
    close("enc_out", enc_out, got[0])
    tokens = np.ones(2, np.int64)
    want, _ = model._step(tokens, state0, enc_out, mask)
    step = run_graph(tmp_path / "m-decoder_step.onnx", {"tokens": tokens, "h0": got[1], "c0": got[2],
                                                          "enc_out": got[0], "src_len": src_len})
    close("logprobs", want, step[0])


def test_import_torch_onnx_keras_then_export(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from rnnkit.interop import load_imported

    tmod = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    torch.save(tmod.state_dict(), tmp_path / "gru.pt")
    assert main(["import", str(tmp_path / "gru.pt"), "--out", str(tmp_path / "imp")]) == 0
    assert "GRU: gru 3->4 (2 layers, bidirectional)" in capsys.readouterr().out
    x = np.random.default_rng(3).standard_normal((5, 2, 3)).astype(np.float32)
    with torch.no_grad():
        want = tmod(torch.tensor(x))[0].numpy()
    close("imported", load_imported(tmp_path / "imp").forward(x)[0], want)
    export(tmp_path / "imp", tmp_path, capsys, "gru.onnx")
    close("exported", run_graph(tmp_path / "gru.onnx", {"X": x})[0], want)
    # the ONNX file imports back, and so does a Keras model
    assert main(["import", str(tmp_path / "gru.onnx"), "--out", str(tmp_path / "imp2")]) == 0
    close("onnx import", load_imported(tmp_path / "imp2").forward(x)[0], want)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    km = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4, return_sequences=True), keras.layers.Dense(2)])
    km.save(tmp_path / "k.keras")
    assert main(["import", str(tmp_path / "k.keras"), "--out", str(tmp_path / "imp3")]) == 0
    xb = x.transpose(1, 0, 2)
    close("keras import", load_imported(tmp_path / "imp3").forward(x).transpose(1, 0, 2),
          keras.ops.convert_to_numpy(km(xb)))


def one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnkit: error:") and "\n" not in err and "Traceback" not in err, err
    return err


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    from onnx import TensorProto, helper, numpy_helper

    (tmp_path / "empty").mkdir()
    assert "holds no model" in one_line_error(capsys, ["export", str(tmp_path / "empty"), "--onnx",
                                                      str(tmp_path / "x.onnx")])
    assert "does not exist" in one_line_error(capsys, ["export", str(tmp_path / "nope"), "--onnx", "x.onnx"])
    (tmp_path / "model.txt").write_text("weights")
    assert "unknown model file type '.txt'" in one_line_error(capsys, ["import", str(tmp_path / "model.txt"),
                                                                      "--out", str(tmp_path / "o")])
    (tmp_path / "fake.onnx").write_text("not protobuf")
    assert "not a valid ONNX model" in one_line_error(capsys, ["import", str(tmp_path / "fake.onnx"),
                                                              "--out", str(tmp_path / "o")])
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((1, 9, 2)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((1, 9, 3)).astype(np.float32), "R")]
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y"], name="gru_node", hidden_size=3)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 1, "B", 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "lbr0.onnx"))
    err = one_line_error(capsys, ["import", str(tmp_path / "lbr0.onnx"), "--out", str(tmp_path / "o")])
    assert "'gru_node'" in err and "linear_before_reset=0" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert "not an empty folder" in one_line_error(capsys, ["import", str(tmp_path / "lbr0.onnx"), "--out",
                                                           str(tmp_path / "full")])
    assert not (tmp_path / "o").exists() and not (tmp_path / "x.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "fake.onnx", "full", "lbr0.onnx", "model.txt"]
    # the real command line: exit status 2, one line, no traceback
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    p = subprocess.run([sys.executable, "-m", "rnnkit", "import", str(tmp_path / "lbr0.onnx"), "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_no_format_library_is_imported_with_rnnkit():
    code = ("import sys, rnnkit, rnnkit.interop; from rnnkit.cli import build_parser; build_parser(); "
            "print([m for m in ('torch', 'onnx', 'onnxruntime', 'keras') if m in sys.modules])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stdout + p.stderr
