"""`import_onnx(path)`: an ONNX graph of recurrent nodes (and a simple model's Gather/MatMul/Add) as
rnnkit layers.

Read: `LSTM`/`GRU`/`RNN` nodes with constant W/R/B (consecutive ones, each reading the previous one's
Y, become one multi-layer layer), `Gather` from a constant table (an `Embedding`), `MatMul` by a
constant matrix with an optional `Add` of a constant vector, or `Gemm` (a `Linear`), and the shape
plumbing between them. The chain must be one rnnkit structure (`_common.assemble`): a layer,
recurrent -> linear, or embedding -> recurrent -> linear; a linear layer reading the top recurrent
node's final state Y_h instead of Y makes a `SequenceNet` with pooling="last" (a classifier). What rnnkit cannot represent is refused by
the node's name and the attribute, never approximated: peepholes (`P`), `linear_before_reset=0`,
`clip`, `input_forget`, activations other than the defaults (RNN: Tanh or Relu), `activation_alpha/beta`,
`direction="reverse"`, `layout=1`, constant initial states or sequence lengths.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..layers import Embedding, Linear
from ._common import ONNX_GATES, TORCH_GATES, assemble, make_layer, reorder, require, sequence_net
from .onnx_graph import ONNX_OPS

CELLS = {op: cell for cell, op in ONNX_OPS.items()}                   # "LSTM" -> "lstm"
DEFAULT_ACTIVATIONS = {"lstm": ("Sigmoid", "Tanh", "Tanh"), "gru": ("Sigmoid", "Tanh"), "rnn": ("Tanh",)}
PLUMBING = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Concat", "Slice", "Shape", "Cast"}


def _load(path):
    onnx = require("onnx")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist or is not a file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:                            # protobuf's DecodeError, onnx's ValidationError
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path}: not a valid ONNX model ({first})") from None
    if not model.graph.node:
        raise UserError(f"{path}: not a valid ONNX model (its graph has no nodes)")
    return model


def _where(node) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


class _Reader:
    """Walks one graph in its (topological) order and collects rnnkit modules in data-flow order."""

    def __init__(self, model):
        self.onnx = require("onnx")
        to_array = self.onnx.numpy_helper.to_array
        self.consts = {i.name: to_array(i) for i in model.graph.initializer}
        self.producer = {}
        self.modules: list = []       # [module, ...] in graph order; recurrent stacks as lists of nodes
        self.stack_of = {}            # Y output name -> index into self.modules of its recurrent stack
        self.pooled_last = False      # a linear layer reads the last recurrent node's Y_h, not its Y

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str, node, what: str) -> np.ndarray:
        if name not in self.consts:
            raise UserError(f"{_where(node)}: its {what} ({name!r}) is computed in the graph; rnnkit reads "
                            "only constant weights (initializers or Constant nodes)")
        return self.consts[name]

    def source(self, name: str):
        """(the node that produced `name`, looking through plumbing, and which of its outputs);
        (None, name) for a graph input."""
        node = self.producer.get(name)
        while node is not None and node.op_type in PLUMBING:
            name = node.input[0]
            node = self.producer.get(name)
        return node, name

    def read(self, model):
        for node in model.graph.node:
            for out in node.output:
                self.producer[out] = node
            handler = getattr(self, f"_{node.op_type.lower()}", None)
            if node.op_type in CELLS:
                self._recurrent(node)
            elif node.op_type == "Constant":
                value = self.attrs(node).get("value")
                if value is None:
                    raise UserError(f"{_where(node)}: only tensor-valued Constant nodes are read")
                self.consts[node.output[0]] = self.onnx.numpy_helper.to_array(value)
            elif handler is not None:
                handler(node)
            elif node.op_type not in PLUMBING:
                raise UserError(f"{_where(node)}: ONNX operator {node.op_type} has no rnnkit counterpart")
        return self.modules

    # -- recurrent nodes -----------------------------------------------------------------------------
    def _recurrent(self, node):
        cell, a = CELLS[node.op_type], self.attrs(node)
        where = _where(node)
        refuse = lambda why: UserError(f"{where}: {why} has no rnnkit counterpart")  # noqa: E731
        if a.get("layout", 0) != 0:
            raise refuse("layout=1 (batch-major; export time-major, ONNX Runtime on CPU refuses it too)")
        if a.get("clip") is not None:
            raise refuse(f"clip={a['clip']}")
        if a.get("input_forget", 0):
            raise refuse("input_forget=1 (coupled input and forget gates)")
        if cell == "gru" and not a.get("linear_before_reset", 0):
            raise refuse("linear_before_reset=0 (the reset gate applied before the recurrent product)")
        if a.get("activation_alpha") or a.get("activation_beta"):
            raise refuse("activation_alpha/activation_beta")
        direction = a.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction not in ("forward", "bidirectional"):
            raise refuse(f"direction={direction!r} (a reverse-only layer)")
        nd = 2 if direction == "bidirectional" else 1
        acts = [s.decode() if isinstance(s, bytes) else s for s in a.get("activations", [])]
        nonlinearity = "tanh"
        if acts:
            per = len(acts) // nd
            first = tuple(acts[:per])
            if len(acts) != per * nd or tuple(acts[per:]) not in ((), first):
                raise refuse(f"activations={acts} (different per direction)")
            if cell == "rnn" and first == ("Relu",):
                nonlinearity = "relu"
            elif first != DEFAULT_ACTIVATIONS[cell]:
                raise refuse(f"activations={acts}")
        if cell == "lstm" and len(node.input) > 7 and node.input[7]:
            raise refuse("the peephole input P")
        W = self.const(node.input[1], node, "W")
        R = self.const(node.input[2], node, "R")
        B = self.const(node.input[3], node, "B") if len(node.input) > 3 and node.input[3] else None
        G = len(TORCH_GATES[cell])
        H = int(a.get("hidden_size", R.shape[-1]))
        D = W.shape[2] if W.ndim == 3 else -1
        if W.shape != (nd, G * H, D) or R.shape != (nd, G * H, H) or (B is not None and B.shape != (nd, 2 * G * H)):
            raise UserError(f"{where}: weight shapes W {W.shape}, R {R.shape}, B {None if B is None else B.shape} "
                            f"do not fit hidden_size={H}, {nd} direction(s)")
        entry = {"node": node, "cell": cell, "nd": nd, "H": H, "D": D, "W": W, "R": R, "B": B,
                 "nonlinearity": nonlinearity}
        for i, what in ((4, "sequence_lens"), (5, "initial_h"), (6, "initial_c")):
            if len(node.input) > i and node.input[i] in self.consts:
                raise refuse(f"a constant {what} (rnnkit takes lengths and states as inputs)")
        _, out = self.source(node.input[0])
        idx = self.stack_of.get(out)
        if idx is not None:
            top = self.modules[idx][-1]
            same = (top["cell"], top["nd"], top["H"], top["nonlinearity"]) == (cell, nd, H, nonlinearity)
            if not same or D != nd * H:
                raise UserError(f"{where}: reads {_where(top['node'])} but differs from it in cell, size, "
                                "direction or activation; rnnkit stacks only identical layers")
            self.modules[idx].append(entry)
        else:
            self.modules.append([entry])
            idx = len(self.modules) - 1
        self.stack_of[node.output[0]] = idx

    # -- embedding and linear --------------------------------------------------------------------------
    def _gather(self, node):
        if node.input[0] not in self.consts:                          # shape plumbing, not a lookup
            return
        table = self.consts[node.input[0]]
        if table.ndim != 2 or self.attrs(node).get("axis", 0) != 0:
            raise UserError(f"{_where(node)}: a lookup must read rows of a 2-D table (axis 0)")
        emb = Embedding(*table.shape, dtype=_float(table))
        emb.load_state_dict({"weight": table})
        self.modules.append(emb)

    def _reads(self, node) -> None:
        """Note whether a linear node reads a recurrent layer's outputs Y (a per-step output layer) or
        the top layer's final states Y_h (`SequenceNet` with pooling="last")."""
        prev, out = self.source(node.input[0])
        if prev is None or prev.op_type not in CELLS or out == prev.output[0]:
            return
        stack = self.modules[self.stack_of[prev.output[0]]]
        if out != prev.output[1] or stack[-1]["node"] is not prev:
            raise UserError(f"{_where(node)}: reads {_where(prev)}'s {out!r}; rnnkit reads a recurrent layer's "
                            "outputs Y or its top layer's final hidden state Y_h")
        self.pooled_last = True

    def _matmul(self, node):
        self._reads(node)
        w = self.const(node.input[1], node, "weight matrix")
        if w.ndim != 2:
            raise UserError(f"{_where(node)}: the weight must be a 2-D matrix, got shape {w.shape}")
        self._linear(w.T, None)

    def _add(self, node):
        last = self.modules[-1] if self.modules else None
        bias = next((self.consts[n] for n in node.input if n in self.consts), None)
        prev = [self.producer.get(n) for n in node.input if n not in self.consts]
        if not isinstance(last, Linear) or "bias" in last.params or bias is None or bias.ndim != 1 \
                or len(prev) != 1 or prev[0] is None or prev[0].op_type != "MatMul":
            raise UserError(f"{_where(node)}: only a constant bias added to a MatMul's output is read")
        self._set_bias(last, bias, node)

    def _gemm(self, node):
        a = self.attrs(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            raise UserError(f"{_where(node)}: Gemm with alpha, beta or transA set has no rnnkit counterpart")
        self._reads(node)
        w = self.const(node.input[1], node, "weight matrix")
        lin = self._linear(w if a.get("transB", 0) else w.T, None)
        if len(node.input) > 2 and node.input[2]:
            self._set_bias(lin, self.const(node.input[2], node, "bias"), node)

    def _linear(self, weight: np.ndarray, bias) -> Linear:
        lin = Linear(weight.shape[1], weight.shape[0], bias=False, dtype=_float(weight))
        lin.load_state_dict({"weight": weight})
        self.modules.append(lin)
        return lin

    @staticmethod
    def _set_bias(lin: Linear, bias: np.ndarray, node) -> None:
        if bias.shape != (lin.out_features,):
            raise UserError(f"{_where(node)}: bias shape {bias.shape} does not fit {lin.out_features} outputs")
        lin._params["bias"] = bias.astype(lin.dtype).copy()
        lin._grads["bias"] = np.zeros_like(lin._params["bias"])


def _float(a: np.ndarray):
    return np.float64 if a.dtype == np.float64 else np.float32


def _layer_from_stack(stack: list):
    """One rnnkit layer from consecutive ONNX recurrent nodes (one per layer)."""
    top = stack[0]
    cell, nd = top["cell"], top["nd"]
    bias = any(e["B"] is not None for e in stack)
    GH = len(TORCH_GATES[cell]) * top["H"]
    src, dst = ONNX_GATES[cell], TORCH_GATES[cell]
    params = {}
    for l, e in enumerate(stack):
        for d in range(nd):
            s = f"_l{l}" + ("_reverse" if d else "")
            params["weight_ih" + s] = reorder(e["W"][d], src, dst)
            params["weight_hh" + s] = reorder(e["R"][d], src, dst)
            if bias:
                b = e["B"][d] if e["B"] is not None else np.zeros(2 * GH, e["W"].dtype)
                params["bias_ih" + s], params["bias_hh" + s] = reorder(b[:GH], src, dst), reorder(b[GH:], src, dst)
    cfg = {"input_size": top["D"], "hidden_size": top["H"], "num_layers": len(stack), "bias": bias,
           "bidirectional": nd == 2}
    if cell == "rnn":
        cfg["nonlinearity"] = top["nonlinearity"]
    return make_layer(cell, params, _float(top["W"]), **cfg)


def import_onnx(path):
    """The rnnkit layer or model an ONNX file holds (see the module docstring); UserError otherwise."""
    model = _load(path)
    reader = _Reader(model)
    modules = [_layer_from_stack(m) if isinstance(m, list) else m for m in reader.read(model)]
    if reader.pooled_last:
        return sequence_net(modules, "last", str(path))
    return assemble(modules, str(path))
