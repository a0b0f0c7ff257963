"""`RNN`, `LSTM` and `GRU` layers: multi-layer, bidirectional, dropout between layers, padded batches.

Same equations, options, parameter names/shapes and state layout as `torch.nn.RNN/LSTM/GRU`, so weights
move between the two unchanged (`layer.load_state_dict(torch_module.state_dict())` after `.numpy()`).
The math lives in the layer's backend (`rnnkit.backends`: "numpy" the reference cells, "numba" the
fused kernels), resolved once at construction; this file only stacks layers and directions:

    layer l, direction d:  out_{l,d}, state_{l,d} = cell.forward(params_{l,d}, input_l (reversed if d=1))
    input_{l+1} = dropout([out_{l,0}, out_{l,1}])      (dropout only between layers, in training mode)

Weight-drop (`weight_drop=p`; DropConnect on the recurrent weights, Wan et al. 2013, as AWD-LSTM uses
it, Merity et al. 2017): in training mode each forward draws one mask M per (layer, direction) of
`weight_hh`'s shape, M = (u >= p) / (1 - p), and the cell runs with W_hh * M at every time step; the
gradient of `weight_hh` is then dW_hh = M * dW~ (dW~ the cell's gradient for the masked weight). Eval
mode and `step()` use W_hh itself, the masks' expectation.

Without `lengths` the two directions write their states into one (T+2, B, 2H) buffer whose rows 1..T
are [out_{l,0}, out_{l,1}] (`_direction_states`), so that array is not built and kept a second time.

Shapes: x (T, B, D) or (B, T, D) with batch_first; out (T, B, nd*H); h_n (L*nd, B, H), index l*nd + d.
`lengths` (B,) gives each sequence's true length (PyTorch packed-sequence semantics): the reverse
direction reads each sequence from its own last real step, padded steps leave the state alone, get zero
output and pass no gradient.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backends, cells
from .base import Module
from .checks import as_float_array, check_finite, check_lengths, check_shape, float_dtype
from .dropout import check_probability, dropout_mask

INITS = ("uniform", "orthogonal")


class LayerCache(NamedTuple):
    """What `forward` keeps for `backward`: the backend that made the per-direction caches, and them."""
    backend: str                 # the backend's name (`rnnkit.backends`)
    caches: list                 # one cell cache per (layer, direction), index l * nd + d
    drop_masks: list             # per layer: the dropout mask applied to its output, or None
    rev: np.ndarray | None       # (T, B) per-sequence reversal index with lengths, else None
    shape: tuple                 # (T, B)
    weight_drop: list | None = None  # per (layer, direction): (mask M, params with W_hh * M), or None


def _reverse_index(lengths: np.ndarray, T: int) -> np.ndarray:
    """(T, B) gather index that reverses each sequence within its own length; an involution."""
    t = np.arange(T)[:, None]                                        # (T, 1)
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _direction_states(buf: np.ndarray, d: int) -> np.ndarray:
    """Direction d's states hs (T+1, B, H), hs[0] = h_0, as a view of its layer's buffer (T+2, B, 2H).

    forward  hs[s] = buf[s, :, :H]:        its output at time t, hs[t+1], is buf[t+1, :, :H];
    reverse  hs[s] = buf[T+1-s, :, H:]:    it reads the reversed input, so its output at time t,
                                           hs[T-t], is buf[t+1, :, H:].
    The layer's output [h_fwd_t, h_rev_t] is then buf[1:T+1], one contiguous (T, B, 2H) array that both
    directions' caches keep anyway, instead of a concatenated copy kept again as the next layer's input
    (2H floats per step and row). buf[0, :, H:] and buf[T+1, :, :H] are not used.
    """
    H = buf.shape[2] // 2
    return buf[:-1, :, :H] if d == 0 else buf[:0:-1, :, H:]


def _orthogonal(rng, n: int, dtype) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r))).astype(dtype)                   # sign fix: uniform over O(n)


class _Recurrent(Module):
    """Shared machinery; subclasses set `cell_name` (a key of `rnnkit.cells.CELLS`).

    backend: "numpy", "numba" or None (the default in effect, `rnnkit.backends.default()`); kept as
    the name in `self.backend`, and every call of this layer goes to that backend.
    """

    cell_name = ""
    random_generators = ("_dropout_rng", "_weight_drop_rng")

    @property
    def cell(self):
        """The math-core module (`rnnkit.cells.rnn|lstm|gru`); a property so layers deep-copy cleanly."""
        return cells.CELLS[self.cell_name]

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, seed: int | None = None, init: str = "uniform",
                 forget_bias: float | None = None, backend: str | None = None, weight_drop: float = 0.0,
                 **cell_kwargs):
        super().__init__()
        self.backend = backends.resolve(backend)
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.weight_drop = check_probability("weight_drop", weight_drop)
        dtype = float_dtype(type(self).__name__, dtype)
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dtype, self.seed, self.init, self.forget_bias = dtype, seed, init, forget_bias
        self.cell_kwargs = cell_kwargs
        self.record_hidden_grads = False
        self.hidden_grads: dict[tuple[int, int], np.ndarray] = {}
        # a third stream for weight-drop leaves the first two (and so older seeded runs) unchanged
        init_seq, drop_seq, wd_seq = np.random.SeedSequence(seed).spawn(3)
        self._dropout_rng = np.random.default_rng(drop_seq)
        self._weight_drop_rng = np.random.default_rng(wd_seq)
        self._cache = None
        self._step_state = None
        self._names: dict = {}
        self._steppers: dict = {}
        self._workspaces: dict[tuple[int, int], backends.Workspace] = {}
        self.reset_parameters(np.random.default_rng(init_seq))

    # -- parameters --------------------------------------------------------------------------------
    def _suffix(self, layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def reset_parameters(self, rng=None) -> None:
        """torch's default U(-1/sqrt(H), 1/sqrt(H)); optionally orthogonal W_hh blocks, forget bias."""
        rng = np.random.default_rng(rng)
        H, G = self.hidden_size, self.cell.GATES
        k = 1.0 / np.sqrt(H)
        self._params = {}
        for l in range(self.num_layers):
            d_in = self.input_size if l == 0 else H * self.num_directions
            for d in range(self.num_directions):
                s = self._suffix(l, d)
                shapes = {"weight_ih": (G * H, d_in), "weight_hh": (G * H, H)}
                if self.bias:
                    shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
                for name, shape in shapes.items():
                    self._params[name + s] = rng.uniform(-k, k, shape).astype(self.dtype)
                if self.init == "orthogonal":
                    self._params["weight_hh" + s][...] = np.concatenate(
                        [_orthogonal(rng, H, self.dtype) for _ in range(G)], axis=0)
                if self.forget_bias is not None and self.bias and self.cell_name == "lstm":
                    self._params["bias_ih" + s][H:2 * H] = self.forget_bias
                    self._params["bias_hh" + s][H:2 * H] = 0.0
        self._zero_grads()

    def _zero_grads(self) -> None:
        """Zero gradients, in the workspaces' gradient buffers: the first backward writes over them
        (the fused backend's gradients are those buffers) instead of allocating beside them."""
        self._grads = {}
        for l in range(self.num_layers):
            for d in range(self.num_directions):
                ws = self._workspace(l, d)
                for short, full in self._param_names(l, d):
                    p = self._params[full]
                    g = self._grads[full] = ws.buffer("grad_" + short, p.shape, p.dtype)
                    g[...] = 0

    def astype(self, dtype) -> "_Recurrent":
        super().astype(dtype)
        self._zero_grads()
        return self

    def _param_names(self, layer: int, direction: int) -> tuple:
        """((cell name, layer name), ...) of one layer and direction, e.g. ("weight_ih", "weight_ih_l0")."""
        names = self._names.get((layer, direction))
        if names is None:
            s = self._suffix(layer, direction)
            short = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
            names = self._names[(layer, direction)] = tuple((n, n + s) for n in short)
        return names

    def _cell_params(self, layer: int, direction: int, weight_drop: list | None = None) -> dict:
        """{"weight_ih": ..., ...} of one layer and direction; with the `weight_drop` samples of a
        forward (`_sample_weight_drop`), the params with its masked W_hh."""
        if weight_drop is not None:
            return weight_drop[layer * self.num_directions + direction][1]
        p = self._params
        return {n: p[full] for n, full in self._param_names(layer, direction)}

    def _sample_weight_drop(self) -> list | None:
        """One weight-drop mask per (layer, direction), index l * nd + d, drawn in that order (so the
        masks do not depend on whether the directions run side by side); None when off."""
        if not (self.training and self.weight_drop > 0):
            return None
        out = []
        for l in range(self.num_layers):
            for d in range(self.num_directions):
                params = self._cell_params(l, d)
                mask = dropout_mask(self._weight_drop_rng, params["weight_hh"].shape, self.weight_drop,
                                    self.dtype)
                out.append((mask, {**params, "weight_hh": params["weight_hh"] * mask}))
        return out

    def __getstate__(self):
        """Copies and pickles leave out the step functions (they hold this layer's own arrays) and the
        workspaces (buffers, not state; an unpickled array may be read-only, e.g. memory-mapped)."""
        state = dict(self.__dict__)
        state["_steppers"], state["_step_state"], state["_workspaces"] = {}, None, {}
        return state

    def __setstate__(self, state):
        """A copy gets workspaces of its own, its gradients (same values) in them."""
        self.__dict__.update(state)
        grads = self._grads
        self._zero_grads()
        for k, g in grads.items():
            if k in self._grads and np.shape(g) == self._grads[k].shape:
                self._grads[k][...] = g

    def _workspace(self, layer: int, direction: int) -> backends.Workspace:
        """The buffers this layer owns for one (layer, direction) and lends to its backend; their
        lifetimes are stated in `rnnkit.backends.workspace`."""
        ws = self._workspaces.get((layer, direction))
        if ws is None:
            ws = self._workspaces[(layer, direction)] = backends.Workspace()
        return ws

    def _stepper(self, backend, layer: int, B: int):
        """The backend's step function for this layer and batch size, with the weights bound; kept
        while the parameter arrays are the same objects (updates are in place; `astype` and
        `reset_parameters` make new ones), so a generated token costs no argument set-up."""
        p, key = self._params, (layer, B)
        entry = self._steppers.get(key)
        if entry is not None and entry[2] is backend:
            for full, a in entry[0]:
                if p[full] is not a:
                    break
            else:
                return entry[1]
        if len(self._steppers) >= 16:                                # e.g. beam search, many sizes
            self._steppers.clear()
        names = self._param_names(layer, 0)
        run = backend.stepper(self.cell_name, {n: p[full] for n, full in names}, B, **self.cell_kwargs)
        self._steppers[key] = (tuple((full, p[full]) for _, full in names), run, backend)
        return run

    # -- state conversion between torch layout and per-(layer, direction) tuples ----------------------
    def _state_arrays(self, state, B: int, name: str, finite: bool = True) -> list[np.ndarray]:
        """The user's state (h_0, or (h_0, c_0) for LSTM) as a list of (L*nd, B, H) arrays."""
        n_states = self.cell.N_STATES
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if state is None:
            return [np.zeros(shape, self.dtype) for _ in range(n_states)]
        if n_states == 2:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"{name} for LSTM must be a tuple (h, c) of arrays with shape {shape}, "
                                f"got {type(state).__name__}")
            parts = list(zip(("h", "c"), state))
        else:
            if isinstance(state, (tuple, list)):
                raise TypeError(f"{name} for {type(self).__name__} must be one array of shape {shape}, "
                                f"got a {type(state).__name__}")
            parts = [("h", state)]
        arrays = []
        for part, a in parts:
            a = as_float_array(f"{name} ({part})" if n_states == 2 else name, a, self.dtype, finite=finite)
            check_shape(f"{name} ({part})" if n_states == 2 else name, a, shape,
                        "num_layers * num_directions, batch, hidden_size")
            arrays.append(a)
        return arrays

    def _pack_state(self, arrays: list[np.ndarray]):
        return tuple(arrays) if self.cell.N_STATES == 2 else arrays[0]

    # -- forward / backward ------------------------------------------------------------------------
    def _side_by_side(self, backend, T: int, B: int) -> bool:
        """Run this layer's two directions at once (the backend's `pair`, e.g. one core each)?"""
        return self.num_directions == 2 and backend.pairs(T, B, self.cell.GATES, self.hidden_size)

    def _directions(self, backend, run, T: int, B: int) -> list:
        """[run(d) for each direction d]; the two of a bidirectional layer side by side where that pays."""
        if self._side_by_side(backend, T, B):
            return backend.pair(lambda: run(0), lambda: run(1))
        return [run(d) for d in range(self.num_directions)]

    def forward(self, x, state=None, lengths=None):
        """out, state = layer.forward(x, state=None, lengths=None); see the module docstring."""
        layout = "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
        x = as_float_array("x", x, self.dtype, ndim=3, shape_hint=layout)
        if self.batch_first:
            x = x.transpose(1, 0, 2)                                 # (T, B, D)
        T, B, D = x.shape
        if T == 0 or B == 0:
            raise ValueError(f"x must have at least one time step and one sequence, got shape {x.shape}")
        if D != self.input_size:
            raise ValueError(f"x has {D} features per step but the layer's input_size is {self.input_size}")
        mask = rev = None
        if lengths is not None:
            lengths = check_lengths(lengths, B, T)
            mask = (np.arange(T)[:, None] < lengths[None, :]).astype(self.dtype)[:, :, None]  # (T, B, 1)
            rev = _reverse_index(lengths, T)
        init = self._state_arrays(state, B, "state")
        # The previous forward's cache goes before this one allocates: held until the end, it put two
        # caches in memory at once in every training loop (LSTM: 2.06x the kept activations). Its
        # internal buffers (gates, c_t, hh_n) are this layer's workspaces', which this forward writes
        # over; its states go unless the caller holds the outputs.
        self._cache = None
        name = self.backend
        backend = backends.get(name)
        nd, H = self.num_directions, self.hidden_size
        # both directions write their states into one buffer whose rows 1..T are the layer's output
        # (`_direction_states`); with lengths the reverse output is a per-sequence gather: concatenated
        shared = nd == 2 and rev is None
        final = [np.empty_like(a) for a in init]
        caches, drop_masks = [], []
        wdrop = self._sample_weight_drop()
        inp = x
        for l in range(self.num_layers):
            # a new buffer each call: the caller may keep the outputs of several forwards
            buf = np.empty((T + 2, B, 2 * H), self.dtype) if shared else None
            outs = []

            def run(d, l=l, inp=inp, buf=buf):
                xin = inp if d == 0 else self._reverse(inp, rev)
                st0 = tuple(a[l * nd + d] for a in init)
                hs = None if buf is None else _direction_states(buf, d)
                return backend.forward(self.cell_name, self._cell_params(l, d, wdrop), xin, st0, mask, hs=hs,
                                       workspace=self._workspace(l, d), **self.cell_kwargs)

            for d, (out, stT, cache) in enumerate(self._directions(backend, run, T, B)):
                for a, s in zip(final, stT):
                    a[l * nd + d] = s
                outs.append(out if d == 0 else self._reverse(out, rev))
                caches.append(cache)
            if shared:
                inp = buf[1:T + 1]                                   # (T, B, 2H), no copy
            else:
                inp = outs[0] if nd == 1 else np.concatenate(outs, axis=2)  # (T, B, nd*H)
            if self.training and self.dropout > 0 and l < self.num_layers - 1:
                keep = self._dropout_rng.random(inp.shape) >= self.dropout
                dm = keep.astype(self.dtype) / (1.0 - self.dropout)
                inp = inp * dm
                drop_masks.append(dm)
            else:
                drop_masks.append(None)
        self._cache = LayerCache(name, caches, drop_masks, rev, (T, B), wdrop)
        out = inp.transpose(1, 0, 2) if self.batch_first else inp
        return out, self._pack_state(final)

    @staticmethod
    def _reverse(a: np.ndarray, rev: np.ndarray | None) -> np.ndarray:
        if rev is None:
            return a[::-1]
        return np.take_along_axis(a, rev[:, :, None], axis=0)

    def backward(self, dout, dstate=None, *, input_grad=True):
        """dx, dstate0 = layer.backward(dout, dstate=None): exact BPTT for the last `forward`.

        input_grad=False: the input is data, so dx is not computed and None is returned in its place
        (torch skips it for an input that does not require grad). That saves the bottom layer's
        dx = dz W_ih product and its (T, B, D) array; the gradients of the parameters are the same.
        """
        if self._cache is None:
            raise ValueError("backward called before forward: run layer.forward(x) first, then "
                             "backward with the gradient of its output")
        name, caches, drop_masks, rev, (T, B), wdrop = self._cache
        backend = backends.get(name)                                 # the one that made the caches
        nd, H, L = self.num_directions, self.hidden_size, self.num_layers
        out_shape = (B, T, nd * H) if self.batch_first else (T, B, nd * H)
        dout = as_float_array("dout", dout, self.dtype, finite=False)
        check_shape("dout", dout, out_shape, "the shape of forward's output")
        if self.batch_first:
            dout = dout.transpose(1, 0, 2)
        # no dstate: the cells start from zeros of their own (no (L*nd, B, H) zeros here as well)
        dfinal = None if dstate is None else self._state_arrays(dstate, B, "dstate", finite=False)
        dinit = [np.empty((L * nd, B, H), self.dtype) for _ in range(self.cell.N_STATES)]
        self.hidden_grads = {}
        dinp = dout
        for l in reversed(range(L)):
            if drop_masks[l] is not None:
                if dinp is dout:
                    dinp = dinp * drop_masks[l]
                else:
                    dinp *= drop_masks[l]                            # our own dx: in place

            need_dx = input_grad or l > 0

            def run(d, into=None, l=l, dinp=dinp, need_dx=need_dx):
                dout_d = dinp[:, :, d * H:(d + 1) * H]
                if d == 1:
                    dout_d = self._reverse(dout_d, rev)
                dh_seq = np.empty((T, B, H), self.dtype) if self.record_hidden_grads else None
                dst = None if dfinal is None else tuple(a[l * nd + d] for a in dfinal)
                # the gradients are the workspace's arrays, written over by each backward: new ones
                # beside the last were 0.12x of the states the RNN keeps at H=512, in every step of a loop
                return (*backend.backward(self.cell_name, self._cell_params(l, d, wdrop), caches[l * nd + d],
                                          dout_d, dst, dh_seq=dh_seq, dx_add=into, need_dx=need_dx,
                                          workspace=self._workspace(l, d)),
                        dh_seq, into)

            def reverse_into(dx, need_dx=need_dx):
                """Where the reverse direction adds its dx: the time-reversed view of `dx`, or None
                (per-sequence reversal with lengths is a gather, summed below; no dx wanted)."""
                return dx[::-1] if rev is None and need_dx else None

            if self._side_by_side(backend, T, B):               # both add into one zeroed dx, in turns
                dx_both = np.zeros((T, B, self.input_size if l == 0 else nd * H),
                                   self.dtype) if need_dx else None
                results = backend.pair(lambda: run(0, dx_both), lambda: run(1, reverse_into(dx_both)))
            else:
                results = [run(0)]
                if nd == 2:      # the reverse direction adds its dx straight into the forward one's
                    results.append(run(1, reverse_into(results[0][0])))
            dx_total = None
            for d, (dx, dst0, grads, dh_seq, into) in enumerate(results):
                for a, s in zip(dinit, dst0):
                    a[l * nd + d] = s
                suffix = self._suffix(l, d)
                for name, g in grads.items():
                    self._grads[name + suffix] = g
                if wdrop is not None:                                # dW_hh = M * dW~, in place
                    self._grads["weight_hh" + suffix] *= wdrop[l * nd + d][0]
                if d == 1:
                    if into is None and dx is not None:
                        dx = self._reverse(dx, rev)
                    if dh_seq is not None:
                        dh_seq = self._reverse(dh_seq, rev)
                if dh_seq is not None:
                    self.hidden_grads[(l, d)] = dh_seq
                if dx_total is None:
                    dx_total = dx                                    # the cell's own new array
                elif into is None:
                    dx_total += dx                                   # in place: no third (T, B, D)
            dinp = dx_total
        dx = dinp.transpose(1, 0, 2) if self.batch_first and dinp is not None else dinp
        return dx, self._pack_state(dinit)

    def step(self, x_t, state=None):
        """y_t, state = layer.step(x_t, state): one time step (B, D) -> (B, H), as `forward` would do.

        For streaming and generation; unidirectional layers only (a reverse direction needs the future).
        Dropout between layers is applied in training mode, as in `forward`; weight-drop is not (the
        full W_hh, as in eval mode: a per-step mask would be another model). The returned state is
        new arrays each call (earlier states stay valid, e.g. for beam search).
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional layer: the reverse direction of a "
                             "bidirectional layer depends on future inputs; use forward() instead")
        if not (type(x_t) is np.ndarray and x_t.dtype == self.dtype and x_t.ndim == 2
                and x_t.flags.c_contiguous):                 # (the common case, checked cheaply)
            x_t = np.ascontiguousarray(as_float_array("x_t", x_t, self.dtype, ndim=2, finite=False,
                                                      shape_hint="(batch, input_size)"))
        B, D = x_t.shape
        if D != self.input_size:
            raise ValueError(f"x_t has {D} features but the layer's input_size is {self.input_size}")
        own = getattr(self, "_step_state", None)  # (state returned by the last step, its arrays)
        if state is not None and own is not None and state is own[0] and own[1][0].shape[1] == B:
            arrays = own[1]                   # this layer's own last output: already checked (speed)
        else:
            arrays = self._state_arrays(state, B, "state")
        backend = backends.get(self.backend)
        new = [np.empty_like(a) for a in arrays]
        inp = x_t
        for l in range(self.num_layers):
            if len(arrays) == 1:
                st, out = (arrays[0][l],), (new[0][l],)
            else:
                st, out = (arrays[0][l], arrays[1][l]), (new[0][l], new[1][l])
            if not self._stepper(backend, l, B)(inp, st, out):  # writes into the new state arrays
                check_finite("x_t", x_t)      # the step refused NaN/Inf in its input: say which
                raise ValueError(f"layer {l}'s input holds NaN/Inf: the parameters of the layers below "
                                 "are not finite")
            inp = out[0]
            if self.training and self.dropout > 0 and l < self.num_layers - 1:
                keep = self._dropout_rng.random(inp.shape) >= self.dropout
                inp = inp * (keep.astype(self.dtype) / (1.0 - self.dropout))
        packed = self._pack_state(new)
        self._step_state = (packed, new)
        return inp, packed

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dtype={self.dtype.name}, backend={self.backend!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class RNN(_Recurrent):
    """Elman RNN: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), f = tanh or relu."""

    cell_name = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=np.float32,
                 seed: int | None = None, init: str = "uniform", backend: str | None = None,
                 weight_drop: float = 0.0):
        from ..cells.activations import NONLINEARITIES
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, init, None, backend, weight_drop=weight_drop,
                         nonlinearity=nonlinearity)


class LSTM(_Recurrent):
    """LSTM with torch's gate order [i, f, g, o]; state is the pair (h, c).

    `forget_bias=1.0` sets the forget-gate bias (in `bias_ih`; `bias_hh`'s slice is zeroed) so the
    cell starts by remembering, as Jozefowicz et al. (2015) recommend.
    """

    cell_name = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, seed: int | None = None, init: str = "uniform",
                 forget_bias: float | None = None, backend: str | None = None, weight_drop: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, init, forget_bias, backend, weight_drop=weight_drop)


class GRU(_Recurrent):
    """GRU with torch's gate order [r, z, n] and b_hn inside the reset product."""

    cell_name = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, seed: int | None = None, init: str = "uniform",
                 backend: str | None = None, weight_drop: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, init, None, backend, weight_drop=weight_drop)


# cell name -> layer class: the registry tasks and models use to build a recurrent layer from a config
# (the names are the layers' own `cell_name`, the keys of `rnnkit.cells.CELLS`).
RECURRENT_LAYERS = {cls.cell_name: cls for cls in (LSTM, GRU, RNN)}


def make_rnn(cell: str, input_size: int, hidden_size: int, **kwargs) -> _Recurrent:
    """`make_rnn("lstm"|"gru"|"rnn", D, H, num_layers=..., bidirectional=..., dtype=..., seed=...)`."""
    if cell not in RECURRENT_LAYERS:
        raise ValueError(f"cell must be one of {', '.join(RECURRENT_LAYERS)}, got {cell!r}")
    return RECURRENT_LAYERS[cell](input_size, hidden_size, **kwargs)
