"""The language model (FD in float64, torch parity), text-generation data, training, sampling and CLI."""
import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.errors import UserError
from rnnkit.gradcheck import numeric_gradient, relative_error
from rnnkit.losses import softmax_cross_entropy
from rnnkit.models import RNNLanguageModel
from rnnkit.tasks import textgen as tg

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_gradients_fd(cell):
    rng = np.random.default_rng(0)
    m = RNNLanguageModel(6, 3, 4, num_layers=2, cell=cell, seed=1).astype(np.float64)
    x, y = rng.integers(0, 6, (4, 2)), rng.integers(0, 6, (4, 2))
    s0 = rng.standard_normal((2, 2, 4))
    state0 = (s0, rng.standard_normal((2, 2, 4))) if cell == "lstm" else s0
    up = tuple(rng.standard_normal((2, 2, 4)) for _ in range(2 if cell == "lstm" else 1))

    def loss():
        logits, st = m.forward(x, state0)
        st = st if isinstance(st, tuple) else (st,)
        return softmax_cross_entropy(logits, y)[0] + sum(float((u * s).sum()) for u, s in zip(up, st))

    logits, _ = m.forward(x, state0)
    _, dlogits = softmax_cross_entropy(logits, y)
    dstate0 = m.backward(dlogits, up if cell == "lstm" else up[0])
    grads = {k: v.copy() for k, v in m.grads.items()}
    assert set(grads) == set(m.params) and "embedding.weight" in grads and "head.bias" in grads
    for k, p in m.params.items():
        err = relative_error(grads[k], numeric_gradient(loss, p))
        assert err < 1e-6, f"{cell} {k}: {err:.2e}"
    for i, s in enumerate(state0 if cell == "lstm" else (state0,)):
        d = dstate0[i] if cell == "lstm" else dstate0
        assert relative_error(d, numeric_gradient(loss, s)) < 1e-6, f"{cell} initial state {i}"
    assert m.num_parameters() == sum(p.size for p in m.params.values())


def test_language_model_matches_torch():
    torch = pytest.importorskip("torch")
    m = RNNLanguageModel(7, 5, 6, num_layers=2, cell="lstm", seed=0).astype(np.float64)

    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(7, 5)
            self.rnn = torch.nn.LSTM(5, 6, 2)
            self.head = torch.nn.Linear(6, 7)

        def forward(self, x):
            return self.head(self.rnn(self.embedding(x))[0])

    t = T().double()
    t.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})  # names match exactly
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 7, (5, 3)), rng.integers(0, 7, (5, 3))
    lt = t(torch.tensor(x))
    torch.nn.functional.cross_entropy(lt.reshape(-1, 7), torch.tensor(y).reshape(-1)).backward()
    logits, _ = m.forward(x)
    loss, d = softmax_cross_entropy(logits, y)
    m.backward(d)
    np.testing.assert_allclose(logits, lt.detach().numpy(), atol=1e-12)
    for k, p in t.named_parameters():
        np.testing.assert_allclose(m.grads[k], p.grad.numpy(), atol=1e-12, err_msg=k)


def test_vocab_and_streams():
    v = tg.Vocab.build("banana", "char")
    assert v.symbols == ["a", "b", "n"] and v.encode("nab").tolist() == [2, 0, 1]
    assert v.unknown("bandana!") == ["d", "!"]
    assert tg.Vocab.from_json(json.loads(json.dumps(v.to_json()))).symbols == v.symbols
    b = tg.Vocab.build("héllo".encode(), "byte")
    dec = b.decoder()
    assert "".join(dec([i]) for i in b.encode("héllo".encode())) == "héllo"  # multi-byte char streamed
    ids = np.arange(42)
    got = list(tg.stream_batches(ids, batch=2, seq_len=5))
    assert [r for _, _, r in got] == [True, False, False, False]  # L = 21: 20 targets per stream
    x0, y0, _ = got[0]
    assert x0[:, 0].tolist() == [0, 1, 2, 3, 4] and y0[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert x0[:, 1].tolist() == [21, 22, 23, 24, 25]            # stream 1 starts half-way
    assert got[1][0][0, 0] == 5                                 # next batch continues stream 0
    assert got[-1][1][-1, 0] == 20 and got[-1][0].shape == (5, 2)
    assert [x.shape[0] for x, _, _ in tg.stream_batches(np.arange(40), 2, 6)] == [6, 6, 6, 1]  # short tail


def test_train_and_sample_learns_a_pattern(tmp_path):
    from rnnkit.train import TrainConfig

    cfg = tg.TextGenConfig(embed_dim=8, hidden_size=32, seq_len=16, batch=4, val_frac=0.1)
    model, vocab, metrics = tg.train(TEXT, cfg, TrainConfig(steps=150, lr=1e-2, eval_every=50, progress=False),
                                     out_dir=tmp_path, log=lambda m: None)
    assert metrics["val_bits_per_char"] < 1.0 and metrics["steps"] == 150
    assert 140 * 16 * 4 < metrics["tokens_seen"] <= 150 * 16 * 4  # epoch tails are shorter
    out = "".join(tg.generate(model, vocab, 40, 0.0, prime_ids=tg.encode_prime(vocab, "the cat sat ")))
    assert "on the " in out
    m2, v2, _ = tg.load(tmp_path)
    out2 = "".join(tg.generate(m2, v2, 40, 0.0, prime_ids=tg.encode_prime(v2, "the cat sat ")))
    assert out2 == out
    assert json.loads((tmp_path / "metrics.json").read_text())["val_loss_nats"] == metrics["val_loss_nats"]


def test_pick_topk_and_temperature():
    rng = np.random.default_rng(0)
    z = np.array([0.0, 5.0, 4.9, -3.0])
    assert tg.pick(z, rng, 0.0) == 1
    assert {tg.pick(z, rng, 1.0, top_k=2) for _ in range(200)} == {1, 2}
    assert {tg.pick(z, rng, 100.0) for _ in range(300)} == {0, 1, 2, 3}


@pytest.fixture
def corpus(tmp_path):
    f = tmp_path / "text.txt"
    f.write_text(TEXT, encoding="utf-8")
    return f


SMALL = ["--hidden", "16", "--embed", "8", "--seq-len", "16", "--batch", "4", "--no-progress"]


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_train_sample_resume(tmp_path, corpus, capsys):
    full, half = tmp_path / "full", tmp_path / "half"
    rc, out, err = run(["textgen", "train", str(corpus), "--out", str(full), "--steps", "12", "--eval-every", "4",
                        "--sample-length", "30", *SMALL], capsys)
    assert rc == 0 and len(out.strip("\n")) > 0 and "saved to" in err
    metrics = json.loads((full / "metrics.json").read_text())
    for k in ("train_loss_nats", "train_bits_per_char", "val_loss_nats", "val_bits_per_char", "steps",
              "tokens_seen", "tokens_per_s"):
        assert metrics[k] is not None, k
    assert (full / "checkpoint" / "model.safetensors").is_file()
    # interrupted run resumed: identical final losses
    run(["textgen", "train", str(corpus), "--out", str(half), "--steps", "5", "--eval-every", "4",
         "--sample-length", "0", *SMALL], capsys)
    rc, _, _ = run(["textgen", "train", "--resume", str(half), "--steps", "12", "--eval-every", "4",
                    "--sample-length", "0", "--no-progress"], capsys)
    m2 = json.loads((half / "metrics.json").read_text())
    assert rc == 0 and m2["steps"] == 12
    hist = lambda d: json.loads((d / "checkpoint" / "trainer.json").read_text())["history"]
    tcfg = json.loads((full / "checkpoint" / "trainer.json").read_text())["train_config"]
    assert tcfg["steps"] == 12 and tcfg["time_budget"] is None   # the 120 s default only without --steps
    assert hist(half)["loss"] == hist(full)["loss"]               # the training loss curve, step by step
    v1, v2 = metrics["val_history"], m2["val_history"]            # the interrupted run also evaluated at 5
    assert [l for s, l in zip(v2["step"], v2["loss_nats"]) if s != 5] == v1["loss_nats"]
    assert m2["val_loss_nats"] == metrics["val_loss_nats"]
    # sampling: prime, seed, top-k, greedy, streamed to stdout
    rc, out, _ = run(["textgen", "sample", str(full), "--length", "50", "--prime", "the ", "--seed", "3",
                      "--top-k", "5"], capsys)
    assert rc == 0 and out.startswith("the ") and len(out) == 4 + 50 + 1
    rc, out2, _ = run(["textgen", "sample", str(full), "--length", "50", "--prime", "the ", "--seed", "3",
                       "--top-k", "5"], capsys)
    assert out2 == out
    rc, out, err = run(["textgen", "sample", str(full), "--length", "10", "--prime", "the Zcat", "--unknown",
                        "skip", "--greedy"], capsys)
    assert rc == 0 and "dropped" in err and out.startswith("the cat") and "'Z'" in err


def test_cli_default_corpus_and_byte_level(tmp_path, capsys, corpus):
    rc, out, err = run(["textgen", "train", "--out", str(tmp_path / "d"), "--steps", "2", "--sample-length", "5",
                        "--val-frac", "0.01", *SMALL], capsys)
    assert rc == 0 and "vocabulary" in err
    cfg = json.loads((tmp_path / "d" / "checkpoint" / "config.json").read_text())
    assert cfg["corpus"] == "pydoc_data.topics" and cfg["level"] == "char"
    binary = tmp_path / "b.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    rc, out, err = run(["textgen", "train", str(binary), "--level", "byte", "--out", str(tmp_path / "b"),
                        "--steps", "2", "--sample-length", "20", *SMALL], capsys)
    assert rc == 0
    assert json.loads((tmp_path / "b" / "checkpoint" / "vocab.json").read_text())["level"] == "byte"


def bad_cases(tmp_path, corpus):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binf = tmp_path / "bin.dat"
    binf.write_bytes(b"\x00\x01\x02abc" * 100)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème ".encode("latin-1") * 100)
    short = tmp_path / "short.txt"
    short.write_text("tiny text")
    out = str(tmp_path / "o")
    train = ["textgen", "train"]
    return [
        (train + [str(tmp_path / "missing.txt"), "--out", out], "does not exist"),
        (train + [str(empty), "--out", out], "is empty"),
        (train + [str(binf), "--out", out], "looks binary"),
        (train + [str(latin), "--out", out], "not UTF-8"),
        (train + [str(short), "--out", out], "one batch needs"),
        (train + [str(corpus), "--out", out, "--hidden", "-3"], "positive integer"),
        (train + [str(corpus), "--out", out, "--lr", "fast"], "positive"),
        (train + [str(corpus), "--out", out, "--seed", "-1"], "integer >= 0"),
        (train + [str(corpus), "--out", out, "--val-frac", "1.5"], "[0, 1)"),
        (train + [str(corpus), "--out", out, "--cell", "transformer"], "invalid choice"),
        (train + [str(corpus), "--out", out, "--schedule", "cosine"], "needs --steps"),
        (train + [str(corpus)], "--out DIR is required"),
        (train + [str(corpus), "--out", str(corpus / "sub")], "lies under the file"),
        (train + [str(corpus), "--out", str(corpus)], "is a file, not a folder"),
        (train + [str(corpus), "--out", out, "--resume", str(tmp_path / "nope")], "does not exist"),
        (["textgen", "sample", str(tmp_path / "nope")], "does not exist"),
        (["textgen", "sample", str(tmp_path)], "not an rnnkit checkpoint"),
        (["textgen", "sample", str(tmp_path), "--temperature", "-1"], "number >= 0"),
        (["textgen", "sample", str(tmp_path), "--top-k", "0"], "positive integer"),
    ]


def call(argv):
    """main(argv)'s exit status, whether it returns it or argparse exits."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_cli_bad_input_one_line_no_traceback(tmp_path, corpus, capsys):
    for argv, expect in bad_cases(tmp_path, corpus):
        rc = call(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err and expect in err, (argv, err)
        assert not (tmp_path / "o").exists(), f"{argv} wrote output"


def test_cli_bad_checkpoints(tmp_path, corpus, capsys):
    run(["textgen", "train", str(corpus), "--out", str(tmp_path / "m"), "--steps", "2", "--sample-length", "0",
         *SMALL], capsys)
    ck = tmp_path / "m" / "checkpoint"
    w = ck / "model.safetensors"
    good = w.read_bytes()
    w.write_bytes(good[: len(good) // 2])
    for argv in (["textgen", "sample", str(tmp_path / "m")],
                 ["textgen", "train", str(corpus), "--resume", str(tmp_path / "m"), "--steps", "4", "--no-progress"]):
        rc, out, err = run(argv, capsys)
        assert rc == 2 and "truncated" in err and len(err.strip().splitlines()) == 1
    w.write_bytes(good)
    man = json.loads((ck / "manifest.json").read_text())
    man["version"] = 0
    (ck / "manifest.json").write_text(json.dumps(man))
    rc, out, err = run(["textgen", "sample", str(tmp_path / "m")], capsys)
    assert rc == 2 and "version 0" in err
    man["version"] = 1
    (ck / "manifest.json").write_text(json.dumps(man))
    rc, out, err = run(["textgen", "sample", str(tmp_path / "m"), "--prime", "Zq"], capsys)
    assert rc == 2 and "not in the model's vocabulary" in err and "'Z'" in err and out == ""
    other = tmp_path / "other.txt"
    other.write_text(TEXT.upper())
    rc, out, err = run(["textgen", "train", str(other), "--resume", str(tmp_path / "m"), "--steps", "4",
                        "--no-progress"], capsys)
    assert rc == 2 and "differs from the one the resumed run was trained on" in err


def test_resume_refuses_model_options_it_would_ignore(tmp_path, corpus, capsys):
    """A resumed run keeps its saved model: an option asking for another one is one clear line (exit 2,
    the checkpoint untouched), while the saved values themselves (the same command again) are accepted."""
    m = str(tmp_path / "m")
    run(["textgen", "train", str(corpus), "--out", m, "--steps", "2", "--sample-length", "0", *SMALL], capsys)
    weights = (tmp_path / "m" / "checkpoint" / "model.safetensors").read_bytes()
    for extra, names in ((["--dropout", "0.5"], ["--dropout 0.5", "0.1"]),
                         (["--weight-drop", "0"], ["--weight-drop 0"]),
                         (["--hidden", "32", "--cell", "gru"], ["--hidden 32", "--cell gru"])):
        rc, out, err = run(["textgen", "train", str(corpus), "--resume", m, "--steps", "4", *extra,
                            "--no-progress"], capsys)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "keeps its model settings" in err, err
        assert all(n in err for n in names), err
        assert (tmp_path / "m" / "checkpoint" / "model.safetensors").read_bytes() == weights
    rc, out, err = run(["textgen", "train", str(corpus), "--resume", m, "--steps", "4", "--sample-length", "0",
                        "--dropout-output", "0.3", *SMALL], capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["steps"] == 4


def test_library_errors():
    with pytest.raises(UserError, match="--level"):
        tg.TextGenConfig(level="sentence")
    with pytest.raises(UserError, match="another task"):
        tg.TextGenConfig.from_json({"task": "classify"})
    with pytest.raises(ValueError):
        list(tg.generate(RNNLanguageModel(3, 2, 2), tg.Vocab.build("abc", "char"), length=-1))


def test_benchmark_script_runs(tmp_path):
    pytest.importorskip("torch")
    import subprocess
    import sys

    data = tmp_path / "t.txt"
    data.write_text(TEXT * 3)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "textgen_vs_torch.py"
    r = subprocess.run([sys.executable, str(script), "--budget", "0.5", "--threads", "1", "--data", str(data),
                        "--no-write"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| rnnkit |" in r.stdout and "| PyTorch |" in r.stdout
