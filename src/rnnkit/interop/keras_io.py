"""rnnkit <-> Keras 3: `SimpleRNN`, `LSTM`, `GRU` (reset_after=True), `Bidirectional` (concat),
`Embedding`, `Dense` and `Sequential` chains of them, and `.keras` / `.weights.h5` files read by Keras.

Keras keeps input-major kernels, kernel (D, G*H) and recurrent_kernel (H, G*H), so rnnkit's
weight_ih is kernel.T with the gate blocks reordered (LSTM i, f, c, o is torch's own order; GRU z, r, h
becomes r, z, n). Keras LSTM and SimpleRNN have one bias, which becomes bias_ih with bias_hh = 0 (and
rnnkit's two biases are summed on the way out); GRU with reset_after=True keeps torch's two biases
(bias[0] input, bias[1] recurrent, applied inside the reset product), and reset_after=False, the
reset gate before the recurrent product, has no rnnkit counterpart. Keras is batch-major: its
(B, T, F) is rnnkit's (T, B, F) transposed.

Keras needs a backend: when none is chosen (KERAS_BACKEND unset), `_keras()` picks "torch", the one
this project installs, before Keras is first imported; a backend the user chose is left alone.
Files load with Keras's own reader and `safe_mode=True`, which refuses lambda layers' pickled code.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..layers import Embedding, Linear, Module
from ._common import (KERAS_GATES, TORCH_GATES, assemble, cell_of, chain_of, make_layer, reorder, require,
                      sequence_net)

KERAS_CLASSES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
CELLS = {v: k for k, v in KERAS_CLASSES.items()}
_PASS_THROUGH = ("Dropout", "InputLayer")          # no weights; nothing in inference


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")    # only if the user has not chosen one
    return require("keras")


# -- Keras -> rnnkit -----------------------------------------------------------------------------------
def _check_recurrent(layer, cell: str, where: str) -> None:
    cfg = layer.get_config()
    wanted = {"activation": ("tanh", "relu") if cell == "rnn" else ("tanh",)}
    if cell != "rnn":
        wanted["recurrent_activation"] = ("sigmoid",)
    for key, ok in wanted.items():
        if cfg.get(key) not in ok:
            raise UserError(f"{where}: {key}={cfg.get(key)!r} has no rnnkit counterpart (rnnkit: {', '.join(ok)})")
    if cell == "gru" and not cfg.get("reset_after", True):
        raise UserError(f"{where}: GRU with reset_after=False (the reset gate before the recurrent product) "
                        "has no rnnkit counterpart; rnnkit's GRU is reset_after=True")
    for key in ("go_backwards", "stateful", "unroll"):
        if cfg.get(key):
            raise UserError(f"{where}: {key}=True has no rnnkit counterpart")
    for key in ("dropout", "recurrent_dropout"):
        if cfg.get(key):
            raise UserError(f"{where}: {key}={cfg[key]} has no rnnkit counterpart (rnnkit drops out between "
                            "layers only)")


def _direction_params(layer, cell: str) -> tuple[dict, bool]:
    """One Keras recurrent layer's weights as rnnkit's cell parameters (weight_ih, ...), and use_bias."""
    w = layer.get_weights()
    src, dst = KERAS_GATES[cell], TORCH_GATES[cell]
    p = {"weight_ih": reorder(w[0].T, src, dst), "weight_hh": reorder(w[1].T, src, dst)}
    use_bias = len(w) > 2
    if use_bias:
        if cell == "gru":
            p["bias_ih"], p["bias_hh"] = reorder(w[2][0], src, dst), reorder(w[2][1], src, dst)
        else:
            p["bias_ih"], p["bias_hh"] = reorder(w[2], src, dst), np.zeros_like(w[2])
    return p, use_bias


def _recurrent_parts(layer, where: str) -> tuple[str, list[dict], bool, dict]:
    """(cell, [params of each direction], return_sequences, options) of a Keras recurrent layer or
    `Bidirectional` of one."""
    name = type(layer).__name__
    if name == "Bidirectional":
        if layer.merge_mode != "concat":
            raise UserError(f"{where}: Bidirectional with merge_mode={layer.merge_mode!r} has no rnnkit "
                            "counterpart (rnnkit concatenates the directions)")
        fwd, bwd = layer.forward_layer, layer.backward_layer
        cell = CELLS.get(type(fwd).__name__)
        if cell is None or type(bwd) is not type(fwd):
            raise UserError(f"{where}: Bidirectional must wrap one SimpleRNN, LSTM or GRU")
        _check_recurrent(fwd, cell, where)
        bcfg = dict(bwd.get_config(), go_backwards=False)   # the backward copy reads reversed by design
        if any(bcfg.get(k) != v for k, v in fwd.get_config().items() if k not in ("name", "go_backwards")):
            raise UserError(f"{where}: the two directions of Bidirectional differ in their settings")
        (pf, bias), (pb, _) = _direction_params(fwd, cell), _direction_params(bwd, cell)
        return cell, [pf, pb], fwd.return_sequences, {"bias": bias, "units": fwd.units,
                                                      "activation": fwd.get_config()["activation"]}
    cell = CELLS[name]
    _check_recurrent(layer, cell, where)
    p, bias = _direction_params(layer, cell)
    return cell, [p], layer.return_sequences, {"bias": bias, "units": layer.units,
                                               "activation": layer.get_config()["activation"]}


def _stack(parts: list, input_size: int, where: str):
    """One rnnkit layer from consecutive Keras recurrent layers of one kind and size."""
    cell, dirs, _, opts = parts[0]
    nd = len(dirs)
    params = {}
    for l, (c, ds, _, o) in enumerate(parts):
        if (c, len(ds), o) != (cell, nd, opts):
            raise UserError(f"{where}: stacked recurrent layers differ in cell, size, direction or options; "
                            "rnnkit stacks only identical layers")
        for d, p in enumerate(ds):
            params.update({f"{k}_l{l}" + ("_reverse" if d else ""): v for k, v in p.items()})
    cfg = {"input_size": input_size, "hidden_size": opts["units"], "num_layers": len(parts),
           "bias": opts["bias"], "bidirectional": nd == 2}
    if cell == "rnn":
        cfg["nonlinearity"] = opts["activation"]
    return make_layer(cell, params, **cfg)


def _embedding(layer, where: str) -> Embedding:
    if layer.mask_zero:
        raise UserError(f"{where}: Embedding with mask_zero=True has no rnnkit counterpart; pass lengths instead")
    (table,) = layer.get_weights()
    emb = Embedding(*table.shape)
    emb.load_state_dict({"weight": table})
    return emb


def _dense(layer, where: str) -> Linear:
    act = layer.get_config().get("activation")
    if act not in ("linear", None):
        raise UserError(f"{where}: Dense with activation={act!r} has no rnnkit counterpart (rnnkit heads give "
                        "logits; apply the activation to its outputs)")
    w = layer.get_weights()
    lin = Linear(w[0].shape[0], w[0].shape[1], bias=len(w) > 1)
    lin.load_state_dict({"weight": w[0].T, **({"bias": w[1]} if len(w) > 1 else {})})
    return lin


def _is_recurrent(layer) -> bool:
    return type(layer).__name__ in CELLS or type(layer).__name__ == "Bidirectional"


def _input_size(layer) -> int:
    """Features per step a built Keras recurrent layer reads: its kernel's rows."""
    inner = layer.forward_layer if type(layer).__name__ == "Bidirectional" else layer
    return int(inner.get_weights()[0].shape[0])


def from_keras(obj, like: Module | None = None):
    """The rnnkit equivalent of a Keras layer, `Sequential` model or model file.

    obj: a Keras `SimpleRNN/LSTM/GRU/Bidirectional/Embedding/Dense` (built), a `Sequential` of them
    (embedding -> recurrent... -> dense: an `RNNLanguageModel`; recurrent... -> dense: per-step
    logits; a last recurrent layer with return_sequences=False -> dense: a `SequenceNet` with
    pooling="last"), a `.keras` file, or a `.weights.h5` file together with `like`, the rnnkit module
    whose Keras twin (`to_keras(like)`) has those weights.
    """
    if isinstance(obj, (str, Path)):
        return from_keras(_load_file(Path(obj), like))
    keras = _keras()
    if isinstance(obj, keras.Sequential):
        return _from_chain(obj)
    if isinstance(obj, keras.Model):        # a functional graph may branch: its layer list is no chain
        raise UserError(f"Keras model {obj.name!r} is a {type(obj).__name__}, not a Sequential; rnnkit reads "
                        "Sequential chains (rebuild it as keras.Sequential with the same layers)")
    where = f"Keras layer {obj.name!r}"
    name = type(obj).__name__
    if not obj.built:
        raise UserError(f"{where} is not built (it has no weights yet); call it on an input or build it first")
    if _is_recurrent(obj):
        return _stack([_recurrent_parts(obj, where)], _input_size(obj), where)
    if name == "Embedding":
        return _embedding(obj, where)
    if name == "Dense":
        return _dense(obj, where)
    raise UserError(f"{where}: Keras {name} has no rnnkit counterpart")


def _from_chain(model):
    where = f"Keras model {model.name!r}"
    modules, run, pool_last = [], [], False
    layers = [l for l in model.layers if type(l).__name__ not in _PASS_THROUGH]
    for i, layer in enumerate(layers):
        w = f"{where}, layer {layer.name!r}"
        if _is_recurrent(layer):
            part = _recurrent_parts(layer, w)
            if pool_last:
                raise UserError(f"{w}: reads a sequence that a return_sequences=False layer already pooled")
            run.append((part, w, layer))
            if not part[2]:
                pool_last = True
            continue
        if run:
            modules.append(_stack([p for p, _, _ in run], _input_size(run[0][2]), run[0][1]))
            run = []
        if type(layer).__name__ == "Embedding":
            modules.append(_embedding(layer, w))
        elif type(layer).__name__ == "Dense":
            modules.append(_dense(layer, w))
        else:
            raise UserError(f"{w}: Keras {type(layer).__name__} has no rnnkit counterpart")
    if run:
        modules.append(_stack([p for p, _, _ in run], _input_size(run[0][2]), run[0][1]))
    if pool_last:                                   # the final state of each direction: "last" pooling
        return sequence_net(modules, "last", where)
    return assemble(modules, where)


def _load_file(path: Path, like):
    keras = _keras()
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist or is not a file")
    if path.name.endswith(".weights.h5"):
        if like is None:
            raise UserError(f"{path}: a .weights.h5 file holds weights only; give the rnnkit model they belong "
                            "to (from_keras(path, like=model))")
        skeleton = to_keras(like)
        try:
            skeleton.load_weights(str(path))
        except Exception as e:              # Keras raises ValueError/KeyError/OSError for a mismatch
            raise UserError(f"{path}: its weights do not fit {type(like).__name__}: {_first_line(e)}") from None
        return skeleton
    if path.suffix != ".keras":
        raise UserError(f"{path}: not a Keras 3 file; give a .keras model or a .weights.h5 file")
    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as e:                  # a damaged archive, an unsafe lambda, an unknown class
        raise UserError(f"{path}: Keras could not load it: {_first_line(e)}") from None


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


# -- rnnkit -> Keras -----------------------------------------------------------------------------------
def _keras_weights(params: dict, cell: str, bias: bool) -> list:
    src, dst = TORCH_GATES[cell], KERAS_GATES[cell]
    w = [reorder(params["weight_ih"], src, dst).T, reorder(params["weight_hh"], src, dst).T]
    if bias:
        bi, bh = reorder(params["bias_ih"], src, dst), reorder(params["bias_hh"], src, dst)
        w.append(np.stack([bi, bh]) if cell == "gru" else bi + bh)
    return [np.ascontiguousarray(a, np.float32) for a in w]


def _keras_recurrent(keras, layer, l: int, return_sequences: bool = True):
    cell = cell_of(layer)
    kw = {"units": layer.hidden_size, "use_bias": layer.bias, "return_sequences": return_sequences}
    if cell == "rnn":
        kw["activation"] = layer.nonlinearity
    if cell == "gru":
        kw["reset_after"] = True
    make = lambda: getattr(keras.layers, KERAS_CLASSES[cell])(**kw)        # noqa: E731
    if layer.bidirectional:
        return keras.layers.Bidirectional(make(), merge_mode="concat"), [
            _keras_weights(layer._cell_params(l, d), cell, layer.bias) for d in (0, 1)]
    return make(), [_keras_weights(layer._cell_params(l, 0), cell, layer.bias)]


def to_keras(module: Module):
    """A built Keras `Sequential` equivalent to an rnnkit module, float32, batch-major: a recurrent
    layer ((B, T, D) -> (B, T, nd*H)), an `RNNLanguageModel` (ids (B, T) -> logits (B, T, V)), a
    `CTCModel` (features -> logits per step), a `SequenceNet` with pooling="last" (its last recurrent
    layer gives only its final state: return_sequences=False), an `Embedding` or a `Linear`."""
    keras = _keras()
    try:
        chain, pooling = chain_of(module)
    except TypeError as e:
        raise TypeError(f"to_keras: {e}") from None
    if pooling not in (None, "last"):
        raise TypeError(f"to_keras: {pooling} pooling has no Keras layer counterpart; only 'last' "
                        "(a recurrent layer with return_sequences=False) has")
    first = chain[0]
    if isinstance(first, Embedding):
        inp = keras.Input((None,), dtype="int32")
    elif isinstance(first, Linear):
        inp = keras.Input((first.in_features,))
    else:
        inp = keras.Input((None, first.input_size))
    pending = []                                     # (keras layer, weights) set once the model is built
    for m in chain:
        if isinstance(m, Embedding):
            pending.append(_keras_embedding(keras, m))
        elif isinstance(m, Linear):
            pending.append(_keras_dense(keras, m))
        else:
            for l in range(m.num_layers):
                pending.append(_keras_recurrent(keras, m, l, return_sequences=not (pooling and l == m.num_layers - 1)))
    model = keras.Sequential([inp] + [k for k, _ in pending])
    for k, weights in pending:
        k.set_weights([a for w in weights for a in w] if isinstance(weights[0], list) else weights)
    return model


def _keras_embedding(keras, emb: Embedding):
    return keras.layers.Embedding(emb.num_embeddings, emb.embedding_dim), [emb.params["weight"].astype(np.float32)]


def _keras_dense(keras, lin: Linear):
    w = [lin.params["weight"].T.astype(np.float32)]
    if "bias" in lin.params:
        w.append(lin.params["bias"].astype(np.float32))
    return keras.layers.Dense(lin.out_features, use_bias="bias" in lin.params), w
