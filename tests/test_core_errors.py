"""Bad input to the recurrent layers: a ValueError/TypeError naming the argument, the expectation and
what came. No silent broadcasting."""
import numpy as np
import pytest

import rnnkit


@pytest.fixture
def lstm():
    return rnnkit.LSTM(3, 4, num_layers=2)


@pytest.mark.parametrize("x,match", [
    (np.ones((5, 3)), r"x must have 3 dimensions.*got shape \(5, 3\)"),
    (np.ones((5, 2, 7)), r"x has 7 features per step but the layer's input_size is 3"),
    (np.full((2, 1, 3), np.nan), r"x contains 6 NaN or Inf"),
    (np.array([[[1, 2, np.inf]]]), r"x contains 1 NaN or Inf"),
    (np.zeros((0, 2, 3)), r"at least one time step"),
])
def test_bad_x(lstm, x, match):
    with pytest.raises(ValueError, match=match):
        lstm.forward(x)


def test_non_numeric_x(lstm):
    with pytest.raises(TypeError, match="x must be a numeric array"):
        lstm.forward(np.array([[["a", "b", "c"]]]))


@pytest.mark.parametrize("lengths,exc,match", [
    ([1.0, 2.0], TypeError, "lengths must be integers"),
    (np.array([1.5, 2]), TypeError, "lengths must be integers"),
    ([0, 2], ValueError, "between 1 and the sequence length T=5"),
    ([-1, 2], ValueError, "between 1 and the sequence length"),
    ([6, 2], ValueError, "between 1 and the sequence length T=5"),
    ([2, 2, 2], ValueError, r"lengths must have shape \(2,\)"),
])
def test_bad_lengths(lstm, lengths, exc, match):
    with pytest.raises(exc, match=match):
        lstm.forward(np.ones((5, 2, 3)), lengths=lengths)


def test_bad_state(lstm):
    x = np.ones((5, 2, 3))
    with pytest.raises(TypeError, match=r"state for LSTM must be a tuple \(h, c\)"):
        lstm.forward(x, np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match=r"state \(c\) must have shape \(2, 2, 4\).*got \(1, 2, 4\)"):
        lstm.forward(x, (np.zeros((2, 2, 4)), np.zeros((1, 2, 4))))
    gru = rnnkit.GRU(3, 4)
    with pytest.raises(ValueError, match=r"state must have shape \(1, 2, 4\).*got \(2, 4\)"):
        gru.forward(x, np.zeros((2, 4)))
    with pytest.raises(TypeError, match="must be one array"):
        gru.forward(x, (np.zeros((1, 2, 4)),))


def test_backward_before_forward_and_bad_dout(lstm):
    with pytest.raises(ValueError, match="backward called before forward"):
        lstm.backward(np.ones((5, 2, 4)))
    lstm.forward(np.ones((5, 2, 3)))
    with pytest.raises(ValueError, match=r"dout must have shape \(5, 2, 4\).*got \(5, 1, 4\)"):
        lstm.backward(np.ones((5, 1, 4)))                 # would broadcast silently otherwise
    with pytest.raises(ValueError, match=r"dstate \(h\) must have shape"):
        lstm.backward(np.ones((5, 2, 4)), (np.ones((2, 1, 4)), np.ones((2, 2, 4))))


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"nonlinearity": "sigmoid"}, ValueError, r"nonlinearity must be one of \['relu', 'tanh'\], got 'sigmoid'"),
    ({"dropout": 1.5}, ValueError, "dropout must be a probability"),
    ({"init": "xavier"}, ValueError, "init must be one of"),
    ({"dtype": np.int32}, TypeError, "dtype must be a floating type"),
    ({"num_layers": 0}, ValueError, "num_layers must be a positive integer"),
])
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rnnkit.RNN(3, 4, **kwargs)


def test_step_errors():
    with pytest.raises(ValueError, match="step\\(\\) needs a unidirectional layer"):
        rnnkit.GRU(3, 4, bidirectional=True).step(np.ones((1, 3)))
    with pytest.raises(ValueError, match="x_t has 2 features"):
        rnnkit.GRU(3, 4).step(np.ones((1, 2)))
