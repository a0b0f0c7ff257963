"""CTC speech recognition: manifests, joined-digit utterances from FSDD, a (bi)RNN -> Linear -> CTC model.

Pipeline: WAV -> normalised log-mel (or MFCC) features (`rnnkit.data.audio`) -> `stack` adjacent frames
concatenated (fewer, wider frames: T/stack steps of stack*F features, a common speed trick) -> recurrent
layer (bidirectional by default) -> Linear to C = 1 + |alphabet| classes (class 0 is the CTC blank) ->
`ctc_loss`. Decoding is greedy or prefix beam search (`rnnkit.tasks.ctc_decode`).

A manifest is a CSV file of `path,transcript` rows (an optional `path,transcript` header; paths relative
to the manifest's folder). The alphabet is every character of the training transcripts unless given.

Shapes: T frames, B batch, F features per frame, C classes.
"""
from __future__ import annotations

import csv
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data import audio
from ..errors import UserError
from ..jsonio import write_json
from ..layers.base import Module
from ..layers.dropout import VariationalDropout, check_probability
from ..layers.linear import Linear
from ..losses.ctc import ctc_loss, min_input_length
from ..losses.functional import log_softmax
from ..train.checkpoint import check_config_sizes, checkpoint_content, checkpoint_dir
from .batching import length_buckets
from .ctc_decode import cer, greedy_decode, prefix_beam_decode
from ..layers.recurrent import make_rnn

BLANK = 0


@dataclass
class SpeechConfig:
    sample_rate: int = 8000      # every WAV is read at this rate (others are resampled)
    features: str = "logmel"     # "logmel" or "mfcc"
    n_features: int = 40         # mel filters or cepstral coefficients
    stack: int = 3               # adjacent frames concatenated into one RNN step
    cell: str = "lstm"
    hidden: int = 96
    layers: int = 1
    bidirectional: bool = True
    alphabet: str = ""           # characters of the transcripts; class k + 1 is alphabet[k]
    dropout: float = 0.0         # between stacked layers and on the RNN's output (variational)


# -- data ------------------------------------------------------------------------------------------------
def read_manifest(path) -> list[tuple[Path, str]]:
    """(wav path, transcript) rows of a `path,transcript` CSV; UserError names the bad line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such manifest file")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
    except (csv.Error, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable UTF-8 CSV manifest ({e})") from None
    for lineno, row in enumerate(table, 1):
        if lineno == 1 and [c.strip().lower() for c in row[:2]] == ["path", "transcript"]:
            continue
        if not row or all(not c.strip() for c in row):
            raise UserError(f"{path}:{lineno}: empty line; every row must be 'path,transcript'")
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise UserError(f"{path}:{lineno}: expected 'path,transcript' with both fields non-empty, "
                            f"got {','.join(row)!r}")
        rows.append((path.parent / row[0].strip(), row[1].strip()))
    if not rows:
        raise UserError(f"{path}: the manifest has no rows")
    return rows


def encode_transcript(text: str, alphabet: str, where: str = "") -> list[int]:
    """Class ids (1-based; 0 is the blank). UserError for characters outside the alphabet."""
    bad = sorted(set(text) - set(alphabet))
    if bad:
        raise UserError(f"{where}transcript {text!r} has symbols {''.join(bad)!r} outside the alphabet "
                        f"{alphabet!r}")
    return [alphabet.index(ch) + 1 for ch in text]


def stack_frames(feats: np.ndarray, k: int) -> np.ndarray:
    """(T, F) -> (ceil(T / k), k F): k adjacent frames side by side (the last group zero-padded)."""
    T, F = feats.shape
    pad = (-T) % k
    feats = np.pad(feats, ((0, pad), (0, 0)))
    return feats.reshape(-1, k * F)  # (T / k, k F)


def wav_features(path, cfg: SpeechConfig, notes: list | None = None) -> np.ndarray:
    """Model input (T, stack * n_features) of one WAV file."""
    x, info = audio.read_wav(path, cfg.sample_rate)
    if info.resampled_from is not None and notes is not None:
        notes.append(f"note: {path} resampled from {info.resampled_from} Hz to {cfg.sample_rate} Hz")
    return stack_frames(audio.features(x, cfg.sample_rate, cfg.features, cfg.n_features), cfg.stack)


def load_dataset(rows, cfg: SpeechConfig, where: str = "") -> tuple[list[np.ndarray], list[list[int]]]:
    """Features and label ids of manifest rows; UserError when a label cannot fit its input under CTC."""
    feats, labels = [], []
    notes: list[str] = []
    for path, text in rows:
        f = wav_features(path, cfg, notes)
        y = encode_transcript(text, cfg.alphabet, f"{where}{path}: ")
        need = min_input_length(y)
        if f.shape[0] < need:
            raise UserError(f"{where}{path}: {f.shape[0]} frames cannot align transcript {text!r}, which "
                            f"needs at least {need} (length + repeated symbols); use a smaller --stack")
        feats.append(f)
        labels.append(y)
    for n in notes[:3]:
        print(n)
    if len(notes) > 3:
        print(f"note: {len(notes) - 3} more files resampled")
    return feats, labels


def pad_batch(feats: list[np.ndarray], dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Time-major padded batch (T, B, F) and lengths (B,)."""
    lengths = np.array([f.shape[0] for f in feats])
    x = np.zeros((lengths.max(), len(feats), feats[0].shape[1]), dtype=dtype)
    for b, f in enumerate(feats):
        x[: len(f), b] = f
    return x, lengths


# -- model -----------------------------------------------------------------------------------------------
class CTCModel(Module):
    """(bi)RNN over features, Linear to classes: logits (T, B, C) for `ctc_loss`.

    dropout: between stacked layers, and variational (one mask per utterance, Gal & Ghahramani 2016)
    on the RNN output the classifier reads; training mode only."""

    def __init__(self, n_in: int, n_classes: int, cell="lstm", hidden=96, layers=1, bidirectional=True,
                 dtype=np.float32, seed=None, dropout: float = 0.0):
        super().__init__()
        self.rnn = self.add_module("rnn", make_rnn(cell, n_in, hidden, num_layers=layers,
                                                   bidirectional=bidirectional, dtype=dtype, seed=seed,
                                                   dropout=dropout if layers > 1 else 0.0))
        nd = 2 if bidirectional else 1
        self.out = self.add_module("out", Linear(nd * hidden, n_classes, dtype=dtype,
                                                 seed=None if seed is None else seed + 1))
        self.drop = self.add_module("drop", VariationalDropout(dropout, seed=None if seed is None else seed + 2))

    def forward(self, x: np.ndarray, lengths=None) -> np.ndarray:
        h, _ = self.rnn.forward(x, lengths=lengths)
        return self.out.forward(self.drop.forward(h))

    def backward(self, dlogits: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Gradients of every parameter; returns dx, or None with input_grad=False (features are
        data: the bottom layer's dx product is skipped)."""
        dx, _ = self.rnn.backward(self.drop.backward(self.out.backward(dlogits)), input_grad=input_grad)
        return dx


def ctc_step(model: CTCModel, feats, labels) -> tuple[float, int]:
    """Forward, CTC loss (mean per label symbol) and backward on one batch; fills model.grads."""
    x, lengths = pad_batch(feats, model.out.dtype)
    logits = model.forward(x, lengths)
    S = max(len(y) for y in labels)
    targets = np.zeros((len(labels), max(S, 1)), dtype=np.int64)
    for b, y in enumerate(labels):
        targets[b, : len(y)] = y
    loss, dlogits = ctc_loss(logits, targets, lengths, [len(y) for y in labels], blank=BLANK,
                             reduction="mean")
    model.backward(dlogits, input_grad=False)
    return loss, len(labels)


def decode_batch(model: CTCModel, feats, beam: int = 1) -> list[list[int]]:
    """Label ids per utterance: greedy for beam 1, prefix beam search otherwise."""
    x, lengths = pad_batch(feats, model.out.dtype)
    logp = log_softmax(model.forward(x, lengths).astype(np.float64))
    out = []
    for b, n in enumerate(lengths):
        out.append(greedy_decode(logp[:n, b]) if beam <= 1 else prefix_beam_decode(logp[:n, b], beam))
    return out


def evaluate(model: CTCModel, feats, labels, alphabet: str, beam: int = 1, batch: int = 64) -> dict:
    """CER and sequence accuracy (exact transcript) over a dataset."""
    model.eval()
    hyps = []
    for i in range(0, len(feats), batch):
        hyps += decode_batch(model, feats[i:i + batch], beam)
    model.train()
    return {"cer": cer(hyps, labels), "seq_acc": float(np.mean([h == y for h, y in zip(hyps, labels)])),
            "n": len(labels)}


def labels_to_text(ids, alphabet: str) -> str:
    return "".join(alphabet[i - 1] for i in ids)


# -- FSDD joined-digit utterances -------------------------------------------------------------------------
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def build_fsdd_utterances(recordings, out_dir, n_train=2000, n_test=300, n_speaker=300, min_digits=1,
                          max_digits=4, holdout_speaker="theo", seed=0) -> dict[str, Path]:
    """Join FSDD recordings into multi-digit utterances; write WAVs and manifests into out_dir.

    Splits (FSDD's convention: recording index 0-4 test, 5-49 train):
      train.csv    index 5-49 of every speaker but `holdout_speaker`
      test.csv     index 0-4 of the same speakers (held-out recordings)
      speaker.csv  every recording of `holdout_speaker` (held-out speaker)
    Each utterance has min_digits..max_digits recordings of one speaker, separated by 50-200 ms of silence.
    Returns the manifest paths by split.
    """
    recordings, out_dir = Path(recordings), Path(out_dir)
    files = [(m.group(1), m.group(2), int(m.group(3)), p) for p in sorted(recordings.glob("*.wav"))
             if (m := _FSDD_NAME.match(p.name))]
    if not files:
        raise UserError(f"{recordings}: no FSDD recordings named DIGIT_SPEAKER_INDEX.wav")
    speakers = sorted({s for _, s, _, _ in files})
    if holdout_speaker not in speakers:
        raise UserError(f"holdout speaker {holdout_speaker!r} not among {speakers}")
    pools = {
        "train": [f for f in files if f[1] != holdout_speaker and f[2] >= 5],
        "test": [f for f in files if f[1] != holdout_speaker and f[2] < 5],
        "speaker": [f for f in files if f[1] == holdout_speaker],
    }
    counts = {"train": n_train, "test": n_test, "speaker": n_speaker}
    rng = random.Random(seed)
    cache: dict[Path, np.ndarray] = {}
    manifests = {}
    for split, pool in pools.items():
        by_speaker: dict[str, list] = {}
        for f in pool:
            by_speaker.setdefault(f[1], []).append(f)
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        lines = ["path,transcript"]
        for i in range(counts[split]):
            spk = rng.choice(sorted(by_speaker))
            parts = [rng.choice(by_speaker[spk]) for _ in range(rng.randint(min_digits, max_digits))]
            pieces = []
            for d, _, _, p in parts:
                if p not in cache:
                    cache[p] = audio.read_wav(p, 8000)[0]
                pieces += [cache[p], np.zeros(int(8000 * rng.uniform(0.05, 0.2)))]
            name = f"{split}/{i:05d}.wav"
            audio.write_wav(out_dir / name, np.concatenate(pieces[:-1]), 8000)
            lines.append(f"{name},{''.join(d for d, _, _, _ in parts)}")
        manifests[split] = out_dir / f"{split}.csv"
        manifests[split].write_text("\n".join(lines) + "\n")
    return manifests


def config_dict(cfg: SpeechConfig) -> dict:
    return asdict(cfg)


# -- training and inference --------------------------------------------------------------------------------
def build_model(cfg: SpeechConfig, seed=None) -> CTCModel:
    return CTCModel(cfg.stack * cfg.n_features, 1 + len(cfg.alphabet), cfg.cell, cfg.hidden, cfg.layers,
                    cfg.bidirectional, seed=seed, dropout=cfg.dropout)


def train_speech(manifest, out_dir, train_config, cfg: SpeechConfig, evals: dict | None = None,
                 batch_size: int = 32, beam: int = 1, resume=None) -> dict:
    """Train a CTC model on a manifest; returns (and writes to out_dir/metrics.json) CER and sequence
    accuracy on each manifest in `evals` ({name: path}); the first one also gives the validation loss."""
    import time

    from ..train import Trainer, load_checkpoint

    out_dir = Path(out_dir)
    if resume is not None:
        rpath = checkpoint_dir(resume)
        arrays, jsons = load_checkpoint(rpath)
        if "speech_config" not in jsons:
            raise UserError(f"{resume}: not a 'rnnkit transcribe' checkpoint")
        cfg = _saved_config(rpath, arrays, jsons)
    rows = read_manifest(manifest)
    if not cfg.alphabet:
        cfg.alphabet = "".join(sorted({ch for _, text in rows for ch in text}))
    t0 = time.perf_counter()
    feats, labels = load_dataset(rows, cfg, f"{manifest}: ")
    eval_sets = {name: load_dataset(read_manifest(p), cfg, f"{p}: ") for name, p in (evals or {}).items()}
    t_features = time.perf_counter() - t0
    model = build_model(cfg, seed=train_config.seed)
    trainer = Trainer(model, train_config, out_dir, meta={"speech_config": asdict(cfg)})
    if resume is not None:
        trainer.resume(resume)

    def train_step(idx):
        return ctc_step(model, [feats[i] for i in idx], [labels[i] for i in idx])

    eval_fn = None
    if eval_sets:
        vf, vl = next(iter(eval_sets.values()))
        vf, vl = vf[:256], vl[:256]

        def eval_fn():
            model.eval()
            x, lengths = pad_batch(vf, model.out.dtype)
            logits = model.forward(x, lengths)
            targets = np.zeros((len(vl), max(len(y) for y in vl)), np.int64)
            for b, y in enumerate(vl):
                targets[b, :len(y)] = y
            model.train()
            return ctc_loss(logits, targets, lengths, [len(y) for y in vl], blank=BLANK)[0]

    trainer.fit(length_buckets([len(f) for f in feats], batch_size), train_step, eval_fn)
    metrics = {"task": "transcribe", "train_utterances": len(feats), "steps": trainer.step,
               "epochs": trainer.epoch, "train_seconds": round(trainer.elapsed, 2),
               "feature_seconds": round(t_features, 2),
               "final_train_loss": float(np.mean(trainer.history["loss"][-20:])) if trainer.history["loss"] else None,
               "val_loss": trainer.history["val_loss"][-1] if trainer.history["val_loss"] else None,
               "beam": beam, "config": asdict(cfg), "eval": {}}
    for name, (f, y) in eval_sets.items():
        metrics["eval"][name] = evaluate(model, f, y, cfg.alphabet, beam)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def load_speech_model(model_dir) -> tuple[CTCModel, SpeechConfig]:
    """The model and config saved by `train_speech` in model_dir."""
    from ..train import load_checkpoint

    path = Path(model_dir) / "checkpoint"
    arrays, jsons = load_checkpoint(path)
    if "speech_config" not in jsons:
        raise UserError(f"{model_dir}: not a 'rnnkit transcribe' model folder")
    cfg = _saved_config(path, arrays, jsons)
    with checkpoint_content(path):
        model = build_model(cfg)
        model.load_state_dict(arrays["model"])
    return model.eval(), cfg


def _saved_config(path, arrays, jsons) -> SpeechConfig:
    """The config of a transcribe checkpoint, checked against its saved weights."""
    with checkpoint_content(path):
        cfg = SpeechConfig(**jsons["speech_config"])
        if not isinstance(cfg.alphabet, str) or not isinstance(cfg.stack, int):
            raise TypeError("speech_config: alphabet must be text and stack an integer")
        check_probability("speech_config: dropout", cfg.dropout)
        if "model" in arrays:
            check_config_sizes(path, arrays["model"], cfg.hidden, cfg.layers,
                               input_width=cfg.stack * cfg.n_features)
    return cfg


def transcribe(model: CTCModel, cfg: SpeechConfig, wav, beam: int = 1) -> str:
    """Transcript of one WAV file."""
    notes: list[str] = []
    f = wav_features(wav, cfg, notes)
    for n in notes:
        print(n)
    return labels_to_text(decode_batch(model, [f], beam)[0], cfg.alphabet)
