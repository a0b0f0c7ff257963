"""The many-to-one network shared by classification and forecasting.

    x  = embed(ids)              (T, B, E)   only for token input; numeric input is used as is (T, B, D)
    x  = x * m_x                 (T, B, E)   variational dropout, m_x (1, B, E) the same at every step
    out, _ = rnn(x, lengths)     (T, B, F)   F = num_directions * H; padded steps are zero
    p  = pool(out, lengths)      (B, k*F)    last / mean / max, or k of them concatenated, see `heads`
    p  = p * m_p                 (B, k*F)    dropout on the pooled vector
    y  = head(p)                 (B, O)      logits (classification) or outputs (forecasting)

Regularisation for small data (every rate 0 by default; all are the identity in eval mode): word-type
dropout in the embedding (`embedding_dropout`, whole rows of the table), variational dropout on its
output (`input_dropout`, Gal & Ghahramani 2016), dropout between stacked layers (`dropout`), weight-drop
on W_hh (`weight_drop`, AWD-LSTM) and dropout on the pooled vector (`output_dropout`), as ULMFiT's
classifier applies them. The dropout modules are children without parameters; their generators are in
`random_state_dict()`, so a checkpoint resumes the masks exactly.

Backward runs the same chain in reverse; every child fills its own `grads`, exposed under dotted names
("rnn.weight_ih_l0", "head.weight", "embed.weight") like `torch.nn.Module.state_dict()`.
"""
from __future__ import annotations

import numpy as np

from ..layers import RECURRENT_LAYERS as CELLS  # the one name -> layer registry (re-exported)
from ..layers import Embedding, Linear, Module, make_rnn
from ..layers.dropout import Dropout, VariationalDropout
from ..layers.heads import pool_backward, pool_forward, pooling_parts


def make_recurrent(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                   bidirectional: bool = False, dropout: float = 0.0, dtype=np.float32, seed=None,
                   weight_drop: float = 0.0):
    """`layers.make_rnn` with dropout only where there is a layer above to apply it to."""
    return make_rnn(cell, input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                    dropout=dropout if num_layers > 1 else 0.0, dtype=dtype, seed=seed, weight_drop=weight_drop)


class SequenceNet(Module):
    """Embedding (optional) -> recurrent layer -> pooling -> Linear. See the module docstring."""

    def __init__(self, input_size: int, output_size: int, cell: str = "lstm", hidden_size: int = 32,
                 num_layers: int = 1, bidirectional: bool = False, pooling: str = "last",
                 vocab_size: int | None = None, embedding_dim: int = 32, dropout: float = 0.0,
                 dtype=np.float32, seed=None, embedding_dropout: float = 0.0, input_dropout: float = 0.0,
                 output_dropout: float = 0.0, weight_drop: float = 0.0):
        super().__init__()
        seeds = np.random.SeedSequence(seed).generate_state(5)  # the first three as before the dropouts
        self.pooling = pooling
        self.dtype = np.dtype(dtype)
        if vocab_size is not None:
            self.embed = self.add_module("embed", Embedding(vocab_size, embedding_dim, dtype=dtype,
                                                            seed=int(seeds[0]), dropout=embedding_dropout))
            input_size = embedding_dim
        else:
            self.embed = None
        self.rnn = self.add_module("rnn", make_recurrent(cell, input_size, hidden_size, num_layers,
                                                         bidirectional, dropout, dtype, int(seeds[1]),
                                                         weight_drop))
        # children only when used, so the generators a checkpoint holds are those of the model run
        self.input_drop = self.add_module("input_drop", VariationalDropout(input_dropout, int(seeds[3]))) \
            if input_dropout > 0 else None
        self.output_drop = self.add_module("output_drop", Dropout(output_dropout, int(seeds[4]))) \
            if output_dropout > 0 else None
        nd = 2 if bidirectional else 1
        self.num_directions = nd
        k = len(pooling_parts(pooling))
        self.head = self.add_module("head", Linear(k * nd * hidden_size, output_size, dtype=dtype,
                                                   seed=int(seeds[2])))
        self._pool_cache = None

    def forward(self, x, lengths):
        """x: ids (T, B) int or features (T, B, D); lengths (B,). Returns (B, output_size)."""
        if self.embed is not None:
            x = self.embed.forward(x)                           # (T, B, E)
        if self.input_drop is not None:
            x = self.input_drop.forward(x)                      # (T, B, E), mask (1, B, E)
        out, _ = self.rnn.forward(x, lengths=lengths)           # (T, B, F)
        pooled, self._pool_cache = pool_forward(out, lengths, self.pooling, self.num_directions)  # (B, k*F)
        if self.output_drop is not None:
            pooled = self.output_drop.forward(pooled)           # (B, k*F)
        return self.head.forward(pooled)                        # (B, O)

    def backward(self, dy, input_grad=True):
        """Gradients of every parameter from dy (B, O); returns dx (T, B, D) for feature input, None
        for ids or with input_grad=False (training on data: the bottom layer's dx is skipped)."""
        dpooled = self.head.backward(dy)                        # (B, k*F)
        if self.output_drop is not None:
            dpooled = self.output_drop.backward(dpooled)
        dout = pool_backward(self._pool_cache, dpooled)         # (T, B, F)
        dx, _ = self.rnn.backward(dout, input_grad=input_grad or self.embed is not None)
        if self.input_drop is not None and dx is not None:
            dx = self.input_drop.backward(dx)
        if self.embed is not None:
            self.embed.backward(dx)
            return None
        return dx
