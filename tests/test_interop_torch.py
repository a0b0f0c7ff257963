"""rnnkit <-> PyTorch: modules converted both ways give torch's outputs and gradients (float64, 1e-10),
and torch checkpoints load from safetensors and from `.pt` through weights_only only."""
import numpy as np
import pytest

from rnnkit import GRU, LSTM, RNN, Embedding, Linear, UserError
from rnnkit.interop import from_torch, load_torch_checkpoint, to_torch
from rnnkit.models.language_model import RNNLanguageModel

torch = pytest.importorskip("torch")
T, B, D, H = 5, 3, 4, 6

CASES = [  # (torch class, options)
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "dropout": 0.25}),
    ("GRU", {"num_layers": 2, "bias": False}),
    ("GRU", {"bidirectional": True, "batch_first": True}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("RNN", {"bidirectional": True, "bias": False}),
]


def close(name, ours, theirs, tol=1e-10):
    err = np.abs(np.asarray(ours) - np.asarray(theirs)).max()
    assert err < tol, f"{name}: max abs difference {err:.2e} from torch"


def torch_run(mod, x, dout):
    """torch's output, dx and parameter gradients for the upstream gradient dout."""
    xt = torch.tensor(x, requires_grad=True)
    out = mod(xt)
    out = out[0] if isinstance(out, tuple) else out
    (out * torch.from_numpy(dout)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), {k: p.grad.numpy() for k, p in mod.named_parameters()}


def compare(layer, mod, rng):
    mod.eval()
    layer.eval()
    shape = (B, T, D) if layer.batch_first else (T, B, D)
    x = rng.standard_normal(shape)
    out_t, dx_t, g_t = torch_run(mod, x, dout := rng.standard_normal(torch_out_shape(mod, x)))
    out, _ = layer.forward(x)
    dx, _ = layer.backward(dout)
    close("output", out, out_t)
    close("dx", dx, dx_t)
    assert set(layer.grads) == set(g_t)
    for k, g in g_t.items():
        close(f"grad {k}", layer.grads[k], g)


def torch_out_shape(mod, x):
    with torch.no_grad():
        return tuple(mod(torch.tensor(x))[0].shape)


@pytest.mark.parametrize("cls,opts", CASES, ids=[f"{c}-{'-'.join(o) or 'plain'}" for c, o in CASES])
def test_recurrent_round_trip(cls, opts):
    rng = np.random.default_rng(0)
    mod = getattr(torch.nn, cls)(D, H, dtype=torch.float64, **opts)
    layer = from_torch(mod)
    assert type(layer).__name__ == cls and layer.dtype == np.float64
    for k, v in opts.items():
        assert getattr(layer, k) == v, k
    compare(layer, mod, rng)
    back = to_torch(layer)
    assert type(back) is type(mod)
    for k, v in mod.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    for k in ("num_layers", "bidirectional", "bias", "batch_first", "dropout"):
        assert getattr(back, k) == getattr(mod, k), k
    compare(layer, back, rng)


def test_rnnkit_layer_to_torch_and_back():
    layer = LSTM(D, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=3)
    mod = to_torch(layer)
    compare(layer, mod, np.random.default_rng(1))
    again = from_torch(mod)
    for k, v in layer.params.items():
        np.testing.assert_array_equal(again.params[k], v)


def test_embedding_and_linear_round_trip():
    rng = np.random.default_rng(2)
    emb_t = torch.nn.Embedding(11, D, dtype=torch.float64)
    emb = from_torch(emb_t)
    ids = rng.integers(0, 11, (T, B))
    close("embedding", emb.forward(ids), emb_t(torch.tensor(ids)).detach().numpy())
    assert isinstance(emb, Embedding) and torch.equal(to_torch(emb).weight, emb_t.weight)
    lin_t = torch.nn.Linear(D, 7, dtype=torch.float64)
    lin = from_torch(lin_t)
    x = rng.standard_normal((T, B, D))
    out_t, dx_t, g_t = torch_run(lin_t, x, dout := rng.standard_normal((T, B, 7)))
    close("linear", lin.forward(x), out_t)
    close("linear dx", lin.backward(dout), dx_t)
    for k in ("weight", "bias"):
        close(k, lin.grads[k], g_t[k])
    assert isinstance(lin, Linear) and torch.equal(to_torch(lin).weight, lin_t.weight)


class WordLM(torch.nn.Module):
    """PyTorch's word_language_model layout: other child names than rnnkit's, a dropout child;
    ids (T, B), or (B, T) with batch_first."""

    def __init__(self, V, E, Hd, layers, cell="GRU", batch_first=False):
        super().__init__()
        self.drop = torch.nn.Dropout(0.2)
        self.encoder = torch.nn.Embedding(V, E)
        self.rnn = getattr(torch.nn, cell)(E, Hd, layers, batch_first=batch_first)
        self.decoder = torch.nn.Linear(Hd, V)

    def forward(self, ids):
        out, _ = self.rnn(self.drop(self.encoder(ids)))
        return self.decoder(self.drop(out))


def lm_compare(lm, tmod, ids, dlogits):
    tmod.eval()
    logits_t = tmod(torch.tensor(ids))
    logits_t = logits_t[0] if isinstance(logits_t, tuple) else logits_t
    (logits_t * torch.from_numpy(dlogits)).sum().backward()
    logits, _ = lm.forward(ids)
    lm.backward(dlogits)
    close("logits", logits, logits_t.detach().numpy())
    torch_grads = {k: p.grad.numpy() for k, p in tmod.named_parameters()}
    assert len(lm.grads) == len(torch_grads)
    for (k, g), (kt, gt) in zip(lm.grads.items(), torch_grads.items()):
        close(f"grad {k} ({kt})", g, gt)


def test_language_model_round_trip():
    rng = np.random.default_rng(4)
    tmod = WordLM(13, 5, H, 2).double()
    lm = from_torch(tmod)
    assert isinstance(lm, RNNLanguageModel) and lm.cell == "gru" and lm.num_layers == 2
    ids = rng.integers(0, 13, (T, B))
    lm_compare(lm, tmod, ids, rng.standard_normal((T, B, 13)))
    back = to_torch(lm)
    lm_compare(lm, back, ids, rng.standard_normal((T, B, 13)))
    state = torch.zeros(2, B, H, dtype=torch.float64)
    _, h_n = back(torch.tensor(ids), state)
    close("final state", lm.forward(ids)[1], h_n.detach().numpy())


def test_batch_first_language_model_becomes_time_major():
    tmod = WordLM(8, 3, 4, 1, cell="LSTM", batch_first=True).double().eval()
    lm = from_torch(tmod)
    assert not lm.rnn.batch_first                      # the LM reads ids (T, B)
    ids = np.random.default_rng(7).integers(0, 8, (B, T))
    with torch.no_grad():
        want = tmod(torch.tensor(ids)).numpy()         # (B, T, V)
    close("logits", lm.forward(ids.T)[0].transpose(1, 0, 2), want)


def test_model_without_counterpart_is_refused():
    model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, 2))
    with pytest.raises(UserError, match="ReLU"):
        from_torch(model)
    with pytest.raises(UserError, match="padding_idx"):
        from_torch(torch.nn.Embedding(5, 3, padding_idx=0))
    with pytest.raises(UserError, match="proj_size"):
        from_torch(torch.nn.LSTM(D, H, proj_size=2))


def test_checkpoints_safetensors_and_pt(tmp_path):
    from safetensors.numpy import save_file

    tmod = WordLM(9, 4, 5, 1, cell="LSTM").double()
    state = {k: v.numpy() for k, v in tmod.state_dict().items()}
    save_file(state, str(tmp_path / "lm.safetensors"))
    torch.save(tmod.state_dict(), tmp_path / "lm.pt")
    torch.save({"state_dict": tmod.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")
    ids = np.random.default_rng(5).integers(0, 9, (T, B))
    with torch.no_grad():
        want = tmod.eval()(torch.tensor(ids)).numpy()
    for name in ("lm.safetensors", "lm.pt", "wrapped.pt"):
        loaded = load_torch_checkpoint(tmp_path / name)
        assert sorted(loaded) == sorted(state)
        lm = from_torch(loaded, like=RNNLanguageModel(9, 4, 5, 1, "lstm", dtype=np.float64))
        close(name, lm.forward(ids)[0], want)


class Payload:
    """An object whose unpickling would run code: weights_only must refuse it."""

    def __reduce__(self):
        return (print, ("this ran",))


def test_pt_with_code_is_refused(tmp_path, capsys):
    torch.save({"weight": torch.zeros(2), "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="weights_only"):
        load_torch_checkpoint(tmp_path / "evil.pt")
    assert "this ran" not in capsys.readouterr().out
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="not a torch checkpoint"):
        load_torch_checkpoint(tmp_path / "text.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match="safetensors"):
        load_torch_checkpoint(tmp_path / "bad.safetensors")


def test_state_dict_that_fits_nothing_is_refused():
    lm = RNNLanguageModel(9, 4, 5, 1, "lstm", dtype=np.float64)
    with pytest.raises(UserError, match="keys"):
        from_torch({"w": np.zeros(3)}, like=lm)
    bad = {k: np.zeros((1,)) for k in lm.params}
    with pytest.raises(UserError, match="shape"):
        from_torch(bad, like=lm)
    assert isinstance(RNN(2, 3), RNN) and isinstance(GRU(2, 3), GRU)


def test_state_dict_alone_describes_the_model():
    """No `like`: the structure comes from the names and shapes (word_language_model's layout)."""
    tmod = WordLM(10, 4, 5, 2, cell="LSTM").double().eval()
    lm = from_torch(dict(tmod.state_dict()))
    assert isinstance(lm, RNNLanguageModel) and (lm.cell, lm.num_layers, lm.vocab_size) == ("lstm", 2, 10)
    ids = np.random.default_rng(6).integers(0, 10, (T, B))
    with torch.no_grad():
        close("logits", lm.forward(ids)[0], tmod(torch.tensor(ids)).numpy())
    gru = torch.nn.GRU(D, H, bidirectional=True)
    layer = from_torch({f"lstm.{k}": v for k, v in gru.state_dict().items()})
    assert isinstance(layer, GRU) and layer.bidirectional
    for k, v in gru.state_dict().items():
        np.testing.assert_array_equal(layer.params[k], v.numpy())


def test_half_precision_module_widens_to_float32():
    mod = torch.nn.LSTM(D, H).to(torch.bfloat16)
    layer = from_torch(mod)
    assert layer.dtype == np.float32
    for k, v in mod.state_dict().items():                       # bfloat16 -> float32 is exact
        np.testing.assert_array_equal(layer.params[k], v.float().numpy(), err_msg=k)


def test_ctc_shaped_model_both_ways():
    """recurrent -> linear per step: torch module -> rnnkit CTCModel -> torch again, outputs and gradients."""
    from rnnkit.tasks.speech import CTCModel

    class Acoustic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(D, H, num_layers=2, bidirectional=True)
            self.proj = torch.nn.Linear(2 * H, 7)

        def forward(self, x):
            return self.proj(self.lstm(x)[0])

    rng = np.random.default_rng(8)
    tmod = Acoustic().double().eval()
    model = from_torch(tmod)
    assert isinstance(model, CTCModel) and model.rnn.bidirectional and model.rnn.num_layers == 2
    for mod in (tmod, to_torch(model)):
        x = rng.standard_normal((T, B, D))
        out_t, dx_t, g_t = torch_run(mod, x, dout := rng.standard_normal((T, B, 7)))
        close("logits", model.forward(x), out_t)
        close("dx", model.backward(dout), dx_t)
        assert len(model.grads) == len(g_t)
        for (k, g), (kt, gt) in zip(model.grads.items(), g_t.items()):
            close(f"grad {k} ({kt})", g, gt)
