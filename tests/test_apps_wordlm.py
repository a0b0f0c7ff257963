"""Word-level language modelling: tokeniser and vocabulary (<eos>, <unk>, limits), weight tying (FD in
float64, torch parity, checkpoints re-tie), perplexity, and a tiny word-level train + sample + resume via
the CLI."""
import json
import math

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.errors import UserError
from rnnkit.gradcheck import numeric_gradient, relative_error
from rnnkit.losses import softmax_cross_entropy
from rnnkit.models import RNNLanguageModel
from rnnkit.tasks import textgen as tg
from rnnkit.tasks.words import EOS, UNK, WordVocab, tokenize

TEXT = ("the cat sat on the mat .\nthe dog sat on the log .\n\nthe cat saw the dog .\n") * 30


# -- tokeniser and vocabulary ----------------------------------------------------------------------------
def test_tokenize_puts_eos_at_every_line_end_blank_lines_included():
    assert tokenize("a  b\tc\n\nd e\n") == ["a", "b", "c", EOS, EOS, "d", "e", EOS]
    assert tokenize("no newline") == ["no", "newline", EOS]
    assert tokenize("") == []


def test_vocab_orders_by_count_and_maps_rare_and_unseen_words_to_unk():
    toks = tokenize("b a b c b a\nd\n")
    v = WordVocab.build(toks, min_count=2)
    assert v.symbols == [EOS, UNK, "b", "a"]                 # b x3, a x2; c and d once: <unk>
    assert v.encode(["a", "c", "zebra", EOS]).tolist() == [3, 1, 1, 0]
    assert v.unknown(["a", "c", "zebra", "c"]) == ["c", "zebra"]
    capped = WordVocab.build(toks, max_vocab=3)
    assert capped.symbols == [EOS, UNK, "b"]
    assert WordVocab.build(toks).symbols == [EOS, UNK, "b", "a", "c", "d"]   # ties alphabetical
    assert tg.Vocab.from_json(json.loads(json.dumps(v.to_json()))).symbols == v.symbols
    with pytest.raises(UserError, match="not a valid word vocabulary"):
        tg.Vocab.from_json({"level": "word", "symbols": ["a", "b"]})
    with pytest.raises(UserError, match="--max-vocab"):
        WordVocab.build(toks, max_vocab=2)


def test_decoder_joins_words_with_spaces_and_eos_as_newline():
    v = WordVocab.build(tokenize(TEXT))
    ids = v.encode(tokenize("the cat sat\nthe dog\n"))
    assert v.decoder()(ids) == "the cat sat\nthe dog\n"
    dec = v.decoder(after=int(ids[0]))                       # streaming after a prime word
    assert "".join(dec([i]) for i in ids[1:3]) == " cat sat"


def test_word_vocab_is_built_on_the_training_part_only():
    text = "a b a b\n" * 30 + "zebra\n" * 3                    # zebra only in the held-out tail
    cfg = tg.TextGenConfig(level="word", val_frac=0.05, min_count=1)
    vocab, ids = tg.encode_corpus(text, cfg)
    assert "zebra" not in vocab.index and ids[-2] == vocab.unk_id and ids[-1] == vocab.index[EOS]


def test_word_config_defaults_and_errors():
    cfg = tg.TextGenConfig(level="word", hidden_size=48)
    assert cfg.tie_weights and cfg.embed_dim == 48 and cfg.min_count == 2
    assert not tg.TextGenConfig().tie_weights and tg.TextGenConfig().embed_dim == 64
    with pytest.raises(UserError, match="--no-tie"):
        tg.TextGenConfig(level="word", embed_dim=16, hidden_size=32)
    with pytest.raises(UserError, match="for --level word"):
        tg.TextGenConfig(level="char", max_vocab=100)


# -- weight tying --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tied_gradient_is_the_sum_of_both_uses_fd(cell):
    rng = np.random.default_rng(1)
    m = RNNLanguageModel(7, 5, 5, num_layers=2, cell=cell, seed=2, tie_weights=True).astype(np.float64)
    assert m.head.params["weight"] is m.embedding.params["weight"]
    assert "head.weight" not in m.params and set(m.grads) == set(m.params)
    x, y = rng.integers(0, 7, (4, 3)), rng.integers(0, 7, (4, 3))
    up = rng.standard_normal((4, 3, 7))                     # a random upstream gradient on the logits

    def loss():
        logits, _ = m.forward(x)
        return softmax_cross_entropy(logits, y)[0] + float((up * logits).sum())

    logits, _ = m.forward(x)
    m.backward(softmax_cross_entropy(logits, y)[1] + up)
    grads = {k: v.copy() for k, v in m.grads.items()}
    for k, p in m.params.items():
        err = relative_error(grads[k], numeric_gradient(loss, p))
        assert err < 1e-6, f"{cell} {k}: {err:.2e}"
    # the tied gradient is neither use alone
    assert relative_error(grads["embedding.weight"], m.head.grads["weight"]) > 1e-3


@pytest.mark.parametrize("variational", [True, False])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_all_lm_dropouts_in_training_mode_fd_with_fixed_masks(cell, variational):
    rng = np.random.default_rng(4)
    m = RNNLanguageModel(8, 5, 5, num_layers=2, cell=cell, seed=3, tie_weights=True, dropout_input=0.3,
                         dropout_hidden=0.3, dropout_output=0.3, dropout_embedding=0.3, weight_drop=0.3,
                         variational=variational).astype(np.float64)
    x, y = rng.integers(0, 8, (5, 3)), rng.integers(0, 8, (5, 3))
    up = rng.standard_normal((5, 3, 8))
    masks = m.random_state_dict()       # every forward below draws these same masks

    def logits_of():
        m.load_random_state_dict(masks)
        return m.forward(x)[0]

    def loss():
        logits = logits_of()
        return softmax_cross_entropy(logits, y)[0] + float((up * logits).sum())

    logits = logits_of()
    m.backward(softmax_cross_entropy(logits, y)[1] + up)
    grads = {k: v.copy() for k, v in m.grads.items()}
    for k, p in m.params.items():
        err = relative_error(grads[k], numeric_gradient(loss, p))
        assert err < 1e-6, f"{cell} variational={variational} {k}: {err:.2e}"
    # the masks are really there in training mode, and eval mode has none
    m.eval()
    assert not np.allclose(m.forward(x)[0], logits)
    np.testing.assert_array_equal(m.forward(x)[0], m.forward(x)[0])
    d_in = m.drop_input
    m.train()
    e = np.ones((6, 4, 5))
    out = d_in.forward(e)
    assert (out == out[:1]).all() == variational            # variational: one mask for all steps


def test_tied_model_matches_torch_tied_module():
    torch = pytest.importorskip("torch")
    m = RNNLanguageModel(9, 6, 6, num_layers=2, cell="lstm", seed=0, tie_weights=True).astype(np.float64)

    class T(torch.nn.Module):                     # as PyTorch's word_language_model ties its decoder
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(9, 6)
            self.rnn = torch.nn.LSTM(6, 6, 2)
            self.head = torch.nn.Linear(6, 9)
            self.head.weight = self.embedding.weight

        def forward(self, x):
            return self.head(self.rnn(self.embedding(x))[0])

    t = T().double()
    sd = m.state_dict()
    assert set(sd) == set(t.state_dict())                   # both keys, as torch's tied state_dict
    t.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 9, (5, 3)), rng.integers(0, 9, (5, 3))
    lt = t(torch.tensor(x))
    torch.nn.functional.cross_entropy(lt.reshape(-1, 9), torch.tensor(y).reshape(-1)).backward()
    logits, _ = m.forward(x)
    m.backward(softmax_cross_entropy(logits, y)[1])
    np.testing.assert_allclose(logits, lt.detach().numpy(), atol=1e-12)
    named = dict(t.named_parameters())                      # torch lists the tied matrix once
    assert set(named) == set(m.grads)
    for k, p in named.items():
        np.testing.assert_allclose(m.grads[k], p.grad.numpy(), atol=1e-12, err_msg=k)


def test_tied_state_dict_reties_and_refuses_untied_weights():
    a = RNNLanguageModel(8, 4, 4, seed=0, tie_weights=True)
    b = RNNLanguageModel(8, 4, 4, seed=5, tie_weights=True)
    b.load_state_dict(a.state_dict())
    assert b.head.params["weight"] is b.embedding.params["weight"]
    np.testing.assert_array_equal(b.head.params["weight"], a.embedding.params["weight"])
    b.load_state_dict({k: v for k, v in a.state_dict().items() if k != "head.weight"})   # one array
    untied = RNNLanguageModel(8, 4, 4, seed=1).state_dict()
    with pytest.raises(ValueError, match="ties head.weight"):
        b.load_state_dict(untied)
    with pytest.raises(ValueError, match="embed_dim == hidden_size"):
        RNNLanguageModel(8, 3, 4, tie_weights=True)


# -- perplexity --------------------------------------------------------------------------------------------
def test_perplexity_is_exp_of_the_mean_nll_computed_independently():
    m = RNNLanguageModel(6, 4, 4, seed=3, tie_weights=True).eval()
    ids = np.random.default_rng(0).integers(0, 6, 61)
    nats = tg.evaluate(m, ids, batch=3, seq_len=5)
    # independent: one stream through the whole sequence, log-softmax by hand in float64
    logits, _ = m.forward(ids[:-1].reshape(-1, 1))
    z = logits[:, 0].astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), ids[1:]]
    # evaluate() uses 3 streams of 20 (ids[:60]) with the state carried: compare stream by stream
    per_stream = []
    for b in range(3):
        seg = ids[b * 20:(b + 1) * 20]
        lg, _ = m.forward(seg[:-1].reshape(-1, 1))
        zz = lg[:, 0].astype(np.float64)
        lp = zz - zz.max(1, keepdims=True)
        lp -= np.log(np.exp(lp).sum(1, keepdims=True))
        per_stream.append(-lp[np.arange(19), seg[1:]])
    assert nats == pytest.approx(np.concatenate(per_stream).mean(), rel=1e-5)
    assert tg._perplexity(nats) == pytest.approx(math.exp(np.concatenate(per_stream).mean()), rel=1e-5)
    assert np.isfinite(nll).all() and tg._perplexity(800.0) == math.inf


# -- the CLI ----------------------------------------------------------------------------------------------
SMALL = ["--hidden", "12", "--seq-len", "8", "--batch", "4", "--no-progress", "--eval-every", "5"]


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def corpus(tmp_path):
    f = tmp_path / "words.txt"
    f.write_text(TEXT, encoding="utf-8")
    return f


def test_cli_word_level_train_sample_resume(tmp_path, corpus, capsys):
    full, half = tmp_path / "full", tmp_path / "half"
    rc, out, err = run(["textgen", "train", str(corpus), "--level", "word", "--out", str(full), "--steps", "12",
                        "--sample-length", "15", "--min-count", "1", *SMALL], capsys)
    assert rc == 0 and "tied weights" in err and "validation perplexity" in err
    words = out.split()
    assert len(words) == 15 - out.count("\n") + 1 and all(w in TEXT.split() for w in words)
    m = json.loads((full / "metrics.json").read_text())
    assert m["val_perplexity"] == pytest.approx(math.exp(m["val_loss_nats"]))
    assert m["train_perplexity"] == pytest.approx(math.exp(m["train_loss_nats"]))
    assert "val_bits_per_char" not in m and m["level"] == "word" and m["vocab_size"] == 11  # 9 words + 2
    vocab = json.loads((full / "checkpoint" / "vocab.json").read_text())
    assert vocab["level"] == "word" and vocab["symbols"][:2] == [EOS, UNK]
    # resumed mid-run: the same losses step by step
    run(["textgen", "train", str(corpus), "--level", "word", "--out", str(half), "--steps", "5",
         "--sample-length", "0", "--min-count", "1", *SMALL], capsys)
    rc, _, _ = run(["textgen", "train", "--resume", str(half), "--steps", "12", "--sample-length", "0",
                    "--no-progress"], capsys)
    hist = lambda d: json.loads((d / "checkpoint" / "trainer.json").read_text())["history"]
    assert rc == 0 and hist(half)["loss"] == hist(full)["loss"]
    assert json.loads((half / "metrics.json").read_text())["val_loss_nats"] == m["val_loss_nats"]
    # sampling: the prime tokenised as the training text, the words continue it after a space
    rc, out, _ = run(["textgen", "sample", str(full), "--prime", "the  cat", "--length", "6", "--seed", "1"],
                     capsys)
    assert rc == 0 and out.startswith("the cat ") or out.startswith("the cat\n")
    rc, _, err = run(["textgen", "sample", str(full), "--prime", "the zebra"], capsys)
    assert rc == 2 and "'zebra'" in err and "--unknown unk" in err and err.count("\n") == 1
    rc, out, _ = run(["textgen", "sample", str(full), "--prime", "the zebra", "--unknown", "unk",
                      "--length", "3", "--seed", "0"], capsys)
    assert rc == 0 and out.startswith(f"the {UNK}")


def test_cli_word_level_errors_and_vocab_mismatch(tmp_path, corpus, capsys):
    out = tmp_path / "m"
    rc, _, err = run(["textgen", "train", str(corpus), "--level", "word", "--out", str(out), "--embed", "8",
                      *SMALL], capsys)
    assert rc == 2 and "--no-tie" in err and err.count("\n") == 1 and not out.exists()
    rc, _, err = run(["textgen", "train", str(corpus), "--out", str(out), "--max-vocab", "50", *SMALL], capsys)
    assert rc == 2 and "for --level word" in err
    rc, _, _ = run(["textgen", "train", str(corpus), "--level", "word", "--out", str(out), "--steps", "2",
                    "--sample-length", "0", *SMALL], capsys)
    assert rc == 0
    from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint

    arrays, jsons = load_checkpoint(out / "checkpoint")     # a consistent checkpoint of a mismatch
    jsons["vocab"]["symbols"].append("extra")
    save_checkpoint(out / "checkpoint", arrays, jsons)
    rc, _, err = run(["textgen", "sample", str(out)], capsys)
    assert rc == 2 and "does not match its vocabulary" in err and err.count("\n") == 1


def test_tied_model_with_dropouts_exports_to_onnx_and_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch = pytest.importorskip("torch")
    from rnnkit.interop import export_onnx, to_torch

    m = RNNLanguageModel(10, 6, 6, num_layers=2, seed=1, tie_weights=True, dropout_input=0.3,
                         dropout_output=0.3, weight_drop=0.2).eval()
    ids = np.random.default_rng(0).integers(0, 10, (5, 2))
    want, _ = m.forward(ids)
    sess = ort.InferenceSession(str(export_onnx(m, tmp_path / "lm.onnx")), providers=["CPUExecutionProvider"])
    zeros = {i.name: np.zeros((2, 2, 6), np.float32) for i in sess.get_inputs()[1:]}
    assert np.abs(sess.run(None, {"ids": ids.astype(np.int64), **zeros})[0] - want).max() < 1e-5
    t = to_torch(m)
    got = t(torch.from_numpy(ids.astype(np.int64)))[0].detach().numpy()
    assert np.abs(got - want).max() < 1e-5


def test_progress_bar_shows_perplexity_beside_the_loss():
    from rnnkit.train import TrainConfig, Trainer

    class Bar:
        n = 0

        def set_postfix(self, post, refresh=False):
            self.post = post

        def update(self, k):
            self.n += k

    tr = Trainer(RNNLanguageModel(5, 3, 3, tie_weights=True), TrainConfig(steps=10, progress=False))
    tr.bar_metrics = {"ppl": tg._perplexity}
    tr.history.update(loss=[2.0, 3.0], grad_norm=[1.0, 1.0], val_loss=[2.5])
    bar = Bar()
    tr._update_bar(bar)
    assert bar.post["ppl"] == f"{math.exp(2.5):.2f}" and bar.post["val_ppl"] == f"{math.exp(2.5):.2f}"
    assert bar.post["loss"] == "2.500"


def test_dropout_options_reach_the_config_and_the_model():
    import argparse

    from rnnkit.cli.textgen import dropouts_from_args

    args = argparse.Namespace(dropout=0.25, dropout_input=None, dropout_hidden=None, dropout_output=0.4,
                              dropout_embedding=None, weight_drop=0.1)
    cfg = tg.TextGenConfig(num_layers=2, **dropouts_from_args(args))
    assert (cfg.dropout_input, cfg.dropout_hidden, cfg.dropout_output, cfg.weight_drop) == (0.25, 0.25, 0.4, 0.1)
    m = tg.build_model(cfg, 7)
    assert (m.drop_input.p, m.rnn.dropout, m.drop_output.p, m.rnn.weight_drop) == (0.25, 0.25, 0.4, 0.1)
    word = tg.TextGenConfig(level="word")                    # defaults; one layer: nothing between layers
    assert (word.dropout_input, word.dropout_hidden, word.dropout_output) == (0.2, 0.0, 0.2)
    with pytest.raises(UserError, match="--weight-drop must be a probability"):
        tg.TextGenConfig(weight_drop=1.0)
