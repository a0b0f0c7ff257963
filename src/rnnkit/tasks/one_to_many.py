"""One-to-many tasks on `VectorToSequence`: spell a digit image's name, generate a surname for a language.

- `spell_digits`: scikit-learn's 8x8 digits (1,797 images, pixels 0-16 scaled to [0, 1]) -> "zero" ..
  "nine", character by character; metrics on a held-out split: exact name rate (the spelled word is the
  right one) and CER.
- names: `names/<Language>.txt` (one surname per line) -> a one-hot language vector conditions a
  character decoder; metric: held-out cross-entropy per character; `sample_names` draws new surnames.

Both train with the shared `Trainer` (`rnnkit.train`) and save a checkpoint with their vocabulary.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..jsonio import write_json
from ..layers.dropout import check_probability
from ..losses.functional import softmax_cross_entropy
from ..models.one_to_many import BOS, EOS, PAD, VectorToSequence
from .batching import length_buckets
from .ctc_decode import cer

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPECIALS = ["<pad>", "<bos>", "<eos>"]


@dataclass
class OneToManyConfig:
    embed: int = 32
    hidden: int = 64
    layers: int = 1
    cell: str = "lstm"
    condition: str = "state"     # "state" (initial state from the vector) or "input" (vector at every step)
    alphabet: str = ""           # output characters; token id k + 3 is alphabet[k]
    labels: tuple = ()           # names of the vector's one-hot entries (names task)
    dropout: float = 0.0         # VectorToSequence's: the RNN's input and output, between layers


def encode(text: str, alphabet: str) -> list[int]:
    return [alphabet.index(c) + len(SPECIALS) for c in text]


def decode(ids, alphabet: str) -> str:
    return "".join(alphabet[i - len(SPECIALS)] for i in ids if i >= len(SPECIALS))


def teacher_forcing(texts_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inputs <bos> y (T, B), targets y <eos> (T, B), lengths (B,) and mask (T, B) of token-id lists."""
    L = np.array([len(t) + 1 for t in texts_ids])
    tin = np.full((L.max(), len(texts_ids)), PAD, np.int64)
    tout = np.full((L.max(), len(texts_ids)), PAD, np.int64)
    for b, t in enumerate(texts_ids):
        tin[: len(t) + 1, b] = [BOS] + t
        tout[: len(t) + 1, b] = t + [EOS]
    return tin, tout, L, np.arange(L.max())[:, None] < L[None]


def batch_step(model: VectorToSequence, v, texts_ids) -> tuple[float, int]:
    """Teacher-forced forward, cross-entropy per token (mean) and backward on one batch."""
    tin, tout, L, mask = teacher_forcing(texts_ids)
    loss, d = softmax_cross_entropy(model.forward(v, tin, L), tout, mask)
    model.backward(d)
    return loss, int(mask.sum())


def build_model(cfg: OneToManyConfig, n_features: int, seed=None) -> VectorToSequence:
    return VectorToSequence(n_features, len(SPECIALS) + len(cfg.alphabet), cfg.embed, cfg.hidden, cfg.layers,
                            cfg.cell, cfg.condition, seed=seed, dropout=cfg.dropout)


def fit(vectors: np.ndarray, texts: list[str], cfg: OneToManyConfig, train_config, out_dir=None,
        batch_size: int = 64, val=None, meta_key: str = "one_to_many_config") -> tuple[VectorToSequence, object]:
    """Train a VectorToSequence on (vector, text) pairs with the Trainer; returns (model, trainer).
    val: optional (vectors, texts) whose teacher-forced cross-entropy is the validation loss."""
    from ..train import Trainer

    if not cfg.alphabet:
        cfg.alphabet = "".join(sorted({c for t in texts for c in t}))
    ids = [encode(t, cfg.alphabet) for t in texts]
    vectors = np.asarray(vectors, dtype=np.float32)
    model = build_model(cfg, vectors.shape[1], seed=train_config.seed)
    trainer = Trainer(model, train_config, out_dir, meta={meta_key: asdict(cfg)})

    def train_step(idx):
        return batch_step(model, vectors[idx], [ids[i] for i in idx])

    eval_fn = None
    if val is not None:
        vv = np.asarray(val[0], dtype=np.float32)
        vids = [encode(t, cfg.alphabet) for t in val[1]]

        def eval_fn():
            model.eval()
            loss = _teacher_forced_loss(model, vv, vids)
            model.train()
            return loss

    trainer.fit(length_buckets([len(t) for t in ids], batch_size), train_step, eval_fn)
    return model, trainer


def _teacher_forced_loss(model, v, ids) -> float:
    tin, tout, L, mask = teacher_forcing(ids)
    return softmax_cross_entropy(model.forward(v, tin, L), tout, mask)[0]


# -- digits -> spelled names ----------------------------------------------------------------------------
def load_digits_data():
    """(X (N, 64) in [0, 1], y (N,)) from scikit-learn's bundled 8x8 digits."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the digits task needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    return d.data.astype(np.float32) / 16.0, d.target


def spell_digits(train_config, cfg: OneToManyConfig | None = None, test_fraction: float = 0.2,
                 out_dir=None) -> dict:
    """Train image -> spelled digit name; metrics on a held-out split (exact name rate, CER)."""
    cfg = cfg or OneToManyConfig()
    X, y = load_digits_data()
    order = np.random.default_rng(train_config.seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    te, tr = order[:n_test], order[n_test:]
    names = [DIGIT_NAMES[k] for k in y]
    model, trainer = fit(X[tr], [names[i] for i in tr], cfg, train_config, out_dir,
                         val=(X[te], [names[i] for i in te]))
    model.eval()
    hyps = [decode(h, cfg.alphabet) for h in model.generate(X[te], max_len=8)]
    refs = [names[i] for i in te]
    metrics = {"task": "spell-digits", "train": len(tr), "test": len(te), "steps": trainer.step,
               "train_seconds": round(trainer.elapsed, 2),
               "exact_match": float(np.mean([h == r for h, r in zip(hyps, refs)])), "cer": cer(hyps, refs),
               "examples": list(zip(refs[:5], hyps[:5]))}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


# -- language -> surname ----------------------------------------------------------------------------------
def read_names(folder) -> dict[str, list[str]]:
    """{language: surnames} from `<Language>.txt` files (one name per line, UTF-8)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    if not files:
        raise UserError(f"{folder}: expected a folder of <Language>.txt files with one name per line")
    out = {}
    for f in files:
        try:
            names = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError:
            raise UserError(f"{f}: not UTF-8 text") from None
        if not names:
            raise UserError(f"{f}: no names")
        out[f.stem] = names
    return out


def train_names(folder, out_dir, train_config, cfg: OneToManyConfig | None = None,
                test_fraction: float = 0.1, batch_size: int = 64) -> dict:
    """Train language -> surname; writes out_dir/checkpoint and out_dir/metrics.json (held-out
    cross-entropy per character, in nats and bits, and a few greedy and sampled names per language)."""
    cfg = cfg or OneToManyConfig()
    data = read_names(folder)
    langs = sorted(data)
    cfg.labels = tuple(langs)
    rng = np.random.default_rng(train_config.seed)
    tr, te = [], []
    for k, lang in enumerate(langs):
        for name in data[lang]:
            (te if rng.random() < test_fraction else tr).append((k, name))
    cfg.alphabet = cfg.alphabet or "".join(sorted({c for _, n in tr for c in n}))
    te = [(k, n) for k, n in te if set(n) <= set(cfg.alphabet)]  # characters never seen in training
    eye = np.eye(len(langs), dtype=np.float32)
    model, trainer = fit(eye[[k for k, _ in tr]], [n for _, n in tr], cfg, train_config, out_dir, batch_size,
                         val=(eye[[k for k, _ in te]], [n for _, n in te]) if te else None,
                         meta_key="names_config")
    model.eval()
    val = _teacher_forced_loss(model, eye[[k for k, _ in te]], [encode(n, cfg.alphabet) for _, n in te]) if te else None
    metrics = {"task": "names", "train": len(tr), "test": len(te), "steps": trainer.step,
               "train_seconds": round(trainer.elapsed, 2), "test_nats_per_char": val,
               "test_bits_per_char": None if val is None else val / np.log(2),
               "greedy": {lang: decode(model.generate(eye[[k]])[0], cfg.alphabet) for k, lang in enumerate(langs)}}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


def load_names_model(model_dir):
    from ..train import load_checkpoint
    from ..train.checkpoint import check_config_sizes, checkpoint_content

    path = Path(model_dir) / "checkpoint"
    arrays, jsons = load_checkpoint(path)
    if "names_config" not in jsons:
        raise UserError(f"{model_dir}: not a 'rnnkit names' model folder")
    with checkpoint_content(path):
        d = jsons["names_config"]
        cfg = OneToManyConfig(**{**d, "labels": tuple(d["labels"])})
        if not (isinstance(cfg.alphabet, str) and all(isinstance(x, str) for x in cfg.labels)):
            raise TypeError("names_config: alphabet and labels must be text")
        check_probability("names_config: dropout", cfg.dropout)
        check_config_sizes(path, arrays["model"], cfg.hidden, cfg.layers, embedding_width=cfg.embed)
        model = build_model(cfg, len(cfg.labels))
        model.load_state_dict(arrays["model"])
    return model.eval(), cfg


def sample_names(model, cfg: OneToManyConfig, language: str, n: int = 5, temperature: float = 0.8,
                 seed=None) -> list[str]:
    """n surnames for `language` (greedy when temperature is 0)."""
    if language not in cfg.labels:
        raise UserError(f"unknown language {language!r}; choose one of {', '.join(cfg.labels)}")
    v = np.zeros((n, len(cfg.labels)), dtype=np.float32)
    v[:, cfg.labels.index(language)] = 1.0
    return [decode(h, cfg.alphabet) for h in model.generate(v, 20, temperature, seed)]
