"""Machine translation with the encoder-decoder (`rnnkit.models.seq2seq`): data, training, metrics, inference.

Data: a TSV of `source<TAB>target` pairs (extra columns ignored, as in the manythings/Tatoeba files).
Tokens are words and punctuation marks; a token that follows whitespace carries a leading "▁" (as
SentencePiece marks word starts), so `detokenize(tokenize(s))` restores s up to whitespace runs.
The held-out split is by *source sentence*: every pair of a held-out source is held out, and all of its
targets are references for BLEU (several references per sentence, as sacreBLEU's multi-reference mode).
Metrics: corpus BLEU (sacreBLEU's default, `rnnkit.tasks.bleu`) and exact match against any reference.
"""
from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..jsonio import write_json
from ..layers.dropout import check_probability
from ..losses.functional import softmax_cross_entropy
from ..models.seq2seq import BOS, EOS, PAD, UNK, Seq2Seq
from ..train.checkpoint import check_config_sizes, checkpoint_content, checkpoint_dir
from .batching import length_buckets
from .bleu import corpus_bleu, exact_match

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
_TOKEN = re.compile(r"(\s*)(\w+|[^\w\s])")
MARK = "\u2581"  # "▁"


@dataclass
class TranslateConfig:
    embed: int = 64
    hidden: int = 128            # per encoder direction; the decoder has num_directions * hidden
    layers: int = 1
    cell: str = "lstm"
    bidirectional: bool = True
    attention: str = "general"   # "general", "dot" or "none"
    min_freq: int = 1            # rarer training tokens become <unk>
    max_len: int = 30            # decoding limit in target tokens
    dropout: float = 0.0         # Seq2Seq's: the RNNs' inputs, between layers, before the output layer


def tokenize(text: str) -> list[str]:
    """Words and punctuation; tokens after whitespace (not the first) get the "▁" mark."""
    out = []
    for space, tok in _TOKEN.findall(text.strip()):
        out.append((MARK + tok) if space and out else tok)
    return out


def detokenize(tokens: list[str]) -> str:
    return "".join(tokens).replace(MARK, " ").strip()


def read_pairs(path) -> list[tuple[str, str]]:
    """(source, target) pairs of a TSV file; UserError names the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    pairs = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            if n == len(lines):
                continue
            raise UserError(f"{path}:{n}: empty line; every line must be 'source<TAB>target'")
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise UserError(f"{path}:{n}: a pair needs a non-empty source and target separated by a tab, "
                            f"got {line[:60]!r}")
        pairs.append((cols[0].strip(), cols[1].strip()))
    if not pairs:
        raise UserError(f"{path}: no sentence pairs")
    return pairs


def split_by_source(pairs, test_fraction: float, seed: int):
    """(train pairs, held-out {source: [references]}) with whole source sentences held out."""
    sources = sorted({s for s, _ in pairs})
    random.Random(seed).shuffle(sources)
    n_test = int(round(len(sources) * test_fraction))
    held = set(sources[:n_test])
    test: dict[str, list[str]] = {}
    train = []
    for s, t in pairs:
        if s in held:
            test.setdefault(s, []).append(t)
        else:
            train.append((s, t))
    return train, test


class Vocab:
    """Token <-> id with the four specials first."""

    def __init__(self, tokens: list[str]):
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences, min_freq: int = 1) -> "Vocab":
        counts = Counter(t for s in sentences for t in tokenize(s))
        return cls(SPECIALS + sorted(t for t, c in counts.items() if c >= min_freq))

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokenize(text)]

    def decode(self, ids) -> str:
        return detokenize([self.itos[i] if i != UNK else MARK + self.itos[i]
                           for i in ids if i >= len(SPECIALS) or i == UNK])

    def __len__(self):
        return len(self.itos)


def pad_ids(seqs: list[list[int]], bos: bool = False, eos: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Time-major padded ids (T, B) and lengths (B,), optionally with <bos> prefix or <eos> suffix."""
    seqs = [([BOS] if bos else []) + s + ([EOS] if eos else []) for s in seqs]
    lengths = np.array([len(s) for s in seqs])
    out = np.full((lengths.max(), len(seqs)), PAD, dtype=np.int64)
    for b, s in enumerate(seqs):
        out[: len(s), b] = s
    return out, lengths


def seq2seq_step(model: Seq2Seq, src_ids, tgt_ids) -> tuple[float, int]:
    """Teacher-forced forward, token cross-entropy (mean over target tokens) and backward."""
    src, src_len = pad_ids(src_ids)
    tgt_in, tgt_len = pad_ids(tgt_ids, bos=True)
    tgt_out, _ = pad_ids(tgt_ids, eos=True)
    logits = model.forward(src, src_len, tgt_in, tgt_len)
    mask = np.arange(tgt_in.shape[0])[:, None] < tgt_len[None, :]
    loss, dlogits = softmax_cross_entropy(logits, tgt_out, mask)
    model.backward(dlogits)
    return loss, int(mask.sum())


def build_model(cfg: TranslateConfig, n_src: int, n_tgt: int, seed=None) -> Seq2Seq:
    return Seq2Seq(n_src, n_tgt, cfg.embed, cfg.hidden, cfg.layers, cfg.cell, cfg.bidirectional,
                   None if cfg.attention == "none" else cfg.attention, seed=seed, dropout=cfg.dropout)


def translate_batch(model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab, sentences: list[str], beam: int = 1,
                    max_len: int = 30, length_penalty: float = 1.0, batch: int = 128) -> list[str]:
    """Translations of `sentences`: batched greedy decoding for beam 1, else beam search per sentence."""
    model.eval()
    out = []
    ids = [src_vocab.encode(s) or [UNK] for s in sentences]
    if beam <= 1:
        for i in range(0, len(ids), batch):
            src, src_len = pad_ids(ids[i:i + batch])
            out += [tgt_vocab.decode(h) for h in model.greedy(src, src_len, max_len)]
    else:
        out = [tgt_vocab.decode(model.beam_search(s, beam, max_len, length_penalty)) for s in ids]
    return out


def evaluate(model, src_vocab, tgt_vocab, test: dict[str, list[str]], beam: int = 1, max_len: int = 30) -> dict:
    """BLEU (sacreBLEU default, all references) and exact match (against any reference)."""
    sources = list(test)
    hyps = translate_batch(model, src_vocab, tgt_vocab, sources, beam, max_len)
    k = max(len(r) for r in test.values())
    streams = [[test[s][min(j, len(test[s]) - 1)] for s in sources] for j in range(k)]  # repeat to pad
    em = float(np.mean([max(exact_match([h], [r]) for r in test[s]) for h, s in zip(hyps, sources)]))
    return {"bleu": corpus_bleu(hyps, streams), "exact_match": em, "n": len(sources),
            "examples": [[s, h, test[s][0]] for s, h in list(zip(sources, hyps))[:5]]}


def train_translate(pairs_path, out_dir, train_config, cfg: TranslateConfig, test_fraction: float = 0.05,
                    batch_size: int = 64, beam: int = 1, resume=None) -> dict:
    """Train on a TSV of pairs with a held-out split; writes out_dir/checkpoint and out_dir/metrics.json."""
    from ..train import Trainer, load_checkpoint

    out_dir = Path(out_dir)
    pairs = read_pairs(pairs_path)
    train, test = split_by_source(pairs, test_fraction, train_config.seed)
    if not train:
        raise UserError(f"{pairs_path}: no training pairs left after holding out {test_fraction:.0%}")
    if resume is not None:
        rpath = checkpoint_dir(resume)
        arrays, jsons = load_checkpoint(rpath)
        if "translate_config" not in jsons:
            raise UserError(f"{resume}: not a 'rnnkit translate' checkpoint")
        cfg, src_vocab, tgt_vocab = _saved_config(rpath, arrays, jsons)
    else:
        src_vocab = Vocab.build([s for s, _ in train], cfg.min_freq)
        tgt_vocab = Vocab.build([t for _, t in train], cfg.min_freq)
    src_ids = [src_vocab.encode(s) or [UNK] for s, _ in train]
    tgt_ids = [tgt_vocab.encode(t) for _, t in train]
    model = build_model(cfg, len(src_vocab), len(tgt_vocab), seed=train_config.seed)
    trainer = Trainer(model, train_config, out_dir, meta={"translate_config": asdict(cfg),
                                                           "src_vocab": src_vocab.itos, "tgt_vocab": tgt_vocab.itos})
    if resume is not None:
        trainer.resume(resume)

    def train_step(idx):
        return seq2seq_step(model, [src_ids[i] for i in idx], [tgt_ids[i] for i in idx])

    val = [(src_vocab.encode(s) or [UNK], tgt_vocab.encode(refs[0])) for s, refs in list(test.items())[:512]]

    def eval_fn():
        model.eval()
        src, src_len = pad_ids([v[0] for v in val])
        tgt_in, tgt_len = pad_ids([v[1] for v in val], bos=True)
        tgt_out, _ = pad_ids([v[1] for v in val], eos=True)
        logits = model.forward(src, src_len, tgt_in, tgt_len)
        model.train()
        return softmax_cross_entropy(logits, tgt_out, np.arange(tgt_in.shape[0])[:, None] < tgt_len[None])[0]

    trainer.fit(length_buckets([len(s) + len(t) for s, t in zip(src_ids, tgt_ids)], batch_size), train_step,
                eval_fn if val else None)
    t0 = time.perf_counter()
    metrics = {"task": "translate", "train_pairs": len(train), "test_sources": len(test),
               "src_vocab": len(src_vocab), "tgt_vocab": len(tgt_vocab), "steps": trainer.step,
               "epochs": trainer.epoch, "train_seconds": round(trainer.elapsed, 2),
               "final_train_loss": float(np.mean(trainer.history["loss"][-20:])) if trainer.history["loss"] else None,
               "val_loss": trainer.history["val_loss"][-1] if trainer.history["val_loss"] else None,
               "config": asdict(cfg), "beam": beam}
    if test:
        metrics["test"] = evaluate(model, src_vocab, tgt_vocab, test, beam, cfg.max_len)
    metrics["eval_seconds"] = round(time.perf_counter() - t0, 2)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def load_translator(model_dir):
    """(model, src_vocab, tgt_vocab, config) saved by `train_translate` in model_dir."""
    from ..train import load_checkpoint

    path = Path(model_dir) / "checkpoint"
    arrays, jsons = load_checkpoint(path)
    if "translate_config" not in jsons:
        raise UserError(f"{model_dir}: not a 'rnnkit translate' model folder")
    cfg, src_vocab, tgt_vocab = _saved_config(path, arrays, jsons)
    with checkpoint_content(path):
        model = build_model(cfg, len(src_vocab), len(tgt_vocab))
        model.load_state_dict(arrays["model"])
    return model.eval(), src_vocab, tgt_vocab, cfg


def _saved_config(path, arrays, jsons) -> tuple[TranslateConfig, Vocab, Vocab]:
    """The config and vocabularies of a translate checkpoint, checked against its saved weights."""
    with checkpoint_content(path):
        cfg = TranslateConfig(**jsons["translate_config"])
        check_probability("dropout", cfg.dropout)
        if not all(isinstance(w, str) for k in ("src_vocab", "tgt_vocab") for w in jsons[k]):
            raise TypeError("the vocabularies must be lists of words")
        src_vocab, tgt_vocab = Vocab(jsons["src_vocab"]), Vocab(jsons["tgt_vocab"])
        if "model" in arrays:
            H = cfg.hidden
            check_config_sizes(path, arrays["model"], (H, 2 * H) if cfg.bidirectional else H, cfg.layers,
                               embedding_width=cfg.embed)
    return cfg, src_vocab, tgt_vocab
