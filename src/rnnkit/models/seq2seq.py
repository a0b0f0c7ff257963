"""Encoder-decoder (sequence to sequence) with optional Luong attention; teacher forcing, greedy and beam search.

Sutskever, Vinyals, Le, "Sequence to Sequence Learning with Neural Networks", 2014; Luong et al. 2015 for
the attention (`rnnkit.layers.attention`). The encoder (optionally bidirectional) reads the source; its final
state initialises the decoder: for layer l, h0_dec[l] = [h_fwd[l]; h_bwd[l]] (so the decoder's hidden size
is num_directions * hidden, and no extra parameters are needed). Under teacher forcing the decoder reads
<bos> y_1 ... y_{n} and is trained to emit y_1 ... y_n <eos>; attention reads the decoder outputs, so
training is one pass of each RNN plus batched attention.

Dropout p (Gal & Ghahramani 2016, as in `rnnkit.layers.dropout`): variational dropout on both RNNs'
inputs (the embedded tokens, one mask per sentence and feature) and on the vectors the output layer reads,
and element-wise dropout between stacked layers; teacher-forced training only (decoding runs in eval mode).

Shapes: S source steps, T target steps, B batch, E embedding, H = nd * hidden decoder size, V vocabularies.
Token ids: 0 <pad>, 1 <bos>, 2 <eos>, 3 <unk> in both vocabularies.
"""
from __future__ import annotations

import numpy as np

from ..layers.attention import Attention, source_mask
from ..layers.base import Module
from ..layers.dropout import VariationalDropout
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..losses.functional import log_softmax
from .decoding import decode_until_eos
from ..layers.recurrent import make_rnn

PAD, BOS, EOS, UNK = 0, 1, 2, 3


def _map_state(state, f):
    return tuple(f(s) for s in state) if isinstance(state, tuple) else f(state)


def bridge(h_n: np.ndarray, layers: int, nd: int) -> np.ndarray:
    """Encoder final states (L*nd, B, h) -> decoder initial states (L, B, nd*h), directions side by side."""
    _, B, h = h_n.shape
    return h_n.reshape(layers, nd, B, h).transpose(0, 2, 1, 3).reshape(layers, B, nd * h)


def bridge_backward(dh0: np.ndarray, layers: int, nd: int) -> np.ndarray:
    """Gradient of `bridge`: (L, B, nd*h) -> (L*nd, B, h)."""
    L, B, H = dh0.shape
    return dh0.reshape(layers, B, nd, H // nd).transpose(0, 2, 1, 3).reshape(layers * nd, B, H // nd)


class Seq2Seq(Module):
    """Encoder-decoder over token ids. forward(src, src_len, tgt_in, tgt_len) -> logits (T, B, V_tgt)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embed: int = 64, hidden: int = 128, layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = True, attention: str | None = "general",
                 dtype=np.float32, seed=None, dropout: float = 0.0):
        super().__init__()
        s = (lambda k: None) if seed is None else (lambda k: seed + k)
        self.layers, self.nd = layers, 2 if bidirectional else 1
        H = self.nd * hidden
        between = dropout if layers > 1 else 0.0                     # a one-layer stack has no "between"
        self.src_emb = self.add_module("src_emb", Embedding(src_vocab, embed, dtype=dtype, seed=s(0)))
        self.encoder = self.add_module("encoder", make_rnn(cell, embed, hidden, num_layers=layers,
                                                           bidirectional=bidirectional, dtype=dtype, seed=s(1),
                                                           dropout=between))
        self.tgt_emb = self.add_module("tgt_emb", Embedding(tgt_vocab, embed, dtype=dtype, seed=s(2)))
        self.decoder = self.add_module("decoder", make_rnn(cell, embed, H, num_layers=layers, dtype=dtype,
                                                           seed=s(3), dropout=between))
        self.attention = (self.add_module("attention", Attention(H, H, attention, dtype=dtype, seed=s(4)))
                          if attention else None)
        self.out = self.add_module("out", Linear(H, tgt_vocab, dtype=dtype, seed=s(5)))
        self.src_drop = self.add_module("src_drop", VariationalDropout(dropout, seed=s(6)))
        self.tgt_drop = self.add_module("tgt_drop", VariationalDropout(dropout, seed=s(7)))
        self.out_drop = self.add_module("out_drop", VariationalDropout(dropout, seed=s(8)))

    # -- teacher forcing ---------------------------------------------------------------------------
    def encode(self, src: np.ndarray, src_len):
        """Encoder outputs (S, B, H), decoder initial state, source mask (S, B)."""
        x = self.src_drop.forward(self.src_emb.forward(src))         # (S, B, E)
        enc_out, enc_state = self.encoder.forward(x, lengths=np.asarray(src_len))
        state0 = _map_state(enc_state, lambda s: bridge(s, self.layers, self.nd))
        return enc_out, state0, source_mask(src_len, src.shape[0])

    def forward(self, src, src_len, tgt_in, tgt_len) -> np.ndarray:
        enc_out, state0, mask = self.encode(src, src_len)
        self._enc_shape = enc_out.shape  # backward needs it when no attention reads enc_out
        y = self.tgt_drop.forward(self.tgt_emb.forward(tgt_in))      # (T, B, E)
        dec_out, _ = self.decoder.forward(y, state=state0, lengths=np.asarray(tgt_len))
        if self.attention is not None:
            dec_out = self.attention.forward(dec_out, enc_out, mask)
        return self.out.forward(self.out_drop.forward(dec_out))

    def backward(self, dlogits: np.ndarray) -> None:
        d = self.out_drop.backward(self.out.backward(dlogits))      # (T, B, H)
        if self.attention is not None:
            d, denc = self.attention.backward(d)
        else:
            denc = None
        dx_dec, dstate0 = self.decoder.backward(d)
        self.tgt_emb.backward(self.tgt_drop.backward(dx_dec))
        denc_state = _map_state(dstate0, lambda s: bridge_backward(s, self.layers, self.nd))
        if denc is None:
            denc = np.zeros(self._enc_shape, dtype=d.dtype)
        dx_enc, _ = self.encoder.backward(denc, denc_state)
        self.src_emb.backward(self.src_drop.backward(dx_enc))

    # -- inference ---------------------------------------------------------------------------------
    def _step(self, tokens: np.ndarray, state, enc_out, mask):
        """Log-probabilities (B, V) of the next token after `tokens` (B,), and the new state."""
        y, state = self.decoder.step(self.tgt_emb.forward(tokens), state)  # (B, H)
        if self.attention is not None:
            y = self.attention.forward(y[None], enc_out, mask)[0]
        return log_softmax(self.out.forward(y).astype(np.float64)), state

    def greedy(self, src, src_len, max_len: int = 30) -> list[list[int]]:
        """Greedy decoding of a batch; returns token ids without <bos>/<eos>."""
        enc_out, state, mask = self.encode(src, src_len)

        def step(tokens):
            nonlocal state
            logp, state = self._step(tokens, state, enc_out, mask)
            return logp

        return decode_until_eos(step, src.shape[1], max_len, BOS, EOS)

    def beam_search(self, src_ids, beam: int = 5, max_len: int = 30, length_penalty: float = 1.0) -> list[int]:
        """Beam search for one source sentence (list of ids). Finished hypotheses are ranked by
        log p / len^length_penalty (len counts <eos>); returns the best, without <bos>/<eos>."""
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        src = np.asarray(src_ids, dtype=np.int64)[:, None]  # (S, 1)
        enc_out, state, mask = self.encode(src, [len(src_ids)])
        enc_k, mask_k = enc_out, mask
        seqs: list[list[int]] = [[]]
        scores = np.zeros(1)
        finished: list[tuple[float, list[int]]] = []
        for t in range(max_len):
            K = len(seqs)
            if enc_k.shape[1] != K:
                enc_k, mask_k = np.repeat(enc_out, K, axis=1), np.repeat(mask, K, axis=1)
            tokens = np.array([s[-1] if s else BOS for s in seqs])
            logp, state = self._step(tokens, state, enc_k, mask_k)  # (K, V)
            cand = (scores[:, None] + logp).ravel()
            top = np.argsort(-cand)[: 2 * beam]
            new_seqs, new_scores, keep = [], [], []
            for rank, idx in enumerate(top):
                k, v = divmod(int(idx), logp.shape[1])
                if v == EOS:  # an ending counts only if it ranks within the beam (width 1 = greedy)
                    if rank < beam:
                        finished.append((cand[idx] / (t + 1) ** length_penalty, seqs[k]))
                elif len(new_seqs) < beam:
                    new_seqs.append(seqs[k] + [v])
                    new_scores.append(cand[idx])
                    keep.append(k)
            if len(finished) >= beam or not new_seqs:
                break
            seqs, scores = new_seqs, np.array(new_scores)
            state = _map_state(state, lambda s: s[:, keep])
        if not finished:
            finished = [(sc / max(len(s), 1) ** length_penalty, s) for sc, s in zip(scores, seqs)]
        return max(finished, key=lambda f: f[0])[1]
