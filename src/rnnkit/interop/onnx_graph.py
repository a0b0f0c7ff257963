"""Building ONNX graphs for rnnkit modules: a small node builder and the pieces every export shares.

Each rnnkit recurrent layer of L layers becomes L ONNX `LSTM`/`GRU`/`RNN` nodes (an ONNX recurrent
operator is one layer, both directions), time-major (`layout=0`: ONNX Runtime on CPU refuses
`layout=1`), with the gate blocks reordered (`_common.ONNX_GATES`) and torch's two biases side by side
in `B`. ONNX's `Y` is (T, nd, B, H); a Transpose and a Reshape make it rnnkit's (T, B, nd*H).
Padded steps: with `sequence_lens`, ONNX Runtime writes zeros into `Y` past each length and keeps
`Y_h` at the last real step, reading the reverse direction from each sequence's own end, the same as
rnnkit's `lengths` (checked by tests/test_interop_onnx.py).

Shapes: T time, B batch, D input, H hidden, nd directions, L layers, V vocabulary, S source steps.
"""
from __future__ import annotations

import numpy as np

from ._common import ONNX_GATES, TORCH_GATES, cell_of, reorder, require

OPSET = 17            # >= 14 as asked; ReduceMax/ReduceMean take `axes` as an attribute up to 17
IR_VERSION = 8        # what ONNX Runtime >= 1.16 reads; onnx's default may be newer than the runtime
ONNX_OPS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
FLOAT = np.float32


class Graph:
    """Nodes, initialisers, inputs and outputs of one ONNX graph; `name()` hands out unique names."""

    def __init__(self, name: str):
        self.onnx = require("onnx")
        self.title, self.nodes, self.inits, self.inputs, self.outputs = name, [], [], [], []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str = "c") -> str:
        """An initialiser holding `value` (float64 stored as float32); returns its name."""
        arr = np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(FLOAT)
        n = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def op(self, op_type: str, inputs: list, n_out: int = 1, hint: str | None = None, **attrs):
        """Add a node; returns its output name (or the list of names for n_out > 1)."""
        while inputs and inputs[-1] == "":
            inputs = inputs[:-1]                                      # trailing optional inputs
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def input(self, name: str, elem, dims: list) -> str:
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem, dims))
        return name

    def output(self, name: str, source: str, elem, dims: list) -> str:
        self.nodes.append(self.onnx.helper.make_node("Identity", [source], [name], name=self.name("out")))
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem, dims))
        return name

    def model(self, metadata: dict | None = None):
        """The checked ModelProto (`onnx.checker` with full shape inference)."""
        import json

        onnx = self.onnx
        graph = onnx.helper.make_graph(self.nodes, self.title, self.inputs, self.outputs, self.inits)
        m = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   ir_version=IR_VERSION, producer_name="rnnkit")
        for k, v in (metadata or {}).items():
            entry = m.metadata_props.add()
            entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
        onnx.checker.check_model(m, full_check=True)
        return m


def f32():
    return require("onnx").TensorProto.FLOAT


def i64():
    return require("onnx").TensorProto.INT64


def i32():
    return require("onnx").TensorProto.INT32


def onnx_weights(layer, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """W (nd, G*H, D_l), R (nd, G*H, H), B (nd, 2*G*H) or None of layer l, in ONNX's gate order."""
    cell = cell_of(layer)
    src, dst = TORCH_GATES[cell], ONNX_GATES[cell]
    Ws, Rs, Bs = [], [], []
    for d in range(layer.num_directions):
        p = layer._cell_params(l, d)
        Ws.append(reorder(p["weight_ih"], src, dst))
        Rs.append(reorder(p["weight_hh"], src, dst))
        if layer.bias:
            Bs.append(np.concatenate([reorder(p["bias_ih"], src, dst), reorder(p["bias_hh"], src, dst)]))
    stack = lambda a: np.stack(a).astype(FLOAT)                       # noqa: E731
    return stack(Ws), stack(Rs), (stack(Bs) if Bs else None)


def recurrent(g: Graph, layer, x: str, lengths: str = "", h0: str = "", c0: str = ""):
    """The nodes of an rnnkit recurrent layer on x (T, B, D). Returns (y (T, B, nd*H), h_n (L*nd, B, H),
    c_n or None, the last layer's Y_h (nd, B, H))."""
    cell, nd, H = cell_of(layer), layer.num_directions, layer.hidden_size
    direction = "bidirectional" if nd == 2 else "forward"
    attrs = {"hidden_size": H, "direction": direction}
    if cell == "gru":
        attrs["linear_before_reset"] = 1                              # torch's b_hn inside r * (...)
    if cell == "rnn" and layer.nonlinearity != "tanh":
        attrs["activations"] = [layer.nonlinearity.capitalize()] * nd
    hs, cs, inp, yh = [], [], x, None
    for l in range(layer.num_layers):
        W, R, B = onnx_weights(layer, l)
        names = [inp, g.const(W, f"W_l{l}"), g.const(R, f"R_l{l}"), g.const(B, f"B_l{l}") if B is not None else "",
                 lengths]
        for st in (h0, c0) if cell == "lstm" else (h0,):
            names.append(_layer_slice(g, st, l, nd) if st else "")
        n_out = 3 if cell == "lstm" else 2
        outs = g.op(ONNX_OPS[cell], names, n_out, hint=f"{cell}_l{l}", **attrs)
        y = g.op("Transpose", [outs[0]], perm=[0, 2, 1, 3])           # (T, B, nd, H)
        inp = g.op("Reshape", [y, g.const(np.array([0, 0, -1], np.int64), "shape")])  # (T, B, nd*H)
        yh = outs[1]
        hs.append(outs[1])
        if cell == "lstm":
            cs.append(outs[2])
    cat = lambda parts: parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0)  # noqa: E731
    return inp, cat(hs), (cat(cs) if cs else None), yh


def _layer_slice(g: Graph, state: str, l: int, nd: int) -> str:
    """Rows l*nd .. l*nd+nd of a (L*nd, B, H) state: layer l's (nd, B, H) initial state."""
    return g.op("Slice", [state, g.const(np.array([l * nd], np.int64), "start"),
                          g.const(np.array([(l + 1) * nd], np.int64), "end"),
                          g.const(np.array([0], np.int64), "axis")])


def linear(g: Graph, lin, x: str) -> str:
    """y = x @ weight.T + bias for x (..., D)."""
    y = g.op("MatMul", [x, g.const(lin.params["weight"].T, "weight_T")])
    return g.op("Add", [y, g.const(lin.params["bias"], "bias")]) if "bias" in lin.params else y


def embedding(g: Graph, emb, ids: str) -> str:
    return g.op("Gather", [g.const(emb.params["weight"], "embedding"), ids], axis=0)


def time_mask(g: Graph, like: str, lengths: str, axis_t: int = 0) -> str:
    """(T, B, 1) bool, True at t < lengths[b], T taken from dimension axis_t of `like`."""
    T = g.op("Gather", [g.op("Shape", [like]), g.const(np.array(axis_t, np.int64), "axis_t")], axis=0)
    steps = g.op("Range", [g.const(np.array(0, np.int64), "zero"), T, g.const(np.array(1, np.int64), "one")])
    lens = g.op("Cast", [lengths], to=i64())
    valid = g.op("Less", [g.op("Unsqueeze", [steps, g.const(np.array([1], np.int64), "ax")]),
                          g.op("Unsqueeze", [lens, g.const(np.array([0], np.int64), "ax")])])  # (T, B)
    return g.op("Unsqueeze", [valid, g.const(np.array([2], np.int64), "ax")])                  # (T, B, 1)
