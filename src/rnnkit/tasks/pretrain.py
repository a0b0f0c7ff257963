"""Language-model pretraining for a text classifier, after ULMFiT (Howard & Ruder 2018).

Before the classifier is trained, an `RNNLanguageModel` (Embedding -> RNN -> Linear) with the
classifier's vocabulary, embedding width, cell, hidden size and layers learns to predict the next word
of each training sentence (and of any extra text the user gives). Its embedding and recurrent weights
then initialise the classifier's, which is fine-tuned as usual. For a bidirectional classifier a
second language model reads every sentence backwards and initialises the reverse direction (ULMFiT's
backward model); it starts from the forward model's embedding and keeps it fixed, so both directions
were trained on the one embedding the classifier gets.

Per sentence of ids s (length n): x_t = s_t, target y_t = s_{t+1} for t < n-1 and y_{n-1} = EOS (id 0,
the padding id, never an input), so the recurrent layer sees exactly what it will see in the classifier,
starting from a zero state. Padded steps are masked out of the loss.
"""
from __future__ import annotations

import numpy as np

from ..losses.functional import softmax_cross_entropy
from ..models.language_model import RNNLanguageModel
from ..train import TrainConfig, Trainer
from .batching import length_buckets

EOS = 0  # the padding id doubles as end of sentence in the LM targets


def _lm_batch(seqs, idx, reverse: bool):
    """x (T, B) ids, y (T, B) next ids, mask (T, B) for sentences seqs[idx] (reversed when `reverse`)."""
    rows = [seqs[i][::-1] if reverse else seqs[i] for i in idx]
    T = max(len(r) for r in rows)
    x = np.zeros((T, len(rows)), dtype=np.int64)
    y = np.zeros((T, len(rows)), dtype=np.int64)
    mask = np.zeros((T, len(rows)), dtype=bool)
    for b, r in enumerate(rows):
        x[:len(r), b] = r
        y[:len(r) - 1, b] = r[1:]
        y[len(r) - 1, b] = EOS
        mask[:len(r), b] = True
    return x, y, mask


def pretrain_language_model(seqs, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int,
                            cell: str, epochs: int, lr: float = 3e-3, batch_size: int = 32, seed: int = 0,
                            reverse: bool = False, embedding=None, freeze_embedding: bool = False,
                            dtype=np.float32) -> RNNLanguageModel:
    """A language model trained for `epochs` passes over the id sequences `seqs` (each (n_i,) ints).

    `embedding` (V, E): start from it (pretrained vectors); `freeze_embedding`: and keep it fixed (the
    backward model of a bidirectional pair)."""
    lm = RNNLanguageModel(vocab_size, embed_dim, hidden_size, num_layers, cell=cell, dtype=dtype, seed=seed)
    if embedding is not None:
        lm.embedding.params["weight"][...] = embedding
    frozen = embedding is not None and freeze_embedding
    seqs = [s for s in seqs if len(s) > 0]
    cfg = TrainConfig(epochs=int(epochs), lr=float(lr), clip=5.0, eval_every=0, seed=int(seed), progress=False)

    def train_step(idx):
        x, y, mask = _lm_batch(seqs, idx, reverse)
        logits, _ = lm.forward(x)                              # (T, B, V)
        loss, dlogits = softmax_cross_entropy(logits, y, mask)
        lm.backward(dlogits)
        if frozen:  # zero gradient from the start: Adam's moments stay 0, so the rows never move
            lm.embedding.grads["weight"][...] = 0.0
        return loss, int(mask.sum())

    Trainer(lm, cfg).fit(length_buckets([len(s) for s in seqs], batch_size), train_step)
    return lm.eval()


def transfer(lm: RNNLanguageModel, net, reverse: bool = False, embedding: bool = True) -> list[str]:
    """Copy the language model's weights into a `SequenceNet` `net`; returns the names copied.

    embedding.weight -> embed.weight; rnn.<name> -> rnn.<name> (or rnn.<name>_reverse for the backward
    model). A parameter whose shape differs (the upper layers of a bidirectional stack read 2H features,
    the LM's read H) keeps its initialisation."""
    target = net.params
    copied = []
    pairs = [(f"rnn.{k}", f"rnn.{k}_reverse" if reverse else f"rnn.{k}") for k in lm.rnn.params]
    if embedding:
        pairs.append(("embedding.weight", "embed.weight"))
    source = lm.params
    for src, dst in pairs:
        if dst in target and target[dst].shape == source[src].shape:
            target[dst][...] = source[src]
            copied.append(dst)
    return copied
