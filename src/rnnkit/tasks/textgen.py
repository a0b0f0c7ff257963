"""Character-, byte- or word-level text generation, as char-rnn: train on a text, sample text like it.

Data: the text is mapped to ids through a sorted vocabulary of its distinct characters (or bytes), or at
the word level through the words of its training part (`tasks.words`: whitespace-separated tokens, `<eos>`
at each line end, rare words `<unk>`, as WikiText); the last `val_frac` of it is held out, and the
training part is cut into B contiguous streams (B, L). A batch is the next T columns: x = streams[:, i:i+T], y = streams[:, i+1:i+T+1], both (T, B) time-major, and the
final recurrent state of one batch is the initial state of the next (truncated BPTT: the state carries
over, the gradient stops at the batch boundary). Each epoch starts the streams at a random offset in
[0, T) so chunk boundaries move between epochs; the state is reset at the start of every epoch.

Loss: mean softmax cross-entropy in nats per symbol; bits per character = nats / ln 2 (char and byte
level); perplexity = exp(nats) (word level): exp of the mean negative log-likelihood per word.
Sampling: p = softmax(logits / temperature) restricted to the top-k ids; greedy takes the arg-max. A
prime text is run through the model first; without one, generation starts from a newline (or from a
random symbol when the vocabulary has no newline; at the word level from `<eos>`, a line's start).
"""
from __future__ import annotations

import codecs
import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..jsonio import write_json
from ..losses import softmax_cross_entropy
from ..models import CELL_NAMES, RNNLanguageModel
from ..models.language_model import DROPOUTS
from .words import WordVocab, tokenize

TASK = "textgen"
TASK_VERSION = 1
LEVELS = ("char", "byte", "word")
DEFAULT_CORPUS = "pydoc_data.topics"


# -- vocabulary ---------------------------------------------------------------------------------------
class Vocab:
    """Sorted distinct symbols of a corpus: characters (level "char") or byte values (level "byte")."""

    def __init__(self, symbols, level: str = "char"):
        if level not in ("char", "byte"):
            raise ValueError(f"level must be char or byte (words: tasks.words.WordVocab), got {level!r}")
        self.level = level
        self.start = "\n" if level == "char" else 10     # the symbol generation starts from
        self.symbols = sorted(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        if level == "byte":
            self._lut = np.full(256, -1, np.int64)
            self._lut[np.array(self.symbols, dtype=np.int64)] = np.arange(len(self.symbols))

    @classmethod
    def build(cls, data, level: str) -> "Vocab":
        return cls(sorted(set(data)), level)

    def __len__(self) -> int:
        return len(self.symbols)

    def unknown(self, data) -> list:
        """The distinct symbols of `data` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(s for s in data if s not in self.index))

    def encode(self, data) -> np.ndarray:
        """str (char level) or bytes (byte level) -> ids (N,) int32; every symbol must be known."""
        if self.level == "byte":
            ids = self._lut[np.frombuffer(bytes(data), dtype=np.uint8)]
            if (ids < 0).any():
                raise ValueError(f"bytes not in the vocabulary: {self.unknown(data)[:10]}")
            return ids.astype(np.int32)
        try:
            return np.fromiter((self.index[c] for c in data), dtype=np.int32, count=len(data))
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def to_json(self) -> dict:
        return {"level": self.level, "symbols": self.symbols}

    @classmethod
    def from_json(cls, d) -> "Vocab | WordVocab":
        if isinstance(d, dict) and d.get("level") == "word":
            return WordVocab.from_json(d)
        try:
            level, symbols = d["level"], d["symbols"]
            if level == "byte" and not all(isinstance(s, int) and 0 <= s < 256 for s in symbols):
                raise ValueError
            if level == "char" and not all(isinstance(s, str) and len(s) == 1 for s in symbols):
                raise ValueError
            return cls(symbols, level)
        except (KeyError, TypeError, ValueError):
            raise UserError("the checkpoint's vocab.json is not a valid vocabulary") from None

    def decoder(self, after: int | None = None):
        """A function ids -> text for streaming; byte level decodes UTF-8 incrementally (bad bytes as U+FFFD).
        (`after`, the id decoded before, matters at the word level only.)"""
        if self.level == "char":
            return lambda ids: "".join(self.symbols[i] for i in ids)
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda ids: dec.decode(bytes(self.symbols[i] for i in ids))


# -- corpora ------------------------------------------------------------------------------------------
def default_corpus() -> str:
    """The English prose of Python's own documentation (`pydoc_data.topics`), present wherever Python is.

    Topics are joined in sorted order. Lines of ASCII tables and grammar alternatives (stripped lines that
    start with "|", "+-" or "+=", about 8% of the characters, mostly padding) are dropped: they are not
    prose, and their long runs of spaces and bars dominate samples of a briefly trained model.
    """
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise UserError("this Python has no pydoc_data.topics; give a text FILE to train on") from None
    keep = lambda line: not line.lstrip().startswith(("|", "+-", "+="))  # noqa: E731
    docs = ("\n".join(filter(keep, topics[k].strip("\n").split("\n"))) for k in sorted(topics))
    return "\n\n".join(docs) + "\n"


def read_corpus(path, level: str):
    """Read FILE as UTF-8 text (level "char") or raw bytes (level "byte"); bad files raise UserError."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"text file {str(path)!r} does not exist")
    if not p.is_file():
        raise UserError(f"{str(path)!r} is not a file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {str(path)!r}: {e.strerror}") from None
    if not raw:
        raise UserError(f"text file {str(path)!r} is empty")
    if level == "byte":
        return raw
    if b"\x00" in raw:
        raise UserError(f"{str(path)!r} looks binary (it contains NUL bytes); use --level byte to model raw bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{str(path)!r} is not UTF-8 text (bad byte at offset {e.start}); convert it to UTF-8 "
                        "or use --level byte") from None
    return text.lstrip("\ufeff")


def corpus_digest(data) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return hashlib.sha256(raw).hexdigest()


# -- data: contiguous streams ---------------------------------------------------------------------------
def split(ids: np.ndarray, val_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """The first (1 - val_frac) of the ids for training, the rest (the end of the text) for validation."""
    n_val = int(len(ids) * val_frac)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


def stream_batches(ids: np.ndarray, batch: int, seq_len: int, offset: int = 0):
    """Yield (x (T, B), y (T, B), reset) over B contiguous streams of ids[offset:]; reset marks the first."""
    L = (len(ids) - offset) // batch
    streams = ids[offset: offset + batch * L].reshape(batch, L)     # (B, L), stream b is contiguous
    for i in range(0, L - 1, seq_len):
        n = min(seq_len, L - 1 - i)
        x = np.ascontiguousarray(streams[:, i:i + n].T)             # (T, B)
        y = np.ascontiguousarray(streams[:, i + 1:i + n + 1].T)     # (T, B)
        yield x, y, i == 0


def check_sizes(n_train: int, n_val: int, batch: int, seq_len: int, val_frac: float) -> None:
    need = batch * (seq_len + 1)
    if n_train < need:
        raise UserError(f"the training text has {n_train} symbols but one batch needs --batch {batch} x "
                        f"(--seq-len {seq_len} + 1) = {need}; give a longer text or lower --batch/--seq-len")
    if val_frac > 0 and n_val < 2:
        raise UserError(f"--val-frac {val_frac} leaves {n_val} symbols for validation (at least 2 needed); "
                        "raise it or use --val-frac 0")


def evaluate(model: RNNLanguageModel, ids: np.ndarray, batch: int, seq_len: int) -> float:
    """Mean cross-entropy (nats per symbol) of predicting ids[1:] from ids[:-1], state carried throughout."""
    B = max(1, min(batch, (len(ids) - 1) // max(1, seq_len)))
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y, _ in stream_batches(ids, B, seq_len):
        logits, state = model.forward(x, state)
        loss, _ = softmax_cross_entropy(logits, y)
        total += loss * y.size
        count += y.size
    model.train(was_training)
    return total / count if count else float("nan")


class CarriedState:
    """The hidden state carried between batches, exposed to the Trainer for checkpoints and recovery."""

    def __init__(self, shapes: list[tuple[int, ...]] | None = None):
        self.state = None
        self.shapes = shapes     # the parts a valid state has, e.g. [(L, B, H)] * 2 for an LSTM

    def state_dict(self) -> dict:
        if self.state is None:
            return {}
        parts = self.state if isinstance(self.state, tuple) else (self.state,)
        return {f"s{i}": p for i, p in enumerate(parts)}

    def load_state_dict(self, d: dict) -> None:
        if not d:
            self.state = None
            return
        parts = tuple(np.array(d[f"s{i}"]) for i in range(len(d)))
        if self.shapes is not None and [p.shape for p in parts] != [tuple(s) for s in self.shapes]:
            raise ValueError(f"the carried state has parts {[p.shape for p in parts]}, this model needs "
                             f"{[tuple(s) for s in self.shapes]} (a state file of another model?)")
        self.state = parts if len(parts) > 1 else parts[0]


def make_train_step(model: RNNLanguageModel, carry: CarriedState):
    """The Trainer's train_step for a stream batch (x, y, reset): forward from the carried state, loss, backward."""
    def train_step(batch):
        x, y, reset = batch
        if reset:                      # a new epoch: streams start at a new offset, so forget the state
            carry.state = None
        logits, carry.state = model.forward(x, carry.state)
        loss, dlogits = softmax_cross_entropy(logits, y)
        model.backward(dlogits)
        return loss, y.size
    return train_step


# -- configuration ------------------------------------------------------------------------------------
# level -> the dropouts a config leaves at None (see models.language_model for where each acts).
# char: the main job's model at 3,300 steps (its 120 s on a quiet machine) reached validation 1.338 nats
# with these against 1.406 without dropout and 1.348 with output dropout 0.3 alone, at no measurable cost
# per step (docs/readme/textgen.md); byte: not measured, none. word: PyTorch's word_language_model's 0.2
# on the embeddings, between layers and on the output.
DEFAULT_DROPOUT = {
    "char": dict(dropout_input=0.1, dropout_hidden=0.0, dropout_output=0.3, dropout_embedding=0.0, weight_drop=0.2),
    "byte": dict(dropout_input=0.0, dropout_hidden=0.0, dropout_output=0.0, dropout_embedding=0.0, weight_drop=0.0),
    "word": dict(dropout_input=0.2, dropout_hidden=0.2, dropout_output=0.2, dropout_embedding=0.0, weight_drop=0.0),
}


@dataclass
class TextGenConfig:
    level: str = "char"          # char | byte | word
    cell: str = "lstm"
    embed_dim: int | None = None  # None: 64 (char, byte), hidden_size (word: tied weights need E == H)
    hidden_size: int = 256
    num_layers: int = 1
    seq_len: int = 64            # truncated-BPTT length T
    batch: int = 32              # number of contiguous streams B
    val_frac: float = 0.1
    seed: int = 0
    corpus: str = DEFAULT_CORPUS  # a file path or DEFAULT_CORPUS
    corpus_sha256: str = ""
    dtype: str = "float32"       # float32 | float64 (parameters and activations)
    tie_weights: bool | None = None  # head.weight = embedding.weight; None: on at the word level only
    max_vocab: int | None = None  # word level: at most this many ids, <eos> and <unk> included
    min_count: int | None = None  # word level: rarer training words are <unk>; None: 2 (a word seen once
    #                               is <unk>, so the model learns to predict <unk> for unseen words)
    # dropout probabilities (None: DEFAULT_DROPOUT[level]); variational: one mask per sequence for the
    # input and output dropouts (Gal & Ghahramani), else a new one per element and step (nn.Dropout)
    dropout_input: float | None = None
    dropout_hidden: float | None = None
    dropout_output: float | None = None
    dropout_embedding: float | None = None
    weight_drop: float | None = None
    variational: bool = True

    def __post_init__(self):
        if self.level not in LEVELS:
            raise UserError(f"--level must be one of {list(LEVELS)}, got {self.level!r}")
        word = self.level == "word"
        for name in DROPOUTS:
            if getattr(self, name) is None:
                setattr(self, name, DEFAULT_DROPOUT[self.level][name])
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise UserError(f"--{name.replace('_', '-')} must be a probability in [0, 1), got {v!r}")
            setattr(self, name, float(v))
        if self.dropout_hidden > 0 and self.num_layers == 1:
            self.dropout_hidden = 0.0     # between layers: nothing to drop with one layer
        if self.tie_weights is None:
            self.tie_weights = word
        if self.embed_dim is None:
            self.embed_dim = self.hidden_size if self.tie_weights else 64
        if self.min_count is None:
            self.min_count = 2 if word else 1
        if not word and (self.max_vocab is not None or self.min_count != 1):
            raise UserError("--max-vocab and --min-count are for --level word (a character vocabulary is "
                            "every character of the text)")
        if self.max_vocab is not None and (not isinstance(self.max_vocab, int) or self.max_vocab < 3):
            raise UserError(f"--max-vocab must be an integer >= 3 (<eos>, <unk> and a word), got {self.max_vocab!r}")
        if not isinstance(self.min_count, int) or isinstance(self.min_count, bool) or self.min_count < 1:
            raise UserError(f"--min-count must be a positive integer, got {self.min_count!r}")
        if self.cell not in CELL_NAMES:
            raise UserError(f"--cell must be one of {list(CELL_NAMES)}, got {self.cell!r}")
        for n in ("embed_dim", "hidden_size", "num_layers", "seq_len", "batch"):
            v = getattr(self, n)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UserError(f"{n} must be a positive integer, got {v!r}")
        if self.tie_weights and self.embed_dim != self.hidden_size:
            raise UserError(f"tied weights need --embed equal to --hidden (the output layer's weight is the "
                            f"embedding matrix), got --embed {self.embed_dim} and --hidden {self.hidden_size}; "
                            "change one, or pass --no-tie")
        if self.dtype not in ("float32", "float64"):
            raise UserError(f"--dtype must be float32 or float64, got {self.dtype!r}")
        if not (isinstance(self.val_frac, (int, float)) and 0 <= self.val_frac < 1):
            raise UserError(f"--val-frac must be in [0, 1), got {self.val_frac!r}")

    def to_json(self) -> dict:
        return {"task": TASK, "task_version": TASK_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, d) -> "TextGenConfig":
        if not isinstance(d, dict) or d.get("task") != TASK:
            raise UserError("the checkpoint is not a textgen model (config.json names another task)")
        if d.get("task_version") != TASK_VERSION:
            raise UserError(f"the checkpoint is textgen version {d.get('task_version')!r}; this rnnkit reads "
                            f"version {TASK_VERSION}")
        known = {k: v for k, v in d.items() if k not in ("task", "task_version")}
        try:
            return cls(**known)
        except TypeError as e:
            raise UserError(f"the checkpoint's config.json is not valid: {e}") from None


def build_model(cfg: TextGenConfig, vocab_size: int) -> RNNLanguageModel:
    return RNNLanguageModel(vocab_size, cfg.embed_dim, cfg.hidden_size, cfg.num_layers, cfg.cell,
                            dtype=np.dtype(cfg.dtype), seed=cfg.seed, tie_weights=cfg.tie_weights,
                            variational=cfg.variational, **{k: getattr(cfg, k) for k in DROPOUTS})


# -- training -------------------------------------------------------------------------------------------
def train(data, cfg: TextGenConfig, train_cfg, out_dir=None, resume=None, vocab: Vocab | None = None,
          log=print) -> tuple[RNNLanguageModel, Vocab, dict]:
    """Train a language model on `data` (str or bytes); returns (model, vocab, metrics).

    Everything that can be wrong with the input is checked before anything is written. With `out_dir`,
    the checkpoint goes to out_dir/checkpoint and the metrics to out_dir/metrics.json.
    """
    from ..train import Trainer
    from ..train.hooks import local_batch_size

    vocab, ids = encode_corpus(data, cfg, vocab)
    train_ids, val_ids = split(ids, cfg.val_frac)
    check_sizes(len(train_ids), len(val_ids), cfg.batch, cfg.seq_len, cfg.val_frac)
    model = build_model(cfg, len(vocab))
    # under data-parallel training (rnnkit.distributed) each process carries the state of its streams only
    carry = CarriedState([(cfg.num_layers, local_batch_size(cfg.batch), cfg.hidden_size)] * model.rnn.cell.N_STATES)
    meta = {"config": cfg.to_json(), "vocab": vocab.to_json()}
    trainer = Trainer(model, train_cfg, out_dir=out_dir, meta=meta)
    if resume is not None:
        trainer.resume(resume, extra_state=carry)

    def batches(epoch, rng):
        offset = int(rng.integers(0, cfg.seq_len)) if len(train_ids) - cfg.seq_len >= cfg.batch * (cfg.seq_len + 1) else 0
        return stream_batches(train_ids, cfg.batch, cfg.seq_len, offset)

    train_step = make_train_step(model, carry)
    eval_fn = (lambda: evaluate(model, val_ids, cfg.batch, cfg.seq_len)) if len(val_ids) >= 2 else None
    unk = f" ({1 - vocab.coverage(ids):.1%} <unk>)" if cfg.level == "word" else ""
    log(f"rnnkit textgen: {len(ids):,} {cfg.level}s ({len(train_ids):,} train, {len(val_ids):,} validation), "
        f"vocabulary {len(vocab)}{unk}, {cfg.cell.upper()} {cfg.num_layers}x{cfg.hidden_size}"
        f"{', tied weights' if cfg.tie_weights else ''}, {model.num_parameters():,} parameters")
    if cfg.level == "word":        # the bar shows perplexity beside the loss in nats
        trainer.bar_metrics = {"ppl": _perplexity}
    trainer.fit(batches, train_step, eval_fn, carry)
    metrics = final_metrics(trainer, model, train_ids, val_ids, cfg)
    if out_dir is not None:
        write_json(Path(out_dir) / "metrics.json", metrics)
    return model, vocab, metrics


def encode_corpus(data, cfg: TextGenConfig, vocab=None):
    """(vocab, ids (N,)) of the corpus. A word vocabulary is built from the training part only, so words
    first seen in the held-out part are `<unk>` there, as they would be in new text; a character or byte
    vocabulary is every symbol of the text (a resumed model's must hold them all)."""
    if cfg.level == "word":
        tokens = tokenize(data)
        if vocab is None:
            n_train = len(tokens) - int(len(tokens) * cfg.val_frac)
            vocab = WordVocab.build(tokens[:n_train], cfg.max_vocab, cfg.min_count)
        return vocab, vocab.encode(tokens)
    vocab = vocab or Vocab.build(data, cfg.level)
    unknown = vocab.unknown(data)
    if unknown:
        raise UserError(f"the text has symbols not in the resumed model's vocabulary: {unknown[:10]}")
    return vocab, vocab.encode(data)


def _perplexity(nats: float) -> float:
    """exp(mean NLL per word); inf rather than an overflow error for a diverged loss."""
    return math.exp(nats) if nats < 700 else math.inf


def final_metrics(trainer, model, train_ids, val_ids, cfg) -> dict:
    """Losses of the final weights: validation on all held-out text, training on an equal-sized slice."""
    n = max(len(val_ids), min(len(train_ids), 50_000))
    train_loss = evaluate(model, train_ids[:n], cfg.batch, cfg.seq_len)
    val_loss = evaluate(model, val_ids, cfg.batch, cfg.seq_len) if len(val_ids) >= 2 else None
    ln2 = math.log(2)
    if cfg.level == "word":
        scores = {"train_perplexity": _perplexity(train_loss),
                  "val_perplexity": None if val_loss is None else _perplexity(val_loss)}
    else:
        scores = {"train_bits_per_char": train_loss / ln2,
                  "val_bits_per_char": None if val_loss is None else val_loss / ln2}
    return {
        "train_loss_nats": train_loss, "val_loss_nats": val_loss, **scores,
        "train_loss_measured_on": int(n),
        "steps": trainer.step, "epochs_completed": trainer.epoch, "tokens_seen": trainer.items,
        "train_seconds": round(trainer.elapsed, 3),
        "tokens_per_s": trainer.items / trainer.elapsed if trainer.elapsed > 0 else None,
        "nonfinite_steps_skipped": trainer.nonfinite_total, "stopped_early": trainer.stopped_early,
        "level": cfg.level, "vocab_size": model.vocab_size, "parameters": model.num_parameters(),
        "val_history": {"step": trainer.history["val_step"], "loss_nats": trainer.history["val_loss"]},
    }


# -- loading and sampling -------------------------------------------------------------------------------
def load(path) -> tuple[RNNLanguageModel, Vocab, TextGenConfig]:
    """Load a trained model from an output folder (or its checkpoint/ folder); problems raise UserError."""
    from ..train import load_checkpoint
    from ..train.checkpoint import check_config_sizes, checkpoint_content, checkpoint_dir

    path = checkpoint_dir(path)
    arrays, jsons = load_checkpoint(path)
    if "config" not in jsons or "vocab" not in jsons or "model" not in arrays:
        raise UserError(f"{str(path)!r} is not a textgen checkpoint (config, vocab or weights missing)")
    cfg = TextGenConfig.from_json(jsons["config"])
    vocab = Vocab.from_json(jsons["vocab"])
    check_config_sizes(path, arrays["model"], cfg.hidden_size, cfg.num_layers, embedding_width=cfg.embed_dim,
                       vocabulary_size=len(vocab))
    if vocab.level != cfg.level:
        raise UserError(f"checkpoint {str(path)!r} is damaged: its config says level {cfg.level!r}, its "
                        f"vocab.json is a {vocab.level} vocabulary")
    rows = getattr(arrays["model"].get("embedding.weight"), "shape", (None,))[0]
    if rows != len(vocab):
        raise UserError(f"checkpoint {str(path)!r} does not match its vocabulary: vocab.json has {len(vocab)} "
                        f"symbols, the embedding has {rows} rows")
    with checkpoint_content(path):
        model = build_model(cfg, len(vocab))
        model.load_state_dict(arrays["model"])
    return model.eval(), vocab, cfg


UNKNOWN_PRIME = ("error", "skip", "unk")


def prime_tokens(vocab, prime: str):
    """The prime as the model's symbols: bytes, characters, or words tokenised as the training text
    (an `<eos>` only where the prime has a line end)."""
    if vocab.level == "byte":
        return prime.encode("utf-8")
    if vocab.level == "word":
        tokens = tokenize(prime)
        return tokens if prime.endswith("\n") or not tokens else tokens[:-1]
    return prime


def encode_prime(vocab, prime: str, unknown: str = "error", warn=None) -> np.ndarray:
    """Prime text -> ids. Unknown symbols raise UserError (unknown="error"), are dropped ("skip") or, at
    the word level, become `<unk>` ("unk")."""
    if unknown not in UNKNOWN_PRIME:
        raise ValueError(f"unknown must be one of {UNKNOWN_PRIME}, got {unknown!r}")
    data = prime_tokens(vocab, prime)
    bad = vocab.unknown(data)
    if unknown == "unk" and vocab.level != "word":
        raise UserError("--unknown unk is for word-level models (a character model has no <unk>); "
                        "use --unknown skip or error")
    if bad:
        what = "word" if vocab.level == "word" else "symbol"
        shown = ", ".join(repr(chr(b) if isinstance(b, int) and b < 128 else b) for b in bad[:10])
        if unknown == "error":
            fix = "skip to drop them" + (" or --unknown unk to read them as <unk>" if what == "word" else "")
            raise UserError(f"the prime text has {len(bad)} {what}(s) not in the model's vocabulary: {shown}; "
                            f"change the prime or pass --unknown {fix}")
        if unknown == "unk":
            return vocab.encode(data)                   # unknown words are <unk> ids
        data = [s for s in data if s in vocab.index]
        if warn is not None:
            warn(f"rnnkit: dropped prime {what}s not in the vocabulary: {shown}")
        data = bytes(data) if vocab.level == "byte" else data if vocab.level == "word" else "".join(data)
    return vocab.encode(data)


def pick(logits: np.ndarray, rng, temperature: float = 1.0, top_k: int | None = None) -> int:
    """Draw one id from softmax(logits / temperature) over the top-k ids; temperature 0 = greedy."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(z))
    z = z / temperature
    if top_k is not None and top_k < len(z):
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max())
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, rng.random() * c[-1], side="right"), len(z) - 1))


def generate(model: RNNLanguageModel, vocab: Vocab, length: int = 500, temperature: float = 1.0,
             top_k: int | None = None, prime_ids=None, seed: int | None = None):
    """Yield generated text piece by piece (one symbol at a time; byte level may yield '' mid-character)."""
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rng = np.random.default_rng(seed)
    model.eval()
    if prime_ids is None or len(prime_ids) == 0:
        nl = vocab.start
        prime_ids = np.array([vocab.index[nl] if nl in vocab.index else int(rng.integers(len(vocab)))])
    decode = vocab.decoder(after=int(prime_ids[-1]))
    logits, state = model.forward(np.asarray(prime_ids).reshape(-1, 1))   # (P, 1, V)
    logits = logits[-1, 0]
    for _ in range(length):
        i = pick(logits, rng, temperature, top_k)
        yield decode([i])
        out, state = model.step(np.array([i]), state)
        logits = out[0]
