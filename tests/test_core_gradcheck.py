"""Layer 1 of correctness: every gradient of every cell against float64 central differences."""
import numpy as np
import pytest

import rnnkit
from core_cases import BIDI, BIDI_IDS, GRID, IDS, LENGTHS, make_inputs, make_layer, side_by_side


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", GRID, ids=IDS)
def test_bptt_matches_finite_differences(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate):
    check_gradients(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)


@pytest.mark.parametrize("cell,num_layers,bidirectional,use_lengths,use_h0,use_dstate", BIDI, ids=BIDI_IDS)
def test_bptt_side_by_side_matches_finite_differences(cell, num_layers, bidirectional, use_lengths,
                                                      use_h0, use_dstate):
    with side_by_side() as calls:
        check_gradients(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate)
    assert calls, "the directions did not run side by side"


def check_gradients(cell, num_layers, bidirectional, use_lengths, use_h0, use_dstate):
    layer = make_layer(cell, num_layers, bidirectional)
    x, state = make_inputs(cell, num_layers, bidirectional)
    report = rnnkit.gradcheck(layer, x, state=state if use_h0 else None,
                              lengths=LENGTHS if use_lengths else None, dstate=use_dstate)
    expected = {"x", *layer.params} | ({"state[0]"} if use_h0 else set())
    assert expected <= set(report.errors), "gradcheck skipped a tensor"
    assert report.max_error < 1e-6, f"\n{report}"


def test_gradcheck_catches_a_wrong_gradient():
    """The checker itself must fail on a wrong backward, or the grid above proves nothing."""
    w = np.random.default_rng(0).standard_normal((3, 4))

    def forward(w):
        return np.tanh(w)

    good = rnnkit.check_function(forward, lambda u: {"w": u * (1 - np.tanh(w) ** 2)}, {"w": w.copy()})
    bad = rnnkit.check_function(forward, lambda u: {"w": u * (1 - np.tanh(w) ** 2).T.T * 1.01},
                                {"w": w.copy()})
    assert good.passed and good.max_error < 1e-8
    assert not bad.passed and "FAIL" in str(bad)


def test_gradcheck_leaves_the_callers_layer_alone():
    layer = rnnkit.LSTM(3, 4, seed=0)
    before = layer.state_dict()
    report = rnnkit.gradcheck(layer, np.ones((2, 1, 3)))
    assert report.passed
    assert layer.params["weight_ih_l0"].dtype == np.float32
    for k, v in before.items():
        np.testing.assert_array_equal(layer.params[k], v)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_dropout_gradient_with_a_fixed_mask(cell):
    """Dropout between layers: backward uses the same mask as the forward it follows."""
    layer = make_layer(cell, 2, True, dropout=0.5).train()
    x, _ = make_inputs(cell, 2, True)

    def forward(x, **_):
        layer._dropout_rng = np.random.default_rng(7)  # the same mask at every evaluation
        return layer.forward(x)[0]

    def backward(u):
        forward(inputs["x"])
        dx, _ = layer.backward(u)
        return {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}

    inputs = {"x": x, **layer.params}
    report = rnnkit.check_function(forward, backward, inputs)
    assert report.max_error < 1e-6, f"\n{report}"
