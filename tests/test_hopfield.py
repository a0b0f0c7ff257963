"""Hopfield networks (rnnkit.hopfield): the properties the theory states, checked on random patterns."""
import numpy as np
import pytest

from rnnkit.hopfield import ContinuousHopfield, DiscreteHopfield, ModernHopfield
from rnnkit.hopfield.discrete import async_sweep, energy


def _patterns(P, N, seed=0):
    return np.where(np.random.default_rng(seed).random((P, N)) < 0.5, -1.0, 1.0)


@pytest.mark.parametrize("rule", ["hebbian", "pseudoinverse"])
def test_async_updates_never_raise_the_energy(rule):
    # a heavily loaded network (alpha = 0.3, past the Hebbian capacity) from random starts: many flips
    N = 60
    net = DiscreteHopfield(N, rule=rule, seed=0).fit(_patterns(18, N))
    x = _patterns(20, N, seed=1)
    W = net.weight_
    for i in np.random.default_rng(2).permutation(N).tolist() * 3:
        before = energy(W, x)
        async_sweep(W, x, [i])
        assert np.all(energy(W, x) <= before + 1e-12)
    # and recall ends in a fixed point of the asynchronous dynamics
    end = net.recall(_patterns(5, N, seed=3))
    assert async_sweep(W, end.copy(), np.arange(N)) == 0


@pytest.mark.parametrize("rule,P", [("hebbian", 5), ("pseudoinverse", 5), ("pseudoinverse", 40)])
def test_stored_patterns_are_fixed_points(rule, P):
    # Hebbian at alpha = 0.05 (well below 0.138); pseudo-inverse even at alpha = 0.4
    N = 100
    X = _patterns(P, N, seed=4)
    net = DiscreteHopfield(N, rule=rule, seed=0).fit(X)
    for mode in ("async", "sync"):
        np.testing.assert_array_equal(net.recall(X, mode=mode, max_steps=1), X)
    np.testing.assert_array_equal(net.recall(X[0]), X[0])            # (N,) in, (N,) out


def test_pseudoinverse_stores_correlated_patterns_the_hebbian_rule_loses():
    # patterns sharing 70 % of their units: Hebbian storage merges them, the projection rule does not
    rng = np.random.default_rng(5)
    base = _patterns(1, 100, seed=6)[0]
    X = np.array([np.where(rng.random(100) < 0.15, -base, base) for _ in range(8)])
    heb = DiscreteHopfield(100, "hebbian", seed=0).fit(X).recall(X)
    pinv = DiscreteHopfield(100, "pseudoinverse", seed=0).fit(X).recall(X)
    assert np.array_equal(pinv, X)
    assert (heb != X).any(axis=1).sum() >= 4


def test_recall_from_corrupted_patterns():
    N, P = 200, 10
    X = _patterns(P, N, seed=7)
    rng = np.random.default_rng(8)
    noisy = np.where(rng.random(X.shape) < 0.15, -X, X)
    for model in (DiscreteHopfield(N, "hebbian", seed=0), DiscreteHopfield(N, "pseudoinverse", seed=0)):
        np.testing.assert_array_equal(model.fit(X).recall(noisy), X)
    np.testing.assert_array_equal(np.sign(ModernHopfield(beta=0.1).fit(X).recall(noisy)), X)


def test_sync_mode_can_two_cycle_and_stops():
    # two units coupled negatively: sync updates from (1, 1) flip both forever (a 2-cycle); async
    # updates settle in one of the two fixed points (1, -1) or (-1, 1)
    net = DiscreteHopfield(2, "hebbian", seed=0).fit(np.array([[1.0, -1.0]]))
    assert np.array_equal(net.recall(np.array([1.0, 1.0]), mode="sync", max_steps=50), [-1.0, -1.0]) or \
        np.array_equal(net.recall(np.array([1.0, 1.0]), mode="sync", max_steps=50), [1.0, 1.0])
    a = net.recall(np.array([1.0, 1.0]), mode="async")
    assert a[0] == -a[1]


def test_continuous_energy_decreases_along_trajectories():
    N = 40
    net = ContinuousHopfield(N, gain=3.0, dt=0.05).fit(_patterns(4, N, seed=9))
    start = np.random.default_rng(10).uniform(-0.9, 0.9, (6, N))
    V, E = net.trajectory(start, 300)
    assert V.shape == (301, 6, N) and E.shape == (301, 6)
    assert np.all(np.diff(E, axis=0) <= 1e-10), np.diff(E, axis=0).max()
    assert np.all(E[-1] < E[0] - 1.0)                                # it really moved downhill
    # the end is an equilibrium of the ODE
    from rnnkit.hopfield.continuous import velocity
    u = np.arctanh(np.clip(V[-1], -1 + 1e-15, 1 - 1e-15)) / net.gain
    assert np.abs(velocity(net.weight_, net.bias_, u, net.gain, net.tau)).max() < 1e-3


def test_continuous_recall_of_a_stored_pattern():
    N = 80
    X = _patterns(3, N, seed=11)
    noisy = np.where(np.random.default_rng(12).random(N) < 0.1, -X[1], X[1]) * 0.5
    V = ContinuousHopfield(N, gain=4.0).fit(X).recall(noisy)
    assert V.shape == (N,) and np.array_equal(np.sign(V), X[1])


def test_modern_update_never_raises_energy_and_stores_beyond_n():
    N, P = 32, 200                                                      # alpha = 6.25 > 1
    X = _patterns(P, N, seed=13)
    net = ModernHopfield(beta=1.0).fit(X)
    np.testing.assert_array_equal(np.sign(net.recall(X)), X)
    xi = np.random.default_rng(14).standard_normal((10, N))
    from rnnkit.hopfield.modern import update
    for _ in range(5):
        new = update(X, 0.05, xi)
        assert np.all(ModernHopfield(0.05).fit(X).energy(new) <= ModernHopfield(0.05).fit(X).energy(xi) + 1e-10)
        xi = new


def test_bad_input():
    with pytest.raises(ValueError, match="rule"):
        DiscreteHopfield(4, rule="oja").fit(np.ones((1, 4)))
    with pytest.raises(ValueError, match="-1 and"):
        DiscreteHopfield(4).fit(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="units"):
        DiscreteHopfield(5).fit(np.ones((1, 4)))
    net = DiscreteHopfield(4).fit(np.ones((1, 4)))
    with pytest.raises(ValueError, match="mode"):
        net.recall(np.ones(4), mode="parallel")
    with pytest.raises(ValueError, match="shape"):
        net.recall(np.ones(3))
    with pytest.raises(ValueError, match="beta"):
        ModernHopfield(beta=0).fit(np.ones((1, 4)))


def test_capacity_curve_shows_the_hebbian_break():
    from rnnkit.hopfield.experiments import capacity_curve
    cap = capacity_curve(N=150, alphas=[0.05, 0.1, 0.3, 2.0], seed=0, max_patterns=60)
    heb, pinv, mod = (cap["networks"][k] for k in ("hebbian", "pseudoinverse", "modern"))
    assert heb["mean_overlap"][0] > 0.99 and heb["mean_overlap"][1] > 0.97   # below alpha = 0.138
    assert heb["mean_overlap"][2] < 0.8                                      # well above it
    assert min(pinv["mean_overlap"]) > 0.99 and len(pinv["alpha"]) == 3     # P >= N is left out
    assert min(mod["mean_overlap"]) > 0.99                                   # alpha = 2 included


def test_hopfield_cli_digits(tmp_path, capsys):
    pytest.importorskip("sklearn")
    import json

    from rnnkit.cli import main
    assert main(["hopfield", "--units", "60", "--alphas", "0.05,0.5", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "hopfield.json").read_text())
    dig = res["digits"]["networks"]
    # the ten prototypes are correlated: the Hebbian rule loses most; pseudo-inverse and modern recall
    assert dig["modern"]["exact"] > 0.8 and dig["pseudoinverse"]["exact"] > 0.5
    assert dig["hebbian"]["exact"] < dig["pseudoinverse"]["exact"]
    assert len(res["digits"]["examples"]["corrupted"]) == 10
    assert "exact recall" in capsys.readouterr().out
    assert (tmp_path / "capacity.png").is_file() == (tmp_path / "digits.png").is_file()


@pytest.mark.parametrize("argv,msg", [(["--alphas", "0.1,x"], "--alphas"), (["--flip", "1.5"], "--flip"),
                                      (["--units", "1"], "--units"), (["--beta", "0"], "--beta")])
def test_hopfield_cli_bad_input(argv, msg, tmp_path, capsys):
    from rnnkit.cli import main
    assert main(["hopfield", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and not (tmp_path / "o").exists()
