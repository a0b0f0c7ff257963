"""A recurrent language model: token ids -> Embedding -> RNN/LSTM/GRU layers -> Linear -> logits.

Shapes: ids (T, B) ints in [0, V); e = embedding(ids) (T, B, E); h, state = rnn(e, state) (T, B, H);
logits = head(h) (T, B, V). `state` is the recurrent layer's (h_n for RNN/GRU, (h_n, c_n) for LSTM, each
(L, B, H)); passing the previous batch's final state in gives truncated BPTT (the gradient stops at the
batch boundary because the state enters as a constant).

Backward, given dlogits (T, B, V) and optionally dstate (gradient into the final state):
    dh = head.backward(dlogits); de, dstate0 = rnn.backward(dh, dstate); embedding.backward(de).
Parameters use dotted torch-style names: `embedding.weight`, `rnn.weight_ih_l0`, ..., `head.weight`,
`head.bias`, so the weights load into an equivalent torch module by name.

Weight tying (Press & Wolf 2017; Inan et al. 2017), `tie_weights=True`: the output layer's weight is the
embedding matrix, W = head.weight = embedding.weight (V, E), which needs E == H. The matrix is used twice,
e = W[ids] and logits = h W^T + b, so its gradient is the sum of both uses:
    dW = dW_embedding + dW_head.
`params` and `grads` then list the matrix once, as `embedding.weight` (an optimiser must see one parameter
with the summed gradient, as torch's `named_parameters()` does for a tied module); `state_dict()` holds
`head.weight` too (an equal copy), so it loads into torch's word_language_model (whose decoder weight is
its encoder's) key for key, and `load_state_dict` re-ties: it refuses a `head.weight` that differs.

Dropout (training mode only; identity in eval mode), as AWD-LSTM places it (Merity et al. 2017):
    e = embedding(ids)            embedding dropout: whole rows (word types) of W dropped (`dropout_embedding`)
    e = drop_i(e)                 on the embeddings (`dropout_input`)
    h, state = rnn(e, state)      between layers (`dropout_hidden`, the layer's own) and DropConnect on
                                  W_hh (`weight_drop`)
    h = drop_o(h)                 on the last layer's output (`dropout_output`)
`variational=True` (Gal & Ghahramani 2016) draws drop_i's and drop_o's masks once per sequence (the same
for every step t, mask (1, B, D)); `variational=False` draws a new mask per element, as torch's nn.Dropout
in PyTorch's word_language_model example. Backward multiplies by the same masks.
"""
from __future__ import annotations

import numpy as np

from ..layers.base import Module
from ..layers.dropout import Dropout, VariationalDropout
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..layers.recurrent import RECURRENT_LAYERS


CELL_NAMES = tuple(RECURRENT_LAYERS)  # ("lstm", "gru", "rnn")
TIE_RANGE = 0.1                       # U(-0.1, 0.1) for a tied matrix, as PyTorch's word_language_model


DROPOUTS = ("dropout_input", "dropout_hidden", "dropout_output", "dropout_embedding", "weight_drop")


class RNNLanguageModel(Module):
    """`RNNLanguageModel(vocab_size V, embed_dim E, hidden_size H, num_layers=1, cell="lstm",
    tie_weights=False, dropout_input=0, dropout_hidden=0, dropout_output=0, dropout_embedding=0,
    weight_drop=0, variational=True)`; the dropouts are probabilities (see the module docstring)."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
                 cell: str = "lstm", dtype=np.float32, seed: int | None = 0, tie_weights: bool = False,
                 dropout_input: float = 0.0, dropout_hidden: float = 0.0, dropout_output: float = 0.0,
                 dropout_embedding: float = 0.0, weight_drop: float = 0.0, variational: bool = True):
        super().__init__()
        if cell not in CELL_NAMES:
            raise ValueError(f"cell must be one of {list(CELL_NAMES)}, got {cell!r}")
        if tie_weights and int(embed_dim) != int(hidden_size):
            raise ValueError(f"tie_weights needs embed_dim == hidden_size (the output layer's weight is the "
                             f"embedding matrix), got embed_dim {embed_dim} and hidden_size {hidden_size}")
        self.vocab_size, self.embed_dim = int(vocab_size), int(embed_dim)
        self.hidden_size, self.num_layers, self.cell = int(hidden_size), int(num_layers), cell
        self.tie_weights = bool(tie_weights)
        self.dtype = np.dtype(dtype)
        self.dropout_input, self.dropout_hidden, self.dropout_output = dropout_input, dropout_hidden, dropout_output
        self.dropout_embedding, self.weight_drop = dropout_embedding, weight_drop
        self.variational = bool(variational)
        # the first three seeds are those of a model without dropout (generate_state is prefix-stable)
        s_emb, s_rnn, s_head, s_in, s_out = np.random.SeedSequence(seed).generate_state(5)
        self.embedding = self.add_module("embedding", Embedding(vocab_size, embed_dim, dtype=dtype, seed=int(s_emb),
                                                                dropout=dropout_embedding))
        self.rnn = self.add_module("rnn", RECURRENT_LAYERS[cell](embed_dim, hidden_size, num_layers, dtype=dtype,
                                                         seed=int(s_rnn), dropout=dropout_hidden,
                                                         weight_drop=weight_drop))
        self.head = self.add_module("head", Linear(hidden_size, vocab_size, dtype=dtype, seed=int(s_head)))
        drop = VariationalDropout if self.variational else Dropout
        self.drop_input = self.add_module("drop_input", drop(dropout_input, seed=int(s_in)))
        self.drop_output = self.add_module("drop_output", drop(dropout_output, seed=int(s_out)))
        if self.tie_weights:
            # N(0, 1) embedding rows as output weights would start with logits of std ~ sqrt(H)/2
            w = self.embedding._params["weight"]
            w[...] = np.random.default_rng(s_emb).uniform(-TIE_RANGE, TIE_RANGE, w.shape)
            self.head._params["bias"][...] = 0
            self._tie()

    def _tie(self) -> None:
        """head.weight becomes the embedding's array itself (updated in place, never rebound)."""
        self.head._params["weight"] = self.embedding._params["weight"]

    def config(self) -> dict:
        return {"vocab_size": self.vocab_size, "embed_dim": self.embed_dim, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "cell": self.cell, "tie_weights": self.tie_weights,
                **{k: getattr(self, k) for k in DROPOUTS}, "variational": self.variational}

    # -- tied parameters are listed once -------------------------------------------------------------
    @property
    def params(self) -> dict[str, np.ndarray]:
        p = super().params
        if self.tie_weights:
            del p["head.weight"]                     # the same array as embedding.weight
        return p

    @property
    def grads(self) -> dict[str, np.ndarray]:
        g = super().grads
        if self.tie_weights:
            del g["head.weight"]                     # already added into embedding.weight by backward
        return g

    def state_dict(self) -> dict[str, np.ndarray]:
        sd = super().state_dict()
        if self.tie_weights:
            sd["head.weight"] = sd["embedding.weight"].copy()   # torch's tied state_dict has both keys
        return sd

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        if self.tie_weights and "head.weight" in state:
            state = dict(state)
            head = np.asarray(state.pop("head.weight"))
            emb = state.get("embedding.weight")
            if emb is not None and (np.shape(emb) != head.shape or not np.array_equal(np.asarray(emb), head)):
                raise ValueError("load_state_dict: this model ties head.weight to embedding.weight, but the "
                                 "two differ in the state dict (it comes from an untied model)")
        super().load_state_dict(state, strict)
        if self.tie_weights:
            self._tie()

    def astype(self, dtype) -> "RNNLanguageModel":
        super().astype(dtype)
        if self.tie_weights:
            self._tie()
            self.head._grads["weight"] = np.zeros_like(self.head._params["weight"])
        return self

    # -- forward / backward ----------------------------------------------------------------------------
    def forward(self, ids, state=None):
        """logits (T, B, V), state = model.forward(ids (T, B), state=None)."""
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (T, B) integers, got shape {ids.shape}")
        e = self.drop_input.forward(self.embedding.forward(ids))   # (T, B, E)
        h, state = self.rnn.forward(e, state)                      # (T, B, H)
        return self.head.forward(self.drop_output.forward(h)), state   # (T, B, V)

    def backward(self, dlogits, dstate=None):
        """Fills `grads` for the last forward; returns the gradient of the initial state."""
        dh = self.drop_output.backward(self.head.backward(dlogits))   # (T, B, H)
        de, dstate0 = self.rnn.backward(dh, dstate)                  # (T, B, E)
        self.embedding.backward(self.drop_input.backward(de))
        if self.tie_weights:                             # dW = dW_embedding + dW_head
            self.embedding._grads["weight"] += self.head._grads["weight"]
        return dstate0

    def step(self, ids_t, state=None):
        """One step for generation (eval mode: no dropout here): ids_t (B,) -> logits (B, V), state."""
        e = self.embedding.forward(np.asarray(ids_t))    # (B, E)
        h, state = self.rnn.step(e, state)               # (B, H)
        return self.head.forward(h), state
