"""ONNX export run in ONNX Runtime: every exported graph gives rnnkit's outputs within 1e-5 (float32),
with and without sequence_lens, bidirectional, 2 layers, batch 1 and > 1, on one session reused across
batch and time sizes (the axes are dynamic)."""
import numpy as np
import pytest

from rnnkit import GRU, LSTM, RNN, UserError
from rnnkit.interop import export_onnx
from rnnkit.models.language_model import RNNLanguageModel
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.tasks.seqnet import SequenceNet
from rnnkit.tasks.speech import CTCModel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
TOL = 1e-5
LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": RNN, "rnn_relu": RNN}


def session(path):
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def close(name, ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs ONNX Runtime {theirs.shape}"
    err = np.abs(ours - theirs).max()
    assert err < TOL, f"{name}: max abs difference {err:.2e} from ONNX Runtime"


def lengths_for(B, T, rng):
    lens = rng.integers(1, T + 1, B).astype(np.int32)
    lens[0] = T
    return lens


def states(cell, rows, B, H, rng):
    h = rng.standard_normal((rows, B, H)).astype(np.float32)
    return (h, rng.standard_normal((rows, B, H)).astype(np.float32)) if cell == "lstm" else h


def feeds_for_state(state, names=("h0", "c0")):
    parts = state if isinstance(state, tuple) else (state,)
    return dict(zip(names, parts))


LAYER_CASES = [(c, nl, bidi, use_len) for c in LAYERS for nl in (1, 2) for bidi in (False, True)
               for use_len in (False, True) if nl == 2 or not bidi]


@pytest.mark.parametrize("cell,num_layers,bidi,use_len", LAYER_CASES,
                         ids=[f"{c}-L{n}-{'bi' if b else 'uni'}-{'lens' if u else 'full'}"
                              for c, n, b, u in LAYER_CASES])
def test_layer_matches_runtime(tmp_path, cell, num_layers, bidi, use_len):
    rng = np.random.default_rng(0)
    kw = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    layer = LAYERS[cell](4, 5, num_layers=num_layers, bidirectional=bidi, seed=2, **kw).eval()
    path = export_onnx(layer, tmp_path / "layer.onnx", sequence_lens=use_len, initial_state=True)
    sess = session(path)
    base = "lstm" if cell == "lstm" else "other"
    for T, B in ((6, 3), (4, 1), (9, 2)):                     # one session, several dynamic sizes
        x = rng.standard_normal((T, B, 4)).astype(np.float32)
        st = states(base, num_layers * layer.num_directions, B, 5, rng)
        lens = lengths_for(B, T, rng) if use_len else None
        feeds = {"X": x, **feeds_for_state(st)}
        if use_len:
            feeds["sequence_lens"] = lens
        got = sess.run(None, feeds)
        y, fin = layer.forward(x, st, lens)
        close(f"Y T={T} B={B}", y, got[0])
        if use_len:                                 # both give exact zeros at padded steps
            padded = np.arange(T)[:, None] >= lens[None, :]                     # (T, B)
            assert not np.any(got[0][padded]) and not np.any(y[padded])
        for name, a, b in zip(("h_n", "c_n"), fin if isinstance(fin, tuple) else (fin,), got[1:]):
            close(f"{name} T={T} B={B}", a, b)


def test_layer_without_state_inputs(tmp_path):
    layer = GRU(3, 4, bidirectional=True, seed=1, bias=False).eval()
    sess = session(export_onnx(layer, tmp_path / "gru.onnx"))
    assert [i.name for i in sess.get_inputs()] == ["X"]
    x = np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np.float32)
    close("Y", layer.forward(x)[0], sess.run(["Y"], {"X": x})[0])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_logits_and_stepping(tmp_path, cell):
    rng = np.random.default_rng(3)
    lm = RNNLanguageModel(11, 6, 7, num_layers=2, cell=cell, seed=4).eval()
    sess = session(export_onnx(lm, tmp_path / "lm.onnx"))
    for T, B in ((8, 3), (5, 1)):
        ids = rng.integers(0, 11, (T, B))
        st = states(cell, 2, B, 7, rng)
        got = sess.run(None, {"ids": ids, **feeds_for_state(st)})
        logits, fin = lm.forward(ids, st)
        close("logits", logits, got[0])
        for a, b in zip(fin if isinstance(fin, tuple) else (fin,), got[1:]):
            close("state", a, b)
    # stepping: T = 1 with the state fed back gives model.step's logits, token after token
    state, feeds = None, feeds_for_state(states(cell, 2, 2, 7, rng))
    for k in ("h0", "c0"):
        if k in feeds:
            feeds[k] = np.zeros_like(feeds[k])
    for tok in ([1, 4], [7, 0], [3, 3]):
        want, state = lm.step(np.array(tok), state)
        got = sess.run(None, {"ids": np.array([tok]), **feeds})
        close("step logits", want, got[0][0])
        feeds = dict(zip([k for k in ("h0", "c0") if k in feeds], got[1:]))


NET_CASES = [(pool, tokens, bidi) for pool in ("last", "mean", "max") for tokens in (False, True)
             for bidi in (False, True)] + [("concat", True, True), ("max+mean", False, False)]


@pytest.mark.parametrize("pooling,tokens,bidi", NET_CASES,
                         ids=[f"{p}-{'ids' if t else 'feat'}-{'bi' if b else 'uni'}" for p, t, b in NET_CASES])
def test_classifier_net_with_sequence_lens(tmp_path, pooling, tokens, bidi):
    rng = np.random.default_rng(5)
    net = SequenceNet(3, 4, cell="lstm" if bidi else "gru", hidden_size=6, num_layers=2, bidirectional=bidi,
                      pooling=pooling, vocab_size=20 if tokens else None, embedding_dim=5, seed=6).eval()
    sess = session(export_onnx(net, tmp_path / "clf.onnx"))
    for T, B in ((7, 4), (5, 1)):
        x = rng.integers(0, 20, (T, B)) if tokens else rng.standard_normal((T, B, 3)).astype(np.float32)
        lens = lengths_for(B, T, rng)
        close(f"logits T={T} B={B}", net.forward(x, lens), sess.run(None, {"x": x, "sequence_lens": lens})[0])


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_forecaster_net_without_lengths(tmp_path, pooling):
    rng = np.random.default_rng(7)
    net = SequenceNet(2, 6, cell="lstm", hidden_size=5, num_layers=2, pooling=pooling, seed=8).eval()
    sess = session(export_onnx(net, tmp_path / "fc.onnx", sequence_lens=False))
    assert [i.name for i in sess.get_inputs()] == ["x"]
    for B in (1, 3):
        x = rng.standard_normal((12, B, 2)).astype(np.float32)
        close("outputs", net.forward(x, np.full(B, 12)), sess.run(None, {"x": x})[0])


@pytest.mark.parametrize("bidi", [False, True])
def test_ctc_model(tmp_path, bidi):
    rng = np.random.default_rng(9)
    model = CTCModel(4, 6, "gru", hidden=5, layers=2, bidirectional=bidi, seed=1).eval()
    sess = session(export_onnx(model, tmp_path / "ctc.onnx"))
    for T, B in ((9, 3), (4, 1)):
        x = rng.standard_normal((T, B, 4)).astype(np.float32)
        lens = lengths_for(B, T, rng)
        close("logits", model.forward(x, lens), sess.run(None, {"x": x, "sequence_lens": lens})[0])


S2S_CASES = [("lstm", "general", True), ("gru", "dot", False), ("lstm", None, True)]


@pytest.mark.parametrize("cell,attention,bidi", S2S_CASES, ids=[f"{c}-{a}-{b}" for c, a, b in S2S_CASES])
def test_seq2seq_encoder_and_decoder_step(tmp_path, cell, attention, bidi):
    rng = np.random.default_rng(10)
    model = Seq2Seq(15, 13, embed=6, hidden=5, layers=2, cell=cell, bidirectional=bidi,
                    attention=attention, seed=3).eval()
    enc = session(export_onnx(model, tmp_path / "enc.onnx", part="encoder"))
    dec = session(export_onnx(model, tmp_path / "dec.onnx", part="decoder_step"))
    for S, B in ((7, 3), (4, 1)):
        src = rng.integers(4, 15, (S, B))
        src_len = lengths_for(B, S, rng)
        enc_out, state0, mask = model.encode(src, src_len)
        got = enc.run(None, {"src": src, "src_len": src_len})
        close("enc_out", enc_out, got[0])
        for a, b in zip(state0 if isinstance(state0, tuple) else (state0,), got[1:]):
            close("decoder initial state", a, b)
        state, feeds = state0, dict(zip(("h0", "c0"), got[1:]))
        tokens = np.ones(B, np.int64)
        for _ in range(3):
            want, state = model._step(tokens, state, enc_out, mask)
            out = dec.run(None, {"tokens": tokens, "enc_out": got[0], "src_len": src_len, **feeds})
            close("logprobs", want, out[0])
            feeds = dict(zip(("h0", "c0"), out[1:]))
            tokens = np.argmax(want, axis=1).astype(np.int64)


def test_export_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(UserError, match="no ONNX export"):
        export_onnx(object(), tmp_path / "x.onnx")
    with pytest.raises(UserError, match="does not exist"):
        export_onnx(LSTM(2, 3), tmp_path / "missing" / "x.onnx")
    with pytest.raises(ValueError, match="part="):
        export_onnx(Seq2Seq(8, 8, embed=4, hidden=3), tmp_path / "s.onnx")
    assert list(tmp_path.iterdir()) == []                         # nothing half-written
