"""Dropout of every kind (element-wise, variational, embedding, weight-drop): gradients by float64 finite
differences with a fixed mask, masks as each paper defines them, eval mode the identity, expectation kept,
PyTorch parity for weight-drop, and the generators' state round trip that checkpoints rely on."""
import json

import numpy as np
import pytest

import rnnkit
from rnnkit import backends
from rnnkit.layers.dropout import dropout_backward, dropout_forward
from core_cases import CELLS, D, H, LENGTHS, B, T, make_inputs, make_layer, side_by_side

BACKENDS = [b for b in ("numpy", "numba") if backends.available(b)]


def fixed_mask_check(module, inputs, forward, backward):
    """check_function where every forward draws the masks of the first one (its generators put back)."""
    start = module.random_state_dict()

    def fwd(**arrays):
        module.load_random_state_dict(start)
        return forward(**arrays)

    def bwd(u):
        fwd(**inputs)
        return backward(u)

    return rnnkit.check_function(fwd, bwd, inputs)


# -- the mask ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_keeps_the_expectation(p):
    """Inverted dropout: E[m] = 1 and P(m = 0) = p. n = 400k: the mean's standard error is
    sqrt(p / (1 - p) / n) <= 0.0032, the tolerance 0.02 is > 6 of them; an unscaled mask (mean 1 - p)
    or a keep probability of p fails by >= 0.1."""
    m = rnnkit.dropout_mask(np.random.default_rng(0), (400, 1000), p, np.float32)
    assert m.dtype == np.float32 and m.shape == (400, 1000)
    assert set(np.unique(m)) <= {np.float32(0), np.float32(1 / (1 - p))}
    assert abs(m.mean() - 1.0) < 0.02
    assert abs((m == 0).mean() - p) < 0.01


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.5", True, float("nan")])
def test_bad_probability_is_one_clear_error(p):
    for make in (lambda: rnnkit.Dropout(p), lambda: rnnkit.VariationalDropout(p),
                 lambda: rnnkit.Embedding(5, 2, dropout=p), lambda: rnnkit.LSTM(2, 3, weight_drop=p)):
        with pytest.raises(ValueError, match=r"probability in \[0, 1\)"):
            make()


# -- element-wise and variational dropout --------------------------------------------------------------
@pytest.mark.parametrize("cls", [rnnkit.Dropout, rnnkit.VariationalDropout])
def test_eval_mode_and_p0_are_the_identity(cls):
    x = np.random.default_rng(0).standard_normal((T, B, D))
    dy = np.random.default_rng(1).standard_normal((T, B, D))
    for mod in (cls(0.5, seed=0).eval(), cls(0.0, seed=0)):
        np.testing.assert_array_equal(mod.forward(x), x)
        np.testing.assert_array_equal(mod.backward(dy), dy)
    mod = cls(0.5, seed=0)
    assert not np.array_equal(mod.forward(x), x), "training mode dropped nothing"


def test_dropout_draws_a_new_mask_at_each_call():
    mod = rnnkit.Dropout(0.5, seed=0)
    x = np.ones((T, B, D))
    a, b = mod.forward(x), mod.forward(x)
    assert not np.array_equal(a, b)
    assert not all(np.array_equal(a[0], a[t]) for t in range(1, T)), "element-wise dropout repeated a mask"


@pytest.mark.parametrize("batch_first", [False, True])
def test_variational_mask_is_the_same_at_every_step(batch_first):
    mod = rnnkit.VariationalDropout(0.5, seed=0, batch_first=batch_first)
    x = np.random.default_rng(0).uniform(1, 2, (B, T, D) if batch_first else (T, B, D))
    ratio = mod.forward(x) / x                                       # the mask itself
    steps = [ratio[:, t] if batch_first else ratio[t] for t in range(T)]
    assert all(np.array_equal(steps[0], s) for s in steps[1:]), "the mask changed between time steps"
    assert 0 < (steps[0] == 0).sum() < steps[0].size, "expected some units dropped and some kept"
    assert mod._mask.shape == ((B, 1, D) if batch_first else (1, B, D))
    # a new forward draws a new mask (per sequence and feature)
    assert not np.array_equal(mod.forward(x) / x, ratio)


def test_variational_accepts_one_step_and_refuses_other_ranks():
    mod = rnnkit.VariationalDropout(0.5, seed=0)
    y = mod.forward(np.ones((B, D)))
    assert y.shape == (B, D) and mod._mask.shape == (B, D)
    with pytest.raises(ValueError, match="seq_len, batch, features"):
        mod.forward(np.ones((2, 2, 2, 2)))
    with pytest.raises(TypeError, match="floating-point"):
        mod.forward(np.ones((B, D), dtype=np.int64))


@pytest.mark.parametrize("cls", [rnnkit.Dropout, rnnkit.VariationalDropout])
@pytest.mark.parametrize("shape", [(T, B, D), (B, D)])
def test_dropout_gradient_with_a_fixed_mask(cls, shape):
    mod = cls(0.4, seed=3)
    inputs = {"x": np.random.default_rng(0).standard_normal(shape)}
    report = fixed_mask_check(mod, inputs, lambda x: mod.forward(x), lambda u: {"x": mod.backward(u)})
    assert report.max_error < 1e-7, f"\n{report}"


def test_pure_functions_broadcast_the_mask():
    x = np.random.default_rng(0).standard_normal((T, B, D))
    m = rnnkit.dropout_mask(np.random.default_rng(1), (1, B, D), 0.5, np.float64)
    y = dropout_forward(x, m)
    np.testing.assert_array_equal(y, x * m[0][None])
    assert dropout_backward(m, np.ones_like(x)).shape == x.shape


# -- embedding dropout -----------------------------------------------------------------------------------
def test_embedding_dropout_drops_whole_word_types():
    V, E, p = 50, 4, 0.5
    emb = rnnkit.Embedding(V, E, dtype=np.float64, seed=0, dropout=p)
    ids = np.random.default_rng(1).integers(0, V, (30, 8))
    out = emb.forward(ids)
    w = emb.params["weight"]
    dropped = np.all(out == 0, axis=-1)
    for v in np.unique(ids):
        rows = dropped[ids == v]
        assert rows.all() or not rows.any(), f"word {v} dropped at some positions only"
    kept = ~dropped
    np.testing.assert_allclose(out[kept], w[ids[kept]] / (1 - p), rtol=1e-12)
    assert 0 < dropped.mean() < 1


def test_embedding_dropout_off_is_the_plain_lookup_and_init_is_unchanged():
    ids = np.random.default_rng(1).integers(0, 20, (7, 3))
    plain = rnnkit.Embedding(20, 5, seed=4)
    drop = rnnkit.Embedding(20, 5, seed=4, dropout=0.3)
    np.testing.assert_array_equal(plain.params["weight"], drop.params["weight"])
    np.testing.assert_array_equal(drop.eval().forward(ids), plain.forward(ids))
    assert not np.array_equal(drop.train().forward(ids), plain.forward(ids))


def test_embedding_dropout_gradient_with_a_fixed_mask():
    emb = rnnkit.Embedding(12, 3, dtype=np.float64, seed=0, dropout=0.4)
    ids = np.random.default_rng(1).integers(0, 12, (6, 4))           # repeats: gradients accumulate

    def backward(u):
        emb.backward(u)
        return {"weight": emb.grads["weight"].copy()}

    inputs = {"weight": emb.params["weight"]}
    report = fixed_mask_check(emb, inputs, lambda weight: emb.forward(ids), backward)
    assert report.max_error < 1e-7, f"\n{report}"
    emb.load_random_state_dict(emb.random_state_dict())
    emb.forward(ids)
    assert np.any(emb._cache.row_mask == 0), "the check ran without any row dropped"


# -- weight-drop on W_hh ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("num_layers,bidirectional,lengths", [(1, False, None), (2, True, LENGTHS)])
def test_weight_drop_gradient_with_a_fixed_mask(backend, cell, num_layers, bidirectional, lengths):
    with backends.set_backend(backend):
        layer = make_layer(cell, num_layers, bidirectional, weight_drop=0.5, dropout=0.3)
    x, state = make_inputs(cell, num_layers, bidirectional)
    pack = (lambda s: s) if cell == "lstm" else (lambda s: s[0])
    states = state if cell == "lstm" else (state,)

    def forward(x, **arrays):
        st = pack(tuple(arrays[f"state[{i}]"] for i in range(len(states))))
        out, fin = layer.forward(x, st, lengths)
        return (out, *(fin if cell == "lstm" else (fin,)))

    def backward(u):
        dx, dst0 = layer.backward(u[0], pack(u[1:]))
        dst0 = dst0 if cell == "lstm" else (dst0,)
        return {"x": dx, **{k: v.copy() for k, v in layer.grads.items()},
                **{f"state[{i}]": s for i, s in enumerate(dst0)}}

    inputs = {"x": x, **layer.params, **{f"state[{i}]": s.copy() for i, s in enumerate(states)}}
    report = fixed_mask_check(layer, inputs, forward, backward)
    assert set(layer.params) <= set(report.errors)
    assert report.max_error < 1e-6, f"\n{report}"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_drop_gradient_side_by_side(cell):
    """The two directions on two threads (the fused backend's `pair`) get their own masks, drawn
    before the threads start, and the gradients still match finite differences."""
    with side_by_side() as calls:
        test_weight_drop_gradient_with_a_fixed_mask("numba", cell, 2, True, None)
    assert calls, "the directions did not run side by side"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_weight_drop_runs_the_cell_with_the_masked_weight(cell):
    """Training forward == eval forward of a copy whose W_hh is W_hh * M, with one mask per (layer,
    direction) drawn from the layer's own generator; eval mode is the plain layer."""
    layer = make_layer(cell, 2, True, weight_drop=0.5)
    plain = make_layer(cell, 2, True)
    x, _ = make_inputs(cell, 2, True)
    for k, v in plain.params.items():
        np.testing.assert_array_equal(layer.params[k], v)            # weight-drop leaves the init alone
    np.testing.assert_array_equal(layer.eval().forward(x)[0], plain.eval().forward(x)[0])
    rng = np.random.default_rng()
    rng.bit_generator.state = layer.random_state_dict()["weight_drop_rng"]
    masks = {}
    for l in range(2):
        for s in ("", "_reverse"):
            k = f"weight_hh_l{l}{s}"
            masks[k] = rnnkit.dropout_mask(rng, plain.params[k].shape, 0.5, np.float64)
            plain.params[k][...] *= masks[k]
    assert not np.array_equal(masks["weight_hh_l0"], masks["weight_hh_l0_reverse"])
    np.testing.assert_allclose(layer.train().forward(x)[0], plain.forward(x)[0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_weight_drop_matches_torch(cell):
    """Float64 parity with torch.nn.LSTM/GRU/RNN run on weight_hh * M (M the layer's own mask):
    outputs, final states and every named gradient, incl. dW_hh = M * dW~ through autograd."""
    torch = pytest.importorskip("torch")
    from torch.func import functional_call

    layer = make_layer(cell, 2, True, weight_drop=0.4)
    x, _ = make_inputs(cell, 2, True)
    start = layer.random_state_dict()
    out, fin = layer.forward(x)
    dout = np.random.default_rng(5).standard_normal(out.shape)
    layer.backward(dout)
    # the masks the forward drew, drawn again from the saved generator state
    rng = np.random.default_rng()
    rng.bit_generator.state = start["weight_drop_rng"]
    names = [f"weight_hh_l{l}{s}" for l in range(2) for s in ("", "_reverse")]
    masks = {k: rnnkit.dropout_mask(rng, layer.params[k].shape, 0.4, np.float64) for k in names}
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    mod = cls(D, H, num_layers=2, bidirectional=True).double()
    raw = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    used = {k: raw[k] * torch.tensor(masks[k]) if k in masks else raw[k] for k in raw}
    tout, tfin = functional_call(mod, used, (torch.tensor(x),))
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=0, atol=1e-12, err_msg="output")
    h = fin[0] if cell == "lstm" else fin
    th = tfin[0] if cell == "lstm" else tfin
    np.testing.assert_allclose(h, th.detach().numpy(), rtol=0, atol=1e-12, err_msg="h_n")
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, raw[k].grad.numpy(), rtol=0, atol=1e-11, err_msg=k)


def test_weight_drop_draws_new_masks_each_forward_and_step_uses_the_full_weight():
    layer = rnnkit.LSTM(D, H, weight_drop=0.5, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((T, B, D))
    a, b = layer.forward(x)[0], layer.forward(x)[0]
    assert not np.array_equal(a, b)
    ref = layer.eval().forward(x)[0]
    layer.train()
    st = None
    for t in range(T):
        y, st = layer.step(x[t], st)
    np.testing.assert_allclose(y, ref[-1], rtol=0, atol=1e-12)


# -- generator state: what checkpoints save ------------------------------------------------------------
def test_random_state_round_trips_through_json():
    model = rnnkit.Module()
    emb = model.add_module("emb", rnnkit.Embedding(10, D, seed=0, dropout=0.2))
    drop = model.add_module("drop", rnnkit.VariationalDropout(0.3, seed=1))
    rnn = model.add_module("rnn", rnnkit.GRU(D, H, num_layers=2, dropout=0.2, weight_drop=0.3, seed=2))
    assert set(model.random_state_dict()) == {"emb.dropout_rng", "drop.rng", "rnn.dropout_rng",
                                              "rnn.weight_drop_rng"}
    ids = np.random.default_rng(0).integers(0, 10, (T, B))

    def run():
        return rnn.forward(drop.forward(emb.forward(ids)))[0]

    saved = json.loads(json.dumps(model.random_state_dict()))        # what a checkpoint holds
    first = run()
    assert not np.array_equal(run(), first)
    model.load_random_state_dict(saved)
    np.testing.assert_array_equal(run(), first)


def test_load_random_state_refuses_foreign_states():
    layer = rnnkit.LSTM(2, 3, seed=0)
    good = layer.random_state_dict()
    with pytest.raises(ValueError, match="missing generators"):
        layer.load_random_state_dict({"dropout_rng": good["dropout_rng"]})
    layer.load_random_state_dict({"dropout_rng": good["dropout_rng"]}, strict=False)
    bad = dict(good, dropout_rng=np.random.MT19937(0).state)
    with pytest.raises(ValueError, match="'dropout_rng' is not a PCG64 state"):
        layer.load_random_state_dict(bad)
    broken = dict(good, dropout_rng={"bit_generator": "PCG64", "state": "nonsense"})
    with pytest.raises(ValueError, match="not a valid PCG64 state"):
        layer.load_random_state_dict(broken)
