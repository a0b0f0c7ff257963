"""Layer 2 of correctness: agreement with torch.nn.RNN/LSTM/GRU in float64 (weights copied across).

Outputs, final states, every named parameter gradient, dx and the initial-state gradients must agree to
1e-10; `lengths` runs against torch's packed sequences (enforce_sorted=False).
"""
import numpy as np
import pytest

from core_cases import BIDI, BIDI_IDS, GRID, IDS, LENGTHS, T, make_inputs, make_layer, side_by_side

torch = pytest.importorskip("torch")
TORCH = {"rnn": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def torch_twin(cell, layer):
    kw = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    mod = TORCH[cell](layer.input_size, layer.hidden_size, num_layers=layer.num_layers,
                      bidirectional=layer.bidirectional, dtype=torch.float64, **kw)
    mod.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.params.items()})
    return mod


def run_torch(cell, mod, x, state, lengths, dout, dstate):
    xt = torch.tensor(x, requires_grad=True)
    st = tuple(torch.tensor(s, requires_grad=True) for s in (state if cell == "lstm" else (state,)))
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
    out, fin = mod(inp, st if cell == "lstm" else st[0])
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    fin = fin if cell == "lstm" else (fin,)
    loss = (out * torch.from_numpy(dout)).sum()
    if dstate is not None:
        loss = loss + sum((f * torch.from_numpy(d)).sum() for f, d in zip(fin, dstate))
    loss.backward()
    return out.detach().numpy(), [f.detach().numpy() for f in fin], xt.grad.numpy(), \
        [s.grad.numpy() for s in st], {k: p.grad.numpy() for k, p in mod.named_parameters()}


def close(name, ours, theirs):
    err = np.abs(np.asarray(ours) - np.asarray(theirs)).max()
    assert err < 1e-10, f"{name}: max abs difference {err:.2e} from torch"


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", GRID, ids=IDS)
def test_matches_torch(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate):
    check_against_torch(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", BIDI, ids=BIDI_IDS)
def test_side_by_side_matches_torch(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate):
    with side_by_side() as calls:
        check_against_torch(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)
    assert calls, "the directions did not run side by side"


def check_against_torch(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate):
    layer = make_layer(cell, num_layers, bidirectional)
    x, state = make_inputs(cell, num_layers, bidirectional)
    if not use_h0:  # rnnkit starts from zeros; torch gets explicit zeros so its h0 gradient exists
        state = tuple(np.zeros_like(s) for s in state) if cell == "lstm" else np.zeros_like(state)
    lengths = LENGTHS if use_lengths else None
    rng = np.random.default_rng(5)
    out, fin = layer.forward(x, state if use_h0 else None, lengths)
    dout = rng.standard_normal(out.shape)
    fins = fin if cell == "lstm" else (fin,)
    dstate = tuple(rng.standard_normal(f.shape) for f in fins) if use_dstate else None
    dx, dst0 = layer.backward(dout, None if dstate is None else (dstate if cell == "lstm" else dstate[0]))
    t_out, t_fin, t_dx, t_dst0, t_grads = run_torch(cell, torch_twin(cell, layer), x, state, lengths,
                                                    dout, dstate)
    close("output", out, t_out)
    for i, (a, b) in enumerate(zip(fins, t_fin)):
        close(f"final state[{i}]", a, b)
    close("dx", dx, t_dx)
    for i, (a, b) in enumerate(zip(dst0 if cell == "lstm" else (dst0,), t_dst0)):
        close(f"initial-state gradient[{i}]", a, b)
    assert set(layer.grads) == set(t_grads)
    for k in t_grads:
        close(f"grad {k}", layer.grads[k], t_grads[k])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_params_have_torch_state_dict_names_and_shapes(cell):
    layer = make_layer(cell, 2, True)
    mod = torch_twin(cell, layer)
    assert {k: v.shape for k, v in layer.params.items()} == {k: tuple(v.shape) for k, v in mod.state_dict().items()}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_batch_first_matches_torch(cell):
    layer = make_layer(cell, 1, True, batch_first=True)
    mod = torch_twin(cell, layer)
    mod.batch_first = True
    x = np.random.default_rng(0).standard_normal((3, 5, layer.input_size))
    out, _ = layer.forward(x)
    close("batch_first output", out, mod(torch.from_numpy(x))[0].detach().numpy())
