"""Optimisers against torch.optim in float64, schedules, clipping."""
import math

import numpy as np
import pytest

from rnnkit.optim import (SGD, Adagrad, Adam, AdamW, RMSprop, Schedule, clip_grad_norm, clip_grad_value,
                          make_optimizer)

CASES = [
    ("SGD", SGD, dict(lr=0.1)),
    ("SGD", SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", Adam, dict(lr=0.01)),
    ("Adam", Adam, dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("AdamW", AdamW, dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", RMSprop, dict(lr=0.01)),
    ("RMSprop", RMSprop, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)),
    ("Adagrad", Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("tname,cls,kw", CASES)
def test_optimizer_matches_torch(tname, cls, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    tparams = [torch.tensor(params[k].copy(), requires_grad=True) for k in ("a", "b")]
    opt = cls(**kw)
    topt = getattr(torch.optim, tname)(tparams, **kw)
    for step in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        for tp, k in zip(tparams, ("a", "b")):
            tp.grad = torch.tensor(grads[k])
        topt.step()
        opt.step(params, grads)
        for tp, k in zip(tparams, ("a", "b")):
            np.testing.assert_allclose(params[k], tp.detach().numpy(), rtol=1e-12, atol=1e-13,
                                       err_msg=f"{tname} {kw} param {k} step {step}")


def test_optimizer_state_roundtrip_and_errors():
    rng = np.random.default_rng(0)
    p1 = {"w": rng.standard_normal(4)}
    p2 = {"w": p1["w"].copy()}
    o1, o2 = Adam(lr=0.1), Adam(lr=0.1)
    grads = [{"w": rng.standard_normal(4)} for _ in range(4)]
    for g in grads[:2]:
        o1.step(p1, g)
        o2.step(p2, g)
    o3 = Adam(lr=0.5)
    o3.load_state_dict(o2.state_dict())
    for g in grads[2:]:
        o1.step(p1, g)
        o3.step(p2, g)
    assert np.array_equal(p1["w"], p2["w"])
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("adamm", 0.1)
    with pytest.raises(ValueError, match="lr must be"):
        Adam(lr=-1)
    with pytest.raises(ValueError, match="no gradient"):
        SGD().step({"w": np.zeros(2)}, {})
    with pytest.raises(ValueError, match="not 'SGD'"):
        SGD().load_state_dict(Adam().state_dict())
    assert isinstance(make_optimizer("adamw", 0.1), AdamW)


def test_schedules():
    s = Schedule(1.0, "step", step_size=10, gamma=0.5)
    assert s(0) == 1.0 and s(9) == 1.0 and s(10) == 0.5 and s(25) == 0.25
    c = Schedule(2.0, "cosine", total_steps=100, min_factor=0.1)
    assert c(0) == 2.0 and abs(c(100) - 0.2) < 1e-12 and abs(c(50) - 2.0 * (0.1 + 0.9 * 0.5)) < 1e-12
    w = Schedule(1.0, "constant", warmup_steps=4)
    assert [w(t) for t in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    with pytest.raises(ValueError, match="needs a total"):
        Schedule(1.0, "cosine")
    with pytest.raises(ValueError, match="unknown schedule"):
        Schedule(1.0, "linear")


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20, eta_min=0.1)
    ours = Schedule(1.0, "cosine", total_steps=20, min_factor=0.1)
    for t in range(20):
        assert abs(opt.param_groups[0]["lr"] - ours(t)) < 1e-12
        opt.step()
        cos.step()


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 3)), "b": rng.standard_normal(4)}
    tp = [torch.zeros(3, 3, dtype=torch.float64, requires_grad=True),
          torch.zeros(4, dtype=torch.float64, requires_grad=True)]
    tp[0].grad, tp[1].grad = torch.tensor(grads["a"]), torch.tensor(grads["b"])
    tn = torch.nn.utils.clip_grad_norm_(tp, 1.0).item()
    n = clip_grad_norm(grads, 1.0)
    assert abs(n - tn) < 1e-12
    assert np.allclose(grads["a"], tp[0].grad.numpy(), atol=1e-15)
    assert abs(math.sqrt(sum(float((g ** 2).sum()) for g in grads.values())) - 1.0) < 1e-5
    g = {"a": np.array([3.0, -0.5, -7.0])}
    clip_grad_value(g, 1.0)
    assert g["a"].tolist() == [1.0, -0.5, -1.0]
    bad = {"a": np.array([np.nan, 1.0])}
    assert math.isnan(clip_grad_norm(bad, 1.0))
    with pytest.raises(ValueError):
        clip_grad_norm(g, 0)


@pytest.mark.parametrize("patience,min_factor", [(0, 0.0), (1, 0.0), (2, 0.2)])
def test_plateau_matches_torch_reduce_on_plateau(patience, min_factor):
    """The same validation losses (improving, flat, slightly better than the threshold allows, NaN)
    give torch's ReduceLROnPlateau learning rates, step by step."""
    torch = pytest.importorskip("torch")
    from rnnkit.optim import PlateauState, plateau_update

    vals = [3.0, 2.5, 2.5, 2.4999, 2.6, 2.0, 2.0, 2.0, 2.0, float("nan"), 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=patience,
                                                       threshold=1e-4, threshold_mode="rel", cooldown=0,
                                                       min_lr=min_factor)
    state = PlateauState()
    ours, theirs = [], []
    for v in vals:
        sched.step(v)
        state = plateau_update(state, v, patience, 0.5, 1e-4, min_factor)
        ours.append(state.factor)
        theirs.append(opt.param_groups[0]["lr"])
    assert ours == theirs
    assert min(ours) < 1.0, "the sequence never lowered the rate: the test shows nothing"


def test_adamw_first_step_is_the_closed_form():
    """Step 1 of AdamW: p1 = p0 (1 - lr wd) - lr g / (|g| + eps) (the bias-corrected moments are g and
    g^2); Adam with the same weight_decay adds wd p0 to g instead (L2), and SGD: p1 = p0 - lr (g + wd p0)."""
    rng = np.random.default_rng(0)
    p0, g = rng.standard_normal(6), rng.standard_normal(6)
    lr, wd, eps = 0.01, 0.1, 1e-8
    p = {"w": p0.copy()}
    AdamW(lr=lr, weight_decay=wd, eps=eps).step(p, {"w": g})
    np.testing.assert_allclose(p["w"], p0 * (1 - lr * wd) - lr * g / (np.abs(g) + eps), rtol=1e-13)
    p = {"w": p0.copy()}
    Adam(lr=lr, weight_decay=wd, eps=eps).step(p, {"w": g})
    gl = g + wd * p0
    np.testing.assert_allclose(p["w"], p0 - lr * gl / (np.abs(gl) + eps), rtol=1e-13)
    p = {"w": p0.copy()}
    SGD(lr=lr, weight_decay=wd).step(p, {"w": g})
    np.testing.assert_allclose(p["w"], p0 - lr * (g + wd * p0), rtol=1e-14)


def test_nt_trigger_and_running_average():
    """AWD-LSTM's rule: start when val > min(logs[:-nonmono]) with more than nonmono earlier logs;
    the running mean equals the mean of the iterates."""
    from rnnkit.optim import average_update, nt_trigger

    logs = [5.0, 4.0, 3.0, 3.5, 3.6]
    assert not nt_trigger(logs[:2], 3.0, 2)                # not enough history
    assert not nt_trigger(logs, 3.9, 5)
    assert nt_trigger(logs, 4.5, 3)                        # 4.5 > min(5, 4)
    assert not nt_trigger(logs, 3.9, 3)                    # 3.9 < 4
    assert nt_trigger(logs, 3.1, 0)                        # nonmono 0: worse than the best so far
    rng = np.random.default_rng(0)
    its = [{"w": rng.standard_normal(4)} for _ in range(7)]
    avg = {"w": np.zeros(4)}
    for n, p in enumerate(its, 1):
        average_update(avg, p, n)
    np.testing.assert_allclose(avg["w"], np.mean([p["w"] for p in its], axis=0), rtol=1e-13)
