"""What every format module shares: a recurrent layer's configuration, gate reorders, safe file writes.

rnnkit keeps torch's gate order (LSTM [i, f, g, o], GRU [r, z, n]) in blocks of H rows of the
(G*H, D) weights. ONNX stores LSTM as [i, o, f, c] and GRU as [z, r, h]; Keras stores LSTM as
[i, f, c, o] (torch's own) and GRU as [z, r, h]. `reorder` moves whole H-row blocks between two orders,
so an exported weight is the same numbers in another arrangement, never recomputed.
"""
from __future__ import annotations

import importlib
import os
import secrets
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..layers.recurrent import RECURRENT_LAYERS

# cell -> gate order, one letter a gate, in each format's own naming (torch "g"/"n" = ONNX "c"/"h")
TORCH_GATES = {"lstm": "ifgo", "gru": "rzn", "rnn": "h"}
ONNX_GATES = {"lstm": "iofg", "gru": "zrn", "rnn": "h"}     # ONNX iofc, zrh, in torch's letters
KERAS_GATES = {"lstm": "ifgo", "gru": "zrn", "rnn": "h"}    # Keras ifco, zrh, in torch's letters


def reorder(a: np.ndarray, src: str, dst: str) -> np.ndarray:
    """The (G*H, ...) array `a` with its H-row gate blocks moved from order `src` to order `dst`."""
    blocks = dict(zip(src, np.split(np.asarray(a), len(src), axis=0)))
    return np.concatenate([blocks[g] for g in dst], axis=0)


def cell_of(layer) -> str:
    """"lstm", "gru" or "rnn" for an rnnkit recurrent layer; TypeError for anything else."""
    for name, cls in RECURRENT_LAYERS.items():
        if isinstance(layer, cls):
            return name
    raise TypeError(f"expected an rnnkit LSTM, GRU or RNN layer, got {type(layer).__name__}")


def layer_config(layer) -> dict:
    """The constructor arguments that make an identical rnnkit recurrent layer (weights aside)."""
    cfg = {"input_size": layer.input_size, "hidden_size": layer.hidden_size, "num_layers": layer.num_layers,
           "bias": layer.bias, "batch_first": layer.batch_first, "dropout": layer.dropout,
           "bidirectional": layer.bidirectional}
    if cell_of(layer) == "rnn":
        cfg["nonlinearity"] = layer.nonlinearity
    return cfg


def make_layer(cell: str, params: dict, dtype=np.float32, **config):
    """An rnnkit layer of `cell` with `config` and its parameters set to `params` (torch names)."""
    layer = RECURRENT_LAYERS[cell](dtype=dtype, **config)
    layer.load_state_dict(params)
    return layer.eval()


def require(module: str, extra: str = "interop"):
    """Import an optional format library, or say which extra installs it (UserError, one line)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{module} is not installed; install it with: pip install 'rnnkit[{extra}]'") from None


def write_atomic(path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename, so a failed
    or interrupted write leaves either the old file or none, never half of a new one."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a folder; give a file name for the output")
    if not path.parent.is_dir():
        raise UserError(f"folder {str(path.parent)!r} does not exist; create it first")
    # os.open with 0o666 (not mkstemp's 0o600): the file gets the permissions the user's umask gives
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _swap(model, name: str, module):
    """Put `module` in place of `model`'s child `name` (same dotted parameter names)."""
    setattr(model, name, model.add_module(name, module))
    return model


def _time_major(rnn):
    """`rnn` itself, or a copy with batch_first=False: composite models feed their layer (T, B, ...)."""
    if not rnn.batch_first:
        return rnn
    cfg = dict(layer_config(rnn), batch_first=False)
    return make_layer(cell_of(rnn), rnn.params, rnn.dtype, **cfg).train(rnn.training)


def assemble(modules: list, where: str):
    """The rnnkit model an ordered chain of converted modules makes: [Embedding, recurrent, Linear] is
    an `RNNLanguageModel`, [recurrent, Linear] a `CTCModel`-shaped (features -> logits per step) model,
    one recurrent layer itself. Other chains have no rnnkit counterpart: UserError naming them."""
    from ..layers import Embedding, Linear
    from ..models.language_model import RNNLanguageModel

    kinds = ["embedding" if isinstance(m, Embedding) else "linear" if isinstance(m, Linear)
             else cell_of(m) if _is_recurrent(m) else type(m).__name__ for m in modules]
    rec = [i for i, k in enumerate(kinds) if k in RECURRENT_LAYERS]
    if len(kinds) == 1 and rec:
        return modules[0]
    if len(rec) == 1 and kinds[0] == "embedding" and kinds[2:] == ["linear"] and len(kinds) == 3:
        emb, rnn, head = modules
        rnn = _time_major(rnn)
        _check_chain(where, emb.embedding_dim, rnn, head)
        if rnn.bidirectional:
            raise UserError(f"{where}: a language model's recurrent layer must be unidirectional (it is "
                            "stepped one token at a time); this one is bidirectional")
        lm = RNNLanguageModel(emb.num_embeddings, emb.embedding_dim, rnn.hidden_size, rnn.num_layers,
                              cell_of(rnn), dtype=rnn.dtype)
        for name, m in (("embedding", emb), ("rnn", rnn), ("head", head)):
            _swap(lm, name, m)
        return lm.eval()
    if len(rec) == 1 and kinds[1:] == ["linear"] and len(kinds) == 2:
        from ..tasks.speech import CTCModel

        rnn, out = modules
        rnn = _time_major(rnn)
        _check_chain(where, rnn.input_size, rnn, out)
        model = CTCModel(rnn.input_size, out.out_features, cell_of(rnn), rnn.hidden_size, rnn.num_layers,
                         rnn.bidirectional, dtype=rnn.dtype)
        _swap(model, "rnn", rnn)
        return _swap(model, "out", out).eval()
    raise UserError(f"{where}: the chain {' -> '.join(kinds) or '(nothing)'} has no rnnkit counterpart; "
                    "rnnkit reads one recurrent layer, recurrent -> linear, or embedding -> recurrent -> linear")


def _is_recurrent(m) -> bool:
    return isinstance(m, tuple(RECURRENT_LAYERS.values()))


def _check_chain(where: str, d_in: int, rnn, head, parts: int = 1) -> None:
    """`parts`: poolings concatenated before the head (e.g. 2 for max+mean), each rnn-output wide."""
    if rnn.input_size != d_in:
        raise UserError(f"{where}: the recurrent layer reads {rnn.input_size} features but gets {d_in}")
    if head.in_features != parts * rnn.num_directions * rnn.hidden_size:
        raise UserError(f"{where}: the output layer reads {head.in_features} features but the recurrent "
                        f"layer{f' pooled {parts} ways' if parts > 1 else ''} gives "
                        f"{parts * rnn.num_directions * rnn.hidden_size}")


def sequence_net(modules: list, pooling: str, where: str):
    """[Embedding?, recurrent, Linear] pooled over time (`tasks.heads`): a `SequenceNet`."""
    from ..layers import Embedding, Linear
    from ..tasks.seqnet import SequenceNet

    emb = modules[0] if modules and isinstance(modules[0], Embedding) else None
    rest = modules[1:] if emb is not None else modules
    if len(rest) != 2 or not _is_recurrent(rest[0]) or not isinstance(rest[1], Linear):
        raise UserError(f"{where}: a sequence pooled over time must go from one recurrent layer straight "
                        "into one output layer")
    from ..layers.heads import pooling_parts

    rnn, head = _time_major(rest[0]), rest[1]
    _check_chain(where, rnn.input_size if emb is None else emb.embedding_dim, rnn, head,
                 len(pooling_parts(pooling)))
    net = SequenceNet(rnn.input_size, head.out_features, cell_of(rnn), rnn.hidden_size, rnn.num_layers,
                      rnn.bidirectional, pooling, vocab_size=None if emb is None else emb.num_embeddings,
                      embedding_dim=32 if emb is None else emb.embedding_dim, dtype=rnn.dtype)
    for name, m in (("embed", emb), ("rnn", rnn), ("head", head)):
        if m is not None:
            _swap(net, name, m)
    return net.eval()


# -- a model's structure as JSON, so an imported model is saved and rebuilt without code ----------------
def _module_spec(m) -> dict:
    from ..layers import Embedding, Linear

    if isinstance(m, Embedding):
        return {"kind": "embedding", "config": {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim}}
    if isinstance(m, Linear):
        return {"kind": "linear", "config": {"in_features": m.in_features, "out_features": m.out_features,
                                              "bias": "bias" in m.params}}
    return {"kind": cell_of(m), "config": layer_config(m)}


def _module_from_spec(spec: dict, dtype):
    from ..layers import Embedding, Linear

    kind, cfg = spec["kind"], spec["config"]
    if kind == "embedding":
        return Embedding(dtype=dtype, **cfg)
    if kind == "linear":
        return Linear(dtype=dtype, **cfg)
    return RECURRENT_LAYERS[kind](dtype=dtype, **cfg)


def chain_of(model) -> tuple[list, str | None]:
    """(the modules `model` applies in order, its pooling or None) for the models interop builds."""
    from ..layers import Embedding, Linear
    from ..models.language_model import RNNLanguageModel
    from ..tasks.seqnet import SequenceNet
    from ..tasks.speech import CTCModel

    if _is_recurrent(model) or isinstance(model, (Embedding, Linear)):
        return [model], None
    if isinstance(model, RNNLanguageModel):
        return [model.embedding, model.rnn, model.head], None
    if isinstance(model, CTCModel):
        return [model.rnn, model.out], None
    if isinstance(model, SequenceNet):
        return [m for m in (model.embed, model.rnn, model.head) if m is not None], model.pooling
    raise TypeError(f"{type(model).__name__} is not a model rnnkit.interop converts")


def describe(model) -> dict:
    """{"structure", "modules", "pooling", "dtype"}: what `rebuild` needs to make `model` again."""
    chain, pooling = chain_of(model)
    return {"structure": type(model).__name__, "modules": [_module_spec(m) for m in chain],
            "pooling": pooling, "dtype": np.dtype(chain[0].dtype).name}


def rebuild(desc: dict, where: str):
    """The model `describe` described, with fresh weights (load its state dict next)."""
    try:
        dtype = np.dtype(desc["dtype"])
        modules = [_module_from_spec(s, dtype) for s in desc["modules"]]
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: the model description is damaged ({e})") from None
    if desc.get("pooling"):
        return sequence_net(modules, desc["pooling"], where)
    return assemble(modules, where)


def summary(model) -> str:
    """One line naming the model's structure, e.g. "RNNLanguageModel: embedding 28x16 -> lstm 16->32
    (2 layers) -> linear 32->28"."""
    def one(spec):
        c = spec["config"]
        if spec["kind"] == "embedding":
            return f"embedding {c['num_embeddings']}x{c['embedding_dim']}"
        if spec["kind"] == "linear":
            return f"linear {c['in_features']}->{c['out_features']}"
        extra = [f"{c['num_layers']} layers" if c["num_layers"] > 1 else "",
                 "bidirectional" if c["bidirectional"] else "", "" if c["bias"] else "no bias",
                 c.get("nonlinearity", "tanh") if c.get("nonlinearity", "tanh") != "tanh" else ""]
        extra = ", ".join(e for e in extra if e)
        return f"{spec['kind']} {c['input_size']}->{c['hidden_size']}" + (f" ({extra})" if extra else "")

    desc = describe(model)
    pooled = f" -> {desc['pooling']} pooling" if desc["pooling"] else ""
    parts = [one(s) for s in desc["modules"]]
    if pooled:
        parts[-1:-1] = [pooled.strip(" ->")]
    return f"{desc['structure']}: " + " -> ".join(parts)
