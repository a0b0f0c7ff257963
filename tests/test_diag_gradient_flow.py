"""gradient_flow numbers against direct computation: finite differences through `layer.step` and
explicit Jacobian products, on tiny float64 models."""
import numpy as np
import pytest

rnnkit = pytest.importorskip("rnnkit")
from rnnkit.diagnostics.gradient_flow import (flow_to_dict, gradient_flow, memory_horizon,  # noqa: E402
                                              weight_spectra)
from rnnkit.diagnostics.jacobians import CELLS  # noqa: E402

T, B, D, H, L = 6, 3, 2, 3, 2
EPS = 1e-6


def make(kind, nonlinearity="tanh"):
    from rnnkit import GRU, LSTM, RNN
    cls = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}[kind]
    kw = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
    layer = cls(D, H, num_layers=L, dtype=np.float64, seed=3, **kw)
    for p in layer.params.values():        # larger weights so gradients change a lot over time
        p *= 2.0
    x = np.random.default_rng(1).standard_normal((T, B, D))
    return layer, x


def run_steps(layer, x, state, t0):
    """Steps t0..T-1 from `state` (the state after step t0-1); returns the top-layer output at T-1."""
    y = None
    for t in range(t0, T):
        y, state = layer.step(x[t], state)
    return y


def states(layer, x):
    """state after each step t (index t+1), state[0] the zero initial state, as lists of copies."""
    out = [None]
    st = None
    for t in range(T):
        _, st = layer.step(x[t], st)
        out.append(tuple(a.copy() for a in st) if isinstance(st, tuple) else st.copy())
    return out


def u_vec():
    return np.random.default_rng(0).standard_normal((B, H))   # the default loss: L = sum u . h_T


def perturbed(st, which, idx, delta):
    if isinstance(st, tuple):
        st = tuple(a.copy() for a in st)
        st[which][idx] += delta
        return st
    st = st.copy()
    st[idx] += delta
    return st


CASES = [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", "tanh"), ("GRU", "tanh")]


@pytest.mark.parametrize("kind,nl", CASES)
def test_hidden_grad_norms_match_finite_differences(kind, nl):
    layer, x = make(kind, nl)
    flows = gradient_flow(layer, x, jacobian_sequences=B)
    assert [f.key for f in flows] == [f"l{l}" for l in range(L)]
    u = u_vec()
    st = states(layer, x)
    l = L - 1     # FD by perturbing the state only reaches the top layer's total dL/dh_t (lower layers
    f = flows[l]  # also feed the layer above within the same step; they are covered by weight_grad_check)
    for t in range(T - 1):
        g = np.zeros((B, H))
        for b in range(B):
            for i in range(H):
                lp = (run_steps(layer, x, perturbed(st[t + 1], 0, (l, b, i), EPS), t + 1) * u).sum()
                lm = (run_steps(layer, x, perturbed(st[t + 1], 0, (l, b, i), -EPS), t + 1) * u).sum()
                g[b, i] = (lp - lm) / (2 * EPS)
        np.testing.assert_allclose(f.grad_norm[t], np.linalg.norm(g), rtol=1e-6, atol=1e-9,
                                   err_msg=f"{kind} ||dL/dh_t|| top layer, t {t}")
    assert f.grad_norm[T - 1] == pytest.approx(np.linalg.norm(u))   # the loss enters at T-1 only
    for f in flows:
        assert f.weight_grad_check < 1e-10, f"{kind} per-step W_hh terms do not sum to the gradient"


def _fd_state_jacobian(layer, x, st_prev, t, l):
    """d s_t[l] / d s_{t-1}[l] by central differences through layer.step; (B, S, S)."""
    lstm = isinstance(st_prev, tuple)
    parts = 2 if lstm else 1
    J = np.zeros((B, parts * H, parts * H))
    for w in range(parts):
        for b in range(B):
            for i in range(H):
                outs = []
                for sgn in (1, -1):
                    _, s = layer.step(x[t], perturbed(st_prev, w, (l, b, i), sgn * EPS))
                    s = s if lstm else (s,)
                    outs.append(np.concatenate([a[l, b] for a in s]))
                J[b, :, w * H + i] = (outs[0] - outs[1]) / (2 * EPS)
    return J


@pytest.mark.parametrize("kind,nl", CASES)
def test_step_jacobians_and_spectra_match_finite_differences(kind, nl):
    layer, x = make(kind, nl)
    flows = gradient_flow(layer, x, jacobian_sequences=B, k=2)
    st = states(layer, x)
    zero = (np.zeros((L, B, H)),) * 2 if kind == "LSTM" else np.zeros((L, B, H))
    for l, f in enumerate(flows):
        P = None
        prod = np.zeros(T)
        Js = {}
        for t in range(T):
            prev = st[t] if t > 0 else zero
            Js[t] = _fd_state_jacobian(layer, x, prev, t, l)
        for t in range(T - 1, -1, -1):
            J = Js[t]
            np.testing.assert_allclose(f.jacobian["spectral_radius"][t],
                                       np.abs(np.linalg.eigvals(J)).max(1).mean(), rtol=1e-5, atol=1e-8)
            sv = np.linalg.svd(J, compute_uv=False)
            np.testing.assert_allclose(f.jacobian["max_singular"][t], sv[:, 0].mean(), rtol=1e-5, atol=1e-8)
            np.testing.assert_allclose(f.jacobian["top_singular"][t], sv[:, :2].mean(0), rtol=1e-5, atol=1e-8)
            prod[t] = 0.0 if P is None else np.log10(np.linalg.norm(P, 2, axis=(1, 2)).mean() or np.nan)
            P = J if P is None else P @ J
        got = np.array(f.jacobian["product_log10_norm"])
        np.testing.assert_allclose(np.where(np.isinf(got), np.nan, got), prod, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind,nl", CASES)
def test_per_step_weight_gradient_terms_match_finite_differences(kind, nl):
    """Step t's term of dL/dW_hh: perturb W_hh for that step only (a copy of the layer)."""
    from rnnkit import GRU, LSTM, RNN
    layer, x = make(kind, nl)
    f0 = gradient_flow(layer, x)[0]
    u = u_vec()
    key = "weight_hh_l0"
    W = layer.params[key]
    for t in (0, T // 2, T - 1):
        g = np.zeros_like(W)
        for idx in np.ndindex(*W.shape):
            vals = []
            for sgn in (1, -1):
                state = None
                for s in range(T):
                    if s == t:
                        W[idx] += sgn * EPS
                    y, state = layer.step(x[s], state)
                    if s == t:
                        W[idx] -= sgn * EPS
                vals.append((y * u).sum())
            g[idx] = (vals[0] - vals[1]) / (2 * EPS)
        np.testing.assert_allclose(f0.weight_grad_norm[t], np.linalg.norm(g), rtol=1e-5, atol=1e-9,
                                   err_msg=f"{kind} step {t} W_hh term")
    del RNN, LSTM, GRU


def test_summaries_and_spectra():
    layer, x = make("LSTM")
    f = gradient_flow(layer, x)[0]
    g = np.array(f.grad_norm)
    np.testing.assert_allclose(f.decay_rate, g[:-1] / g[1:])
    spec = weight_spectra(layer, k=2)
    W = layer.params["weight_hh_l1"]
    for j, blk in enumerate(CELLS["LSTM"][1]):
        Wb = W[j * H:(j + 1) * H]
        assert spec["l1"][blk]["spectral_radius"] == pytest.approx(np.abs(np.linalg.eigvals(Wb)).max())
        np.testing.assert_allclose(spec["l1"][blk]["singular_values"], np.linalg.svd(Wb, compute_uv=False)[:2])
    assert memory_horizon([1e-5, 1e-3, 0.02, 0.5, 1.0, 0.9], threshold=0.01) == (2, False)
    assert memory_horizon([0.5, 1.0, 0.3], threshold=0.1) == (1, True)
    with pytest.raises(ValueError):
        memory_horizon([1.0], threshold=1.5)
    d = flow_to_dict([f])[0]
    assert d["key"] == "l0" and len(d["grad_norm"]) == T


def test_gradient_flow_on_a_composite_model_and_errors():
    from rnnkit.diagnostics.memory import MemoryModel
    from rnnkit.diagnostics.memory_tasks import delayed_recall
    m = MemoryModel("gru", 6, 5, 4, seed=0).astype(np.float64)
    batch = delayed_recall(4, delay=7, rng=0, dtype=np.float64)
    flows = gradient_flow(m, batch)
    assert len(flows) == 1 and flows[0].layer == "rnn" and len(flows[0].grad_norm) == 9
    assert flows[0].weight_grad_check < 1e-10
    assert m.training  # mode restored
    with pytest.raises(TypeError):
        gradient_flow(object(), None)


def test_bidirectional_and_batch_first():
    from rnnkit import GRU, RNN
    x = np.random.default_rng(2).standard_normal((B, T, D))
    bi = GRU(D, H, bidirectional=True, batch_first=True, dtype=np.float64, seed=0)
    flows = gradient_flow(bi, x)
    assert [f.key for f in flows] == ["l0", "l0_reverse"]
    assert all(f.jacobian is None and len(f.grad_norm) == T for f in flows)
    # batch_first unidirectional: same numbers as the time-major layer on the transposed input
    a = RNN(D, H, batch_first=True, dtype=np.float64, seed=4)
    b = RNN(D, H, dtype=np.float64, seed=4)
    fa, fb = gradient_flow(a, x)[0], gradient_flow(b, x.swapaxes(0, 1))[0]
    np.testing.assert_allclose(fa.grad_norm, fb.grad_norm)
    np.testing.assert_allclose(fa.jacobian["spectral_radius"], fb.jacobian["spectral_radius"])
    assert fa.weight_grad_check < 1e-10
