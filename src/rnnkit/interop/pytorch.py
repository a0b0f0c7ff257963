"""rnnkit <-> PyTorch: modules converted both ways, and torch checkpoints read without running code.

rnnkit's parameters already carry `torch.nn`'s `state_dict` names and shapes, so a conversion is a copy
of the arrays plus the constructor options; no gate is reordered. `from_torch` takes `nn.RNN/LSTM/GRU`,
`nn.Embedding`, `nn.Linear`, a module whose children chain as embedding -> recurrent -> linear (a
language model) or recurrent -> linear, or a state dict with an rnnkit module to fill by name.
`load_torch_checkpoint` reads a `.safetensors` file with no torch at all and a `.pt` file only through
`torch.load(weights_only=True)`, which refuses pickled objects other than tensors and containers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..layers import Embedding, Linear, Module
from ..layers.recurrent import RECURRENT_LAYERS
from ._common import assemble, cell_of, layer_config, make_layer, require

TORCH_CLASSES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
CELLS = {v: k for k, v in TORCH_CLASSES.items()}                   # "LSTM" -> "lstm"
# torch children that hold no parameters and change nothing in eval mode
_PASS_THROUGH = ("Dropout", "Identity")


def _numpy(t) -> np.ndarray:
    """A tensor's values as a new NumPy array; half precision widened to float32 (exactly)."""
    t = t.detach().cpu()
    if t.is_floating_point() and t.element_size() < 4:                # float16 / bfloat16
        t = t.float()
    return t.numpy().copy()


def _dtype_of(module) -> np.dtype:
    """float64 for a double-precision torch module, else float32 (rnnkit's two working precisions)."""
    import torch

    p = next(module.parameters(), None)
    return np.dtype(np.float64) if p is not None and p.dtype == torch.float64 else np.dtype(np.float32)


def _recurrent_from_torch(mod, cell: str, where: str):
    if getattr(mod, "proj_size", 0):
        raise UserError(f"{where}: LSTM with proj_size={mod.proj_size} has no rnnkit counterpart")
    cfg = {"input_size": mod.input_size, "hidden_size": mod.hidden_size, "num_layers": mod.num_layers,
           "bias": mod.bias, "batch_first": mod.batch_first, "dropout": float(mod.dropout),
           "bidirectional": mod.bidirectional}
    if cell == "rnn":
        cfg["nonlinearity"] = mod.nonlinearity
    return make_layer(cell, {k: _numpy(v) for k, v in mod.state_dict().items()}, _dtype_of(mod), **cfg)


def _leaf_from_torch(mod, where: str):
    """The rnnkit module for one torch leaf module, or None if it is not one rnnkit has."""
    name = type(mod).__name__
    if name in CELLS:
        return _recurrent_from_torch(mod, CELLS[name], where)
    if name == "Embedding":
        for opt, default in (("padding_idx", None), ("max_norm", None), ("scale_grad_by_freq", False),
                             ("sparse", False)):
            if getattr(mod, opt) != default:
                raise UserError(f"{where}: nn.Embedding with {opt}={getattr(mod, opt)!r} has no rnnkit "
                                "counterpart (it changes the lookup or its gradient)")
        emb = Embedding(mod.num_embeddings, mod.embedding_dim, dtype=_dtype_of(mod))
        emb.load_state_dict({"weight": _numpy(mod.weight)})
        return emb
    if name == "Linear":
        lin = Linear(mod.in_features, mod.out_features, bias=mod.bias is not None, dtype=_dtype_of(mod))
        lin.load_state_dict({k: _numpy(v) for k, v in mod.state_dict().items()})
        return lin
    return None


def from_torch(obj, like: Module | None = None):
    """The rnnkit equivalent of a torch module, or `like` filled from a torch state dict.

    obj: `nn.RNN/LSTM/GRU/Embedding/Linear`; an `nn.Module` whose children are such modules chained
    embedding -> recurrent -> linear (returns an `RNNLanguageModel`) or recurrent -> linear; or a
    state dict (names -> tensors or arrays), copied into `like` when given, else into the structure
    its names and shapes describe (`infer_from_state_dict`).
    """
    if isinstance(obj, dict):
        state = {k: _numpy(v) if hasattr(v, "detach") else np.asarray(v) for k, v in obj.items()}
        if like is None:
            like = infer_from_state_dict(state)
        load_state_by_name(like, state)
        return like
    where = type(obj).__name__
    leaf = _leaf_from_torch(obj, where)
    if leaf is not None:
        return leaf.train(obj.training)
    modules = []
    for name, child in obj.named_children():
        if type(child).__name__ in _PASS_THROUGH:
            continue
        conv = _leaf_from_torch(child, f"{where}.{name}")
        if conv is None:
            raise UserError(f"{where}.{name}: torch module {type(child).__name__} has no rnnkit counterpart")
        modules.append(conv)
    return assemble(modules, where).train(obj.training)


def load_state_by_name(model: Module, state: dict) -> None:
    """Copy a state dict into `model`: by name where the names agree, otherwise each prefix of the
    state dict ("encoder." in "encoder.weight") goes to the one child of `model` whose parameters have
    the same names and shapes after it ("embedding."); a leaf module takes a state dict under one
    prefix ("lstm.weight_ih_l0"). Keys that map nowhere, or twice, raise UserError."""
    ours = model.params
    if set(state) != set(ours):
        groups: dict[str, dict[str, tuple]] = {}
        for k, v in state.items():
            prefix, _, rest = k.rpartition(".")
            groups.setdefault(prefix, {})[rest] = np.shape(v)
        children = {name: {k: v.shape for k, v in child.params.items()} for name, child in model.children()}
        if not children:
            children = {"": {k: v.shape for k, v in ours.items()}}
        mapping = {}
        for prefix, shapes in groups.items():
            fits = [c for c, cs in children.items() if cs == shapes and c not in mapping.values()]
            if len(fits) != 1:
                raise UserError(f"the state dict's keys {sorted(state)} do not match "
                                f"{type(model).__name__}'s {sorted(ours)} (no single counterpart for "
                                f"{prefix or 'the keys without a prefix'!r})")
            mapping[prefix] = fits[0]
        renamed = {}
        for k, v in state.items():
            prefix, _, rest = k.rpartition(".")
            renamed[f"{mapping[prefix]}.{rest}" if mapping[prefix] else rest] = v
        state = renamed
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise UserError(str(e)) from None


def infer_from_state_dict(state: dict) -> Module:
    """An rnnkit module (fresh weights) of the structure a torch state dict describes: one prefix with
    `weight_ih_l0`... is the recurrent layer (cell from the gate rows: 4H LSTM, 3H GRU, H RNN, whose
    nonlinearity a state dict cannot tell: tanh is assumed), a `weight` (V, its input size) before it
    an embedding, `weight` (O, nd*H) [+ `bias`] after it the output layer."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for k, v in state.items():
        prefix, _, rest = k.rpartition(".")
        groups.setdefault(prefix, {})[rest] = np.asarray(v)
    rec = [p for p, g in groups.items() if "weight_ih_l0" in g and "weight_hh_l0" in g]
    if len(rec) != 1:
        raise UserError(f"the state dict has {len(rec)} recurrent layers (keys weight_ih_l0, weight_hh_l0 under "
                        f"one prefix); rnnkit reads one: {sorted(state)[:8]}")
    g = groups.pop(rec[0])
    H = g["weight_hh_l0"].shape[1]
    cell = {4: "lstm", 3: "gru", 1: "rnn"}.get(g["weight_hh_l0"].shape[0] // H)
    layers = sum(1 for k in g if k.startswith("weight_ih_l") and not k.endswith("_reverse"))
    nd = 2 if "weight_ih_l0_reverse" in g else 1
    dtype = np.float64 if g["weight_hh_l0"].dtype == np.float64 else np.float32
    rnn = RECURRENT_LAYERS[cell](g["weight_ih_l0"].shape[1], H, num_layers=layers, bias="bias_ih_l0" in g,
                                 bidirectional=nd == 2, dtype=dtype)
    before, after = [], []
    for prefix, p in groups.items():
        w = p.get("weight")
        if w is None or w.ndim != 2 or set(p) - {"weight", "bias"}:
            raise UserError(f"state dict entries {prefix!r} ({sorted(p)}) are neither an embedding nor a linear layer")
        if set(p) == {"weight"} and w.shape[1] == rnn.input_size and not after:
            before.append(Embedding(*w.shape, dtype=dtype))
        elif w.shape[1] == nd * H:
            after.append(Linear(w.shape[1], w.shape[0], bias="bias" in p, dtype=dtype))
        else:
            raise UserError(f"state dict entry {prefix!r}.weight {w.shape} fits neither the recurrent layer's "
                            f"input ({rnn.input_size}) nor its output ({nd * H})")
    return assemble(before + [rnn] + after, "the state dict")


def _torch_dtype(dtype):
    import torch

    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def _torch_state(params: dict) -> dict:
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v).copy()) for k, v in params.items()}


def _torch_models() -> dict:
    """Torch twins of rnnkit's chained models, by name; same child names, so state dicts match key
    for key. Made on first use (torch is imported only here)."""
    import torch

    class TorchLanguageModel(torch.nn.Module):
        """ids (T, B) -> logits (T, B, V), state: `RNNLanguageModel.forward`."""

        def __init__(self, embedding, rnn, head):
            super().__init__()
            self.embedding, self.rnn, self.head = embedding, rnn, head

        def forward(self, ids, state=None):
            h, state = self.rnn(self.embedding(ids), state)
            return self.head(h), state

    class TorchCTCModel(torch.nn.Module):
        """features (T, B, D) -> logits (T, B, C) per step: `CTCModel.forward` without lengths."""

        def __init__(self, rnn, out):
            super().__init__()
            self.rnn, self.out = rnn, out

        def forward(self, x):
            return self.out(self.rnn(x)[0])

    from ..models.language_model import RNNLanguageModel
    from ..tasks.speech import CTCModel

    return {RNNLanguageModel: (TorchLanguageModel, ("embedding", "rnn", "head")),
            CTCModel: (TorchCTCModel, ("rnn", "out"))}


def to_torch(module: Module):
    """The torch module equivalent to an rnnkit layer, Embedding, Linear, RNNLanguageModel or CTCModel
    (float64 stays float64, the training flag is kept)."""
    torch = require("torch", "torch")

    composite = _torch_models().get(type(module))
    if composite is not None:
        cls, children = composite
        return cls(*(to_torch(getattr(module, c)) for c in children)).train(module.training)
    if isinstance(module, tuple(RECURRENT_LAYERS.values())):
        cell = cell_of(module)
        mod = getattr(torch.nn, TORCH_CLASSES[cell])(**layer_config(module), dtype=_torch_dtype(module.dtype))
    elif isinstance(module, Embedding):
        mod = torch.nn.Embedding(module.num_embeddings, module.embedding_dim, dtype=_torch_dtype(module.dtype))
    elif isinstance(module, Linear):
        mod = torch.nn.Linear(module.in_features, module.out_features, bias="bias" in module.params,
                              dtype=_torch_dtype(module.dtype))
    else:
        raise TypeError(f"to_torch: {type(module).__name__} has no torch counterpart here; give a recurrent "
                        "layer, an Embedding, a Linear, an RNNLanguageModel or a CTCModel")
    mod.load_state_dict(_torch_state(module.params))
    return mod.train(module.training)


def load_torch_checkpoint(path) -> dict[str, np.ndarray]:
    """A torch state dict from a file, as NumPy arrays, without running code from the file.

    `.safetensors`: read by safetensors' NumPy reader (no torch needed). `.pt`/`.pth`/`.bin`:
    `torch.load(weights_only=True)`; a dict with a "state_dict"/"model_state_dict" entry is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist or is not a file")
    head = path.read_bytes()[:8] if path.stat().st_size >= 8 else b""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, ValueError, TypeError) as e:
            raise UserError(f"{path}: not a readable safetensors file ({e})") from None
    if path.suffix not in (".pt", ".pth", ".bin"):
        raise UserError(f"{path}: unknown torch checkpoint type {path.suffix!r}; give a .safetensors or .pt file")
    if not head.startswith(b"PK"):
        raise UserError(f"{path}: not a torch checkpoint (torch.save writes a zip archive; this file is not one)")
    torch = require("torch", "torch")
    import pickle

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: refused by torch.load(weights_only=True): {first}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: expected a state dict (names -> tensors), found {type(obj).__name__}")
    return {k: _numpy(v) for k, v in obj.items()}
