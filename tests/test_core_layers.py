"""Behaviour of the recurrent layers beyond the gradient grid: step(), truncated BPTT, dtype, init."""
import numpy as np
import pytest

import rnnkit


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_step_reproduces_forward(cls):
    layer = cls(3, 5, num_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)
    out, final = layer.forward(x)
    state = None
    for t in range(6):
        y, state = layer.step(x[t], state)
        np.testing.assert_allclose(y, out[t], rtol=1e-5, atol=1e-6)
    for a, b in zip(state if cls is rnnkit.LSTM else (state,), final if cls is rnnkit.LSTM else (final,)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_truncated_bptt_by_carrying_state(cls):
    """Two chunks with the state carried equal one forward over the whole sequence, and the chunked
    backward (gradient into the carried state passed back) equals full BPTT's parameter gradient."""
    layer = cls(2, 4, seed=1, dtype=np.float64)
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((8, 3, 2)), rng.standard_normal((8, 3, 4))
    out, _ = layer.forward(x)
    layer.backward(dout)
    full = {k: v.copy() for k, v in layer.grads.items()}

    out1, s1 = layer.forward(x[:4])
    out2, _ = layer.forward(x[4:], s1)
    np.testing.assert_allclose(np.concatenate([out1, out2]), out, atol=1e-12)
    _, ds1 = layer.backward(dout[4:])                 # chunk 2 (its cache is the last forward)
    g2 = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x[:4])
    layer.backward(dout[:4], ds1)                     # chunk 1 receives the carried gradient
    for k in full:
        np.testing.assert_allclose(layer.grads[k] + g2[k], full[k], atol=1e-12)
    # truncation proper: without the carried gradient, chunk 1 misses the part that flowed back
    layer.backward(dout[:4])
    assert any(not np.allclose(layer.grads[k] + g2[k], full[k]) for k in full)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    layer = rnnkit.GRU(3, 4, dtype=dtype)
    out, h = layer.forward(np.ones((2, 1, 3)))        # float64 input to a float32 layer is converted
    dx, dh = layer.backward(np.ones_like(out))
    assert out.dtype == h.dtype == dx.dtype == dh.dtype == dtype
    assert all(g.dtype == dtype for g in layer.grads.values())


def test_padded_steps_are_zero_and_state_is_each_sequences_last():
    layer = rnnkit.LSTM(2, 3, bidirectional=True, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 2, 2))
    out, (h, c) = layer.forward(x, lengths=[3, 5])
    assert np.all(out[3:, 0] == 0)
    alone, (h1, _) = layer.forward(x[:3, :1])
    np.testing.assert_allclose(out[:3, :1], alone, atol=1e-12)
    np.testing.assert_allclose(h[:, 0], h1[:, 0], atol=1e-12)


def test_init_options():
    lstm = rnnkit.LSTM(3, 8, init="orthogonal", forget_bias=1.0, seed=0, dtype=np.float64)
    w = lstm.params["weight_hh_l0"]
    for g in range(4):
        block = w[g * 8:(g + 1) * 8]
        np.testing.assert_allclose(block @ block.T, np.eye(8), atol=1e-10)
    b = lstm.params["bias_ih_l0"] + lstm.params["bias_hh_l0"]
    np.testing.assert_allclose(b[8:16], 1.0)
    default = rnnkit.GRU(3, 16, seed=0)
    assert all(np.abs(v).max() <= 0.25 for v in default.params.values())  # U(+-1/sqrt(16))
    np.testing.assert_array_equal(rnnkit.GRU(3, 16, seed=0).params["weight_hh_l0"],
                                  default.params["weight_hh_l0"])


def test_dropout_is_reproducible_from_the_seed_and_off_in_eval():
    x = np.ones((4, 2, 3), np.float32)
    a = rnnkit.LSTM(3, 4, num_layers=2, dropout=0.5, seed=3)
    b = rnnkit.LSTM(3, 4, num_layers=2, dropout=0.5, seed=3)
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])
    a.eval()
    np.testing.assert_array_equal(a.forward(x)[0], a.forward(x)[0])


def test_bias_false_and_parameter_count():
    layer = rnnkit.GRU(3, 4, bias=False, num_layers=2)
    assert set(layer.params) == {"weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"}
    assert layer.num_parameters() == 12 * 3 + 12 * 4 + 12 * 4 + 12 * 4
    assert rnnkit.gradcheck(layer, np.ones((3, 2, 3)) * 0.3).passed


def test_hidden_grads_are_recorded():
    layer = rnnkit.RNN(2, 3, bidirectional=True, dtype=np.float64)
    layer.record_hidden_grads = True
    out, _ = layer.forward(np.ones((4, 1, 2)))
    dout = np.zeros_like(out)
    dout[-1, :, :3] = 1.0                              # loss on the forward direction's last output
    layer.backward(dout)
    g = np.linalg.norm(layer.hidden_grads[(0, 0)], axis=(1, 2))
    assert g[-1] > 0 and np.all(g[:-1] > 0) and layer.hidden_grads[(0, 1)].shape == (4, 1, 3)
    np.testing.assert_allclose(layer.hidden_grads[(0, 0)][-1], dout[-1, :, :3])
