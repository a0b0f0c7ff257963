"""Fixed points (rnnkit.diagnostics.fixed_points): exact step Jacobians, a map whose fixed points are
known in closed form, and the 3-bit flip-flop's 8 attractors (Sussillo & Barak 2013)."""
import itertools
import json

import numpy as np
import pytest

from rnnkit import GRU, LSTM, RNN
from rnnkit.cells import CELLS
from rnnkit.cli import main
from rnnkit.diagnostics.fixed_points import find_fixed_points, step_and_jacobian, trajectory


def _cell_step(layer, s, x):
    """F from the math core itself (rnnkit.cells.<cell>.step), on the full state."""
    p = {k[:-3]: v for k, v in layer.params.items()}
    H = layer.hidden_size
    state = (s[:, :H], s[:, H:]) if layer.cell_name == "lstm" else (s,)
    return np.concatenate(CELLS[layer.cell_name].step(p, x, state, **layer.cell_kwargs), axis=1)


@pytest.mark.parametrize("cls,kw", [(RNN, {}), (RNN, {"nonlinearity": "relu"}), (LSTM, {}), (GRU, {})])
def test_step_and_jacobian_match_the_cells_step(cls, kw):
    layer = cls(3, 4, dtype=np.float64, seed=0, **kw)
    S = 8 if cls is LSTM else 4
    rng = np.random.default_rng(1)
    s = rng.standard_normal((5, S)) * 0.5
    x = rng.standard_normal(3)
    F, J = step_and_jacobian(layer, s, x)
    np.testing.assert_allclose(F, _cell_step(layer, s, np.tile(x, (5, 1))), rtol=1e-12, atol=1e-12)
    eps = 1e-6
    for j in range(S):
        d = np.zeros(S)
        d[j] = eps
        num = (_cell_step(layer, s + d, np.tile(x, (5, 1))) - _cell_step(layer, s - d, np.tile(x, (5, 1)))) / (2 * eps)
        np.testing.assert_allclose(J[:, :, j], num, rtol=1e-6, atol=1e-8, err_msg=f"column {j}")
    # the trajectory is the layer's own forward pass
    xs = rng.standard_normal((6, 2, 3))
    out, _ = layer.forward(xs)
    np.testing.assert_allclose(trajectory(layer, xs)[:, :, :4], out, rtol=1e-10, atol=1e-12)


def test_known_fixed_points_and_their_stability():
    # h <- tanh(2 h) per unit (W_hh = 2 I, no input or bias): each unit has fixed points 0 (slope 2,
    # unstable) and +-h* with h* = tanh(2 h*) (slope 2 (1 - h*^2) < 1): 3^2 = 9 points, 4 stable,
    # 4 saddles with one unstable direction, 1 source with two
    layer = RNN(1, 2, dtype=np.float64, seed=0)
    for k, v in layer.params.items():
        v[...] = 0.0
    layer.params["weight_hh_l0"][...] = 2 * np.eye(2)
    grid = np.array(list(itertools.product([-1.2, -0.4, 0.0, 0.4, 1.2], repeat=2)))
    fp = find_fixed_points(layer, grid, noise=0.01, seed=0)
    hstar = 0.9575040240772687                                  # root of h = tanh(2h), by bisection
    assert len(fp.q) == 9 and fp.fixed.all()
    assert sorted(fp.n_unstable.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    stable = np.sort(np.abs(fp.states[fp.stable]), axis=None)
    np.testing.assert_allclose(stable, hstar, atol=1e-9)
    np.testing.assert_allclose(np.abs(fp.eigenvalues[fp.stable]), 2 * (1 - hstar ** 2), atol=1e-8)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_flip_flop_has_eight_stable_fixed_points(cell, tmp_path, capsys):
    run = tmp_path / cell
    assert main(["fixedpoints", str(run), "--train", cell, "--steps", "1500", "--candidates", "400"]) == 0
    res = json.loads((run / "fixedpoints.json").read_text())
    assert res["state_size"] == (32 if cell == "lstm" else 16)               # LSTM on [h; c]
    assert res["n_stable"] == 8
    stable = np.array(res["points"]["stable"])
    signs = {tuple(np.sign(r)) for r, s in zip(res["readout"], stable) if s}
    assert signs == set(itertools.product([-1.0, 1.0], repeat=3))              # the 2^3 memories
    # every stable point reads out its memory cleanly; saddles sit between them (one bit undecided)
    assert all(min(abs(v) for v in r) > 0.8 for r, s in zip(res["readout"], stable) if s)
    assert "stable" in capsys.readouterr().out


def test_fixedpoints_cli_needs_a_model(tmp_path, capsys):
    assert main(["fixedpoints", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--train" in err and err.count("\n") == 1
