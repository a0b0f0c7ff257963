"""A recurrent language model: token ids -> Embedding -> RNN/LSTM/GRU layers -> Linear -> logits.

Shapes: ids (T, B) ints in [0, V); e = embedding(ids) (T, B, E); h, state = rnn(e, state) (T, B, H);
logits = head(h) (T, B, V). `state` is the recurrent layer's (h_n for RNN/GRU, (h_n, c_n) for LSTM, each
(L, B, H)); passing the previous batch's final state in gives truncated BPTT (the gradient stops at the
batch boundary because the state enters as a constant).

Backward, given dlogits (T, B, V) and optionally dstate (gradient into the final state):
    dh = head.backward(dlogits); de, dstate0 = rnn.backward(dh, dstate); embedding.backward(de).
Parameters use dotted torch-style names: `embedding.weight`, `rnn.weight_ih_l0`, ..., `head.weight`,
`head.bias`, so the weights load into an equivalent torch module by name.
"""
from __future__ import annotations

import numpy as np

from ..layers.base import Module
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..layers.recurrent import RECURRENT_LAYERS


CELL_NAMES = tuple(RECURRENT_LAYERS)  # ("lstm", "gru", "rnn")


class RNNLanguageModel(Module):
    """`RNNLanguageModel(vocab_size V, embed_dim E, hidden_size H, num_layers=1, cell="lstm")`."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
                 cell: str = "lstm", dtype=np.float32, seed: int | None = 0):
        super().__init__()
        if cell not in CELL_NAMES:
            raise ValueError(f"cell must be one of {list(CELL_NAMES)}, got {cell!r}")
        self.vocab_size, self.embed_dim = int(vocab_size), int(embed_dim)
        self.hidden_size, self.num_layers, self.cell = int(hidden_size), int(num_layers), cell
        self.dtype = np.dtype(dtype)
        s_emb, s_rnn, s_head = np.random.SeedSequence(seed).generate_state(3)
        self.embedding = self.add_module("embedding", Embedding(vocab_size, embed_dim, dtype=dtype, seed=int(s_emb)))
        self.rnn = self.add_module("rnn", RECURRENT_LAYERS[cell](embed_dim, hidden_size, num_layers, dtype=dtype,
                                                         seed=int(s_rnn)))
        self.head = self.add_module("head", Linear(hidden_size, vocab_size, dtype=dtype, seed=int(s_head)))

    def config(self) -> dict:
        return {"vocab_size": self.vocab_size, "embed_dim": self.embed_dim, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "cell": self.cell}

    def forward(self, ids, state=None):
        """logits (T, B, V), state = model.forward(ids (T, B), state=None)."""
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (T, B) integers, got shape {ids.shape}")
        e = self.embedding.forward(ids)          # (T, B, E)
        h, state = self.rnn.forward(e, state)    # (T, B, H)
        return self.head.forward(h), state       # (T, B, V)

    def backward(self, dlogits, dstate=None):
        """Fills `grads` for the last forward; returns the gradient of the initial state."""
        dh = self.head.backward(dlogits)                 # (T, B, H)
        de, dstate0 = self.rnn.backward(dh, dstate)      # (T, B, E)
        self.embedding.backward(de)
        return dstate0

    def step(self, ids_t, state=None):
        """One step for generation: ids_t (B,) -> logits (B, V), state."""
        e = self.embedding.forward(np.asarray(ids_t))    # (B, E)
        h, state = self.rnn.step(e, state)               # (B, H)
        return self.head.forward(h), state
