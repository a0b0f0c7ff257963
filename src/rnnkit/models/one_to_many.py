"""One-to-many: a decoder RNN that starts from a vector and emits a token sequence.

The vector v (e.g. an image's pixels or a one-hot language) conditions the decoder in one of two ways
(Karpathy & Fei-Fei 2015 use the first, Vinyals et al. 2015 "Show and Tell" feed the image once):
    "state": h0[l] = tanh(W_init v + b_init)[l]   for every layer l (LSTM: c0 = 0)
    "input": x_t = [embed(y_{t-1}); v] at every step, h0 = 0
Training is teacher forced on <bos> y_1 .. y_n -> y_1 .. y_n <eos>, one pass of the RNN; generation is
greedy or sampled with a temperature, step by step.

Dropout p (training mode only): variational dropout (Gal & Ghahramani 2016, one mask per sequence) on
the embedded tokens the RNN reads and on the RNN output the classifier reads, element-wise between
stacked layers.

Shapes: B batch, F vector features, T steps, E embedding, H hidden, L layers, V vocabulary.
Token ids: 0 <pad>, 1 <bos>, 2 <eos> (further ids are the alphabet).
"""
from __future__ import annotations

import numpy as np

from ..layers.base import Module
from ..layers.dropout import VariationalDropout
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..losses.functional import log_softmax
from .decoding import decode_until_eos
from ..layers.recurrent import make_rnn

PAD, BOS, EOS = 0, 1, 2
CONDITIONS = ("state", "input")


class VectorToSequence(Module):
    """forward(v (B, F), tokens_in (T, B), lengths) -> logits (T, B, V); backward(dlogits) -> dv (B, F)."""

    def __init__(self, n_features: int, vocab: int, embed: int = 32, hidden: int = 64, layers: int = 1,
                 cell: str = "lstm", condition: str = "state", dtype=np.float32, seed=None,
                 dropout: float = 0.0):
        super().__init__()
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        s = (lambda k: None) if seed is None else (lambda k: seed + k)
        self.condition, self.layers, self.hidden, self.n_features = condition, layers, hidden, n_features
        self.emb = self.add_module("emb", Embedding(vocab, embed, dtype=dtype, seed=s(0)))
        n_in = embed + (n_features if condition == "input" else 0)
        self.rnn = self.add_module("rnn", make_rnn(cell, n_in, hidden, num_layers=layers, dtype=dtype, seed=s(1),
                                                   dropout=dropout if layers > 1 else 0.0))
        if condition == "state":
            self.init = self.add_module("init", Linear(n_features, layers * hidden, dtype=dtype, seed=s(2)))
        self.out = self.add_module("out", Linear(hidden, vocab, dtype=dtype, seed=s(3)))
        self._n_states = 2 if cell == "lstm" else 1
        self.in_drop = self.add_module("in_drop", VariationalDropout(dropout, seed=s(4)))
        self.out_drop = self.add_module("out_drop", VariationalDropout(dropout, seed=s(5)))

    def initial_state(self, v: np.ndarray):
        """Decoder initial state from v (B, F): (L, B, H) h0 (tuple (h0, c0) for LSTM), None for "input"."""
        if self.condition != "state":
            return None
        B = v.shape[0]
        h0 = np.tanh(self.init.forward(v)).reshape(B, self.layers, self.hidden).transpose(1, 0, 2)  # (L, B, H)
        self._h0 = h0
        return (h0, np.zeros_like(h0)) if self._n_states == 2 else h0

    def _inputs(self, v, tokens, drop: bool = False):
        x = self.emb.forward(tokens)  # (T, B, E)
        if drop:
            x = self.in_drop.forward(x)
        if self.condition == "input":
            x = np.concatenate([x, np.broadcast_to(v[None], (x.shape[0],) + v.shape).astype(x.dtype)], axis=-1)
        return x

    def forward(self, v, tokens_in, lengths=None) -> np.ndarray:
        v = np.asarray(v, dtype=self.out.dtype)
        state0 = self.initial_state(v)
        h, _ = self.rnn.forward(self._inputs(v, tokens_in, drop=True), state=state0, lengths=lengths)
        return self.out.forward(self.out_drop.forward(h))

    def backward(self, dlogits) -> np.ndarray:
        dx, dstate0 = self.rnn.backward(self.out_drop.backward(self.out.backward(dlogits)))
        E = self.emb.params["weight"].shape[1]
        self.emb.backward(self.in_drop.backward(dx[..., :E]))
        if self.condition == "input":
            return dx[..., E:].sum(axis=0)  # (B, F): v feeds every step
        dh0 = dstate0[0] if self._n_states == 2 else dstate0  # (L, B, H); c0 is a constant 0
        dpre = (dh0 * (1.0 - self._h0 ** 2)).transpose(1, 0, 2).reshape(dh0.shape[1], -1)  # (B, L*H)
        return self.init.backward(dpre)

    def generate(self, v, max_len: int = 20, temperature: float = 0.0, rng=None) -> list[list[int]]:
        """Token ids (without <bos>/<eos>) for each row of v (B, F): greedy when temperature is 0,
        else sampled from softmax(logits / temperature)."""
        v = np.asarray(v, dtype=self.out.dtype)
        rng = np.random.default_rng(rng)
        B = v.shape[0]
        state = self.initial_state(v)

        def step(tokens):
            nonlocal state
            y, state = self.rnn.step(self._inputs(v, tokens[None])[0], state)
            return log_softmax(self.out.forward(y).astype(np.float64))  # (B, V)

        def sample(logp):
            p = np.exp(log_softmax(logp / temperature))
            return np.array([rng.choice(p.shape[1], p=p[b]) for b in range(B)])

        return decode_until_eos(step, B, max_len, BOS, EOS, sample if temperature > 0 else None)
