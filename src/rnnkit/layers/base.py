"""The `Module` protocol every rnnkit layer and model follows.

A module holds configuration, a `params` dict of NumPy arrays and a `grads` dict with the same keys and
shapes. `forward(...)` computes outputs and keeps what `backward` needs from that one call;
`backward(dout)` returns the gradient for the input and *overwrites* `grads` (no accumulation across
calls, so there is no `zero_grad`). Parameter arrays are updated in place by optimisers and never
rebound, so a composite module can expose its children's arrays under dotted names
(`"rnn.weight_ih_l0"`), as `torch.nn.Module.state_dict()` does.

A module that draws random numbers (dropout masks) owns its `np.random.Generator`s and names the
attributes holding them in `random_generators`; `random_state_dict()` collects their states from the
whole tree (plain JSON: the bit generators' own `state` dicts) and `load_random_state_dict()` puts them
back, so a checkpoint can make a resumed run draw the masks the uninterrupted run would have drawn.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np

from .checks import float_dtype


class Module:
    """Base class: parameters, gradients, train/eval mode, state dicts.

    Subclasses either fill `self._params`/`self._grads` directly (leaf modules) or register child
    modules with `add_module` (composites); `params`/`grads` then combine both with dotted names.
    """

    #: names of the attributes holding this module's own `np.random.Generator`s (not its children's)
    random_generators: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._children: dict[str, Module] = {}
        self.training = True

    # -- structure ---------------------------------------------------------------------------------
    def add_module(self, name: str, module: "Module") -> "Module":
        if not name or "." in name:
            raise ValueError(f"module name must be non-empty and contain no '.', got {name!r}")
        self._children[name] = module
        return module

    def children(self) -> Iterator[tuple[str, "Module"]]:
        return iter(self._children.items())

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Parameter arrays by name, in `torch.nn` `state_dict()` naming (the arrays themselves)."""
        out = dict(self._params)
        for cname, child in self._children.items():
            out.update({f"{cname}.{k}": v for k, v in child.params.items()})
        return out

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Gradients of the last `backward`, key for key like `params`."""
        out = dict(self._grads)
        for cname, child in self._children.items():
            out.update({f"{cname}.{k}": v for k, v in child.grads.items()})
        return out

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    # -- mode --------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        self.training = bool(mode)
        for child in self._children.values():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- state dicts -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, keyed as `params`."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters in place (keeps dtype); shapes must match exactly."""
        params = self.params
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}; "
                "the state dict must come from a module of the same configuration")
        for k, p in params.items():
            if k not in state:
                continue
            v = np.asarray(state[k])
            if v.shape != p.shape:
                raise ValueError(f"load_state_dict: {k!r} has shape {v.shape}, expected {p.shape}")
            p[...] = v

    # -- random state ------------------------------------------------------------------------------
    def random_state_dict(self) -> dict[str, dict]:
        """{dotted name: bit generator state} of every generator in the tree, e.g.
        {"rnn.dropout_rng": {"bit_generator": "PCG64", "state": {...}, ...}}; copies, JSON-able."""
        return {k: copy.deepcopy(g.bit_generator.state) for k, g in self._generators().items()}

    def load_random_state_dict(self, state: dict, strict: bool = True) -> None:
        """Restore the generators from `random_state_dict()`'s output. strict: the names must be the
        same set; a state of another bit generator, or a damaged one, raises one ValueError line."""
        if not isinstance(state, dict):
            raise TypeError(f"load_random_state_dict: expected a dict, got {type(state).__name__}")
        own = self._generators()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(f"load_random_state_dict: missing generators {missing}, unexpected "
                             f"{unexpected}; the state must come from a model of the same configuration")
        for name, gen in own.items():
            if name not in state:
                continue
            s = state[name]
            kind = type(gen.bit_generator).__name__
            if not isinstance(s, dict) or s.get("bit_generator") != kind:
                raise ValueError(f"load_random_state_dict: {name!r} is not a {kind} state")
            try:
                gen.bit_generator.state = copy.deepcopy(s)
            except (TypeError, ValueError, KeyError) as e:
                raise ValueError(f"load_random_state_dict: {name!r} is not a valid {kind} state "
                                 f"({e})") from None

    def _generators(self) -> dict[str, np.random.Generator]:
        """{dotted name: generator} of the tree, named as in `random_state_dict`."""
        out = {name.lstrip("_"): getattr(self, name) for name in self.random_generators}
        for cname, child in self._children.items():
            out.update({f"{cname}.{k}": v for k, v in child._generators().items()})
        return out

    def astype(self, dtype) -> "Module":
        """Convert every parameter to `dtype` (e.g. float64 for gradient checks). Returns self."""
        dtype = float_dtype(type(self).__name__, dtype)
        for k in list(self._params):
            self._params[k] = self._params[k].astype(dtype)
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}
        for child in self._children.values():
            child.astype(dtype)
        if hasattr(self, "dtype"):
            self.dtype = dtype
        return self

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)
