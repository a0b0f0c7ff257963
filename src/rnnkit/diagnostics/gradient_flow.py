"""Gradient flow through time: how far back a loss gradient reaches in a recurrent model.

`gradient_flow(model, batch)` runs one forward/backward and reports, for every recurrent layer in the
model and every time step t:

- `grad_norm[t]  = ||dL/dh_t||` (Frobenius norm over batch and hidden units) of the total gradient
  into h_t, read from the layer's `record_hidden_grads` facility;
- `weight_grad_norm[t] = ||dz_t^T h_{t-1}||`, the norm of step t's term of dL/dW_hh, where dz_t is the
  gradient at the gate pre-activations (closed form in `jacobians.py`). The terms sum to the layer's
  `weight_hh` gradient; `weight_grad_check` is the relative difference, a built-in consistency check;
- `decay_rate[t] = grad_norm[t-1] / grad_norm[t]` (< 1: the gradient shrinks one step further back);
- the effective memory horizon: with t* = argmax grad_norm, the number of steps back from t* over
  which grad_norm stays >= `threshold` * grad_norm[t*] (default 1 %);
- spectra of the step Jacobians J_t = ds_t/ds_{t-1} along the real trajectory (spectral radius,
  largest singular values, averaged over the first `jacobian_sequences` sequences) and the norm of
  their product ||ds_{T-1}/ds_t||, which bounds how much of a gradient at the last step survives to t;
- spectra of the recurrent weights (per gate block for LSTM and GRU).

The loss: `loss_fn(model, batch) -> float` must run the model's forward and backward. Without it, a
bare RNN/LSTM/GRU layer gets L = sum_b u_b . h_T with a fixed random u (the gradient enters only at
the last step, the textbook setting for vanishing gradients), and a model with a
`loss_and_backward(batch)` method uses that. Models are put in eval mode (no dropout) for the call so
the recomputed trajectory matches. Bidirectional layers and padded batches (`lengths`) get gradient
norms only (no Jacobians); a loss that uses the final LSTM cell state directly shows up as a large
`weight_grad_check`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .jacobians import CELLS, _cell_kind


def recurrent_layers(model) -> list[tuple[str, object]]:
    """(dotted name, layer) of every RNN/LSTM/GRU layer in `model` (the model itself included)."""
    found = []

    def walk(name, m):
        try:
            _cell_kind(m)
            found.append((name, m))
            return
        except TypeError:
            pass
        for cname, child in getattr(m, "children", lambda: iter(()))():
            walk(f"{name}.{cname}" if name else cname, child)

    walk("", model)
    return found


def _suffix(l: int, d: int) -> str:
    return f"_l{l}" + ("_reverse" if d else "")


def _layer_params(layer, l, d) -> dict:
    sfx = _suffix(l, d)
    return {k[: -len(sfx)]: v.astype(np.float64) for k, v in layer.params.items() if k.endswith(sfx)}


def weight_spectra(layer, k: int = 5) -> dict:
    """Spectral radius and top-k singular values of each recurrent weight (per gate block).

    Returns {"l0": {"i": {"spectral_radius": float, "singular_values": [...]}, ...}, ...}; the block
    names are the gate names ("hh" for a plain RNN).
    """
    kind = _cell_kind(layer)
    blocks = CELLS[kind][1]
    out = {}
    for l in range(layer.num_layers):
        for d in range(2 if layer.bidirectional else 1):
            W = _layer_params(layer, l, d)["weight_hh"]
            H = W.shape[1]
            out[_suffix(l, d)[1:]] = {
                b: {"spectral_radius": float(np.abs(np.linalg.eigvals(W[j * H:(j + 1) * H])).max()),
                    "singular_values": np.linalg.svd(W[j * H:(j + 1) * H], compute_uv=False)[:k].tolist()}
                for j, b in enumerate(blocks)}
    return out


def memory_horizon(grad_norm, threshold: float = 0.01) -> tuple[int, bool]:
    """Steps back from the largest ||dL/dh_t|| over which it stays >= threshold * max.

    Returns (horizon, reaches_start); reaches_start is True when it never dropped below the
    threshold before t = 0 (the horizon is then at least the sequence length seen).
    """
    g = np.asarray(grad_norm, dtype=np.float64)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    t_star = int(np.argmax(g))
    below = np.nonzero(g[: t_star + 1] < threshold * g[t_star])[0]
    if below.size == 0:
        return t_star, True
    return int(t_star - below[-1] - 1), False


@dataclass
class LayerFlow:
    """Gradient-flow numbers for one layer and direction (arrays are indexed by time step t)."""
    layer: str
    cell: str
    key: str                       # "l0", "l1_reverse", ... (the torch parameter suffix)
    grad_norm: list
    decay_rate: list               # (T-1,): grad_norm[t-1] / grad_norm[t], t = 1..T-1
    mean_decay_rate: float         # geometric mean of decay_rate over the steps before the max
    horizon: int
    horizon_reaches_start: bool
    threshold: float
    weight_grad_norm: list | None = None
    weight_grad_check: float | None = None
    jacobian: dict | None = None   # spectral_radius, max_singular (T,), top_singular (T, k), product_log10_norm (T,)
    weights: dict = field(default_factory=dict)


def _default_loss(model, batch):
    if hasattr(model, "loss_and_backward"):
        return model.loss_and_backward(batch)
    x = batch
    out, _ = model.forward(x)
    bf = getattr(model, "batch_first", False)
    B = out.shape[0] if bf else out.shape[1]
    u = np.random.default_rng(0).standard_normal((B, out.shape[2])).astype(out.dtype)  # (B, nd*H)
    dout = np.zeros_like(out)
    if bf:
        dout[:, -1] = u
        loss = float((out[:, -1] * u).sum())
    else:
        dout[-1] = u
        loss = float((out[-1] * u).sum())
    model.backward(dout)
    return loss


def _trajectory(layer, x, state0):
    """States of every layer along the sequence by `layer.step`: h (T+1, L, B, H), c likewise or None."""
    T = x.shape[0]
    hs, cs = [], []
    state = state0
    for t in range(T + 1):
        if t > 0:
            _, state = layer.step(x[t - 1], state)
        if state is None:
            B = x.shape[1]
            z = np.zeros((layer.num_layers, B, layer.hidden_size))
            hs.append(z)
            cs.append(z)
        elif isinstance(state, tuple):
            hs.append(np.asarray(state[0], np.float64))
            cs.append(np.asarray(state[1], np.float64))
        else:
            hs.append(np.asarray(state, np.float64))
    return np.stack(hs), (np.stack(cs) if _cell_kind(layer) == "LSTM" else None)


def _jacobian_flow(layer, l, x_l, h, c, dh, n_jac, k):
    """Walk t = T-1 .. 0: weight-gradient terms (full batch) and Jacobian spectra (first n_jac)."""
    kind = _cell_kind(layer)
    step_fn = CELLS[kind][0]
    p = _layer_params(layer, l, 0)
    T = x_l.shape[0]
    kw = {"nonlinearity": layer.nonlinearity} if kind == "RNN" else {}
    wnorm = np.zeros(T)
    dW = np.zeros_like(p["weight_hh"])
    rho, smax, top = np.zeros(T), np.zeros(T), np.full((T, k), np.nan)
    prod_log10 = np.zeros(T)
    P, log_scale = None, 0.0
    dc_next = None
    for t in range(T - 1, -1, -1):
        state = (h[t, l], c[t, l]) if c is not None else (h[t, l],)
        if kind == "LSTM":
            kw["dc_next"] = dc_next
        terms = step_fn(p, x_l[t], state, dh[t], n_jac, **kw)
        dc_next = terms.dc_prev
        wnorm[t] = np.linalg.norm(terms.dW_hh)
        dW += terms.dW_hh
        J = terms.J                                                  # (n, S, S)
        rho[t] = np.abs(np.linalg.eigvals(J)).max(axis=1).mean()
        sv = np.linalg.svd(J, compute_uv=False)                      # (n, S) descending
        smax[t] = sv[:, 0].mean()
        kk = min(k, sv.shape[1])
        top[t, :kk] = sv[:, :kk].mean(axis=0)
        # ||ds_{T-1}/ds_t|| = ||J_{T-1} ... J_{t+1}||, accumulated with rescaling to avoid under/overflow
        if P is None:
            prod_log10[t] = 0.0
            P = J.copy()
        else:
            pn = np.linalg.norm(P, 2, axis=(1, 2)).mean()
            prod_log10[t] = (log_scale + math.log(pn)) / math.log(10) if pn > 0 else -math.inf
            P = P @ J
        s = np.linalg.norm(P)
        if s > 0 and np.isfinite(s):
            P /= s
            log_scale += math.log(s)
    ref = layer.grads[f"weight_hh_l{l}"].astype(np.float64)
    check = float(np.linalg.norm(dW - ref) / max(np.linalg.norm(ref), 1e-300))
    jac = {"spectral_radius": rho.tolist(), "max_singular": smax.tolist(),
           "top_singular": top.tolist(), "product_log10_norm": prod_log10.tolist(),
           "sequences": int(n_jac)}
    return wnorm.tolist(), check, jac


def _summary(g, threshold):
    g = np.asarray(g, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = g[:-1] / g[1:]                                        # decay_rate[t-1] = g[t-1] / g[t]
    t_star = int(np.argmax(g))
    r = rate[:t_star]
    r = r[np.isfinite(r) & (r > 0)]
    mean_rate = float(np.exp(np.log(r).mean())) if r.size else float("nan")
    horizon, reaches = memory_horizon(g, threshold)
    return [float(v) for v in rate], mean_rate, horizon, reaches


def gradient_flow(model, batch, loss_fn=None, threshold: float = 0.01, jacobian_sequences: int = 2,
                  k: int = 5) -> list[LayerFlow]:
    """Gradient flow through time for every recurrent layer of `model` on one `batch` (see module doc).

    model: an RNN/LSTM/GRU layer or a Module containing them. batch: what `loss_fn` takes (for a bare
    layer without loss_fn: the input x (T, B, D)). Returns one `LayerFlow` per layer and direction.
    """
    layers = recurrent_layers(model)
    if not layers:
        raise TypeError(f"gradient_flow: {type(model).__name__} contains no RNN, LSTM or GRU layer")
    loss_fn = loss_fn or _default_loss
    captured = {}
    for name, layer in layers:
        # record the layer's input and initial state (an instance attribute shadows the method for
        # this call only) so the trajectory can be replayed step by step for the Jacobians
        def spy(x, state=None, lengths=None, _orig=layer.forward, _name=name):
            captured[_name] = (x, state, lengths)
            return _orig(x, state, lengths)
        layer.forward = spy
        layer.record_hidden_grads = True
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        loss = loss_fn(model, batch)
    finally:
        for _, layer in layers:
            del layer.forward
            layer.record_hidden_grads = False
        if was_training:
            model.train()
    if not np.isfinite(loss):
        raise ValueError(f"gradient_flow: the loss is not finite ({loss}); the model has diverged")
    results = []
    for name, layer in layers:
        if name not in captured:
            raise ValueError(f"gradient_flow: the loss never called layer {name or type(layer).__name__}")
        x, state0, lengths = captured[name]
        x = np.asarray(x, dtype=np.float64)
        if getattr(layer, "batch_first", False):
            x = x.swapaxes(0, 1)                                     # (T, B, D)
        kind = _cell_kind(layer)
        nd = 2 if layer.bidirectional else 1
        do_jac = nd == 1 and lengths is None
        if do_jac:  # trajectory in the layer's dtype (as trained); the Jacobian algebra in float64
            h, c = _trajectory(layer, x, state0)
        for l in range(layer.num_layers):
            for d in range(nd):
                dh = np.asarray(layer.hidden_grads[(l, d)], dtype=np.float64)  # (T, B, H)
                g = np.sqrt((dh ** 2).sum(axis=(1, 2)))
                rate, mean_rate, hor, reaches = _summary(g, threshold)
                lf = LayerFlow(name or type(layer).__name__, kind, _suffix(l, d)[1:], g.tolist(), rate,
                               mean_rate, hor, reaches, threshold)
                if do_jac:
                    x_l = x if l == 0 else h[1:, l - 1]
                    n_jac = max(1, min(jacobian_sequences, x.shape[1]))
                    lf.weight_grad_norm, lf.weight_grad_check, lf.jacobian = _jacobian_flow(
                        layer, l, x_l, h, c, dh, n_jac, k)
                results.append(lf)
        spectra = weight_spectra(layer, k)
        for lf in results:
            if lf.layer == (name or type(layer).__name__):
                lf.weights = spectra[lf.key]
    return results


def flow_to_dict(flows: list[LayerFlow]) -> list[dict]:
    """JSON-ready form (NaN becomes None)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    return [clean(asdict(f)) for f in flows]
