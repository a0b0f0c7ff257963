"""Pretrained word vectors in the GloVe and word2vec text formats, read as a stream.

GloVe (Pennington et al. 2014): one line per word, `word v_1 ... v_D`, separated by spaces.
word2vec text (Mikolov et al. 2013, `save_word2vec_format(binary=False)`): the same lines after a header
line `N D` (N vectors of D numbers). `.gz` files are read through gzip.

The file is read one line at a time and only the words of `keep` (the classifier's vocabulary) are
stored, so a multi-gigabyte file costs memory for the vocabulary only. Every line is checked: a line
that is not a word and D numbers, a vector count that contradicts the header, or bytes that are not
UTF-8 raise a `UserError` naming the file and the line number. No vectors ship with rnnkit.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import UserError


class WordVectors(NamedTuple):
    dim: int                       # D
    vectors: dict                  # word -> (D,) float64, only the words kept
    n_read: int                    # vectors in the file
    format: str                    # "glove" or "word2vec"


def _is_header(fields: list[str]) -> bool:
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def read_word_vectors(path, keep=None, lowercase: bool = False) -> WordVectors:
    """Read a GloVe or word2vec text file; keep the vectors of the words in `keep` (all when None).

    With `lowercase`, a file's word is matched in lower case (the first of its cased forms wins, as files
    list frequent forms first). Duplicate words: the first line wins."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such embeddings file: {path}")
    keep = None if keep is None else set(keep)
    opener = gzip.open if path.suffix == ".gz" else open
    vectors: dict = {}
    dim, n_read, declared, fmt = None, 0, None, "glove"
    try:
        with opener(path, "rt", encoding="utf-8", newline="\n") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue  # a blank line (e.g. at the end) carries nothing
                fields = line.rstrip("\r\n").rstrip(" ").split(" ")
                if lineno == 1 and _is_header(fields):
                    declared, dim, fmt = int(fields[0]), int(fields[1]), "word2vec"
                    if dim < 1:
                        raise UserError(f"{path}:1: the word2vec header gives {dim} dimensions; need at least 1")
                    continue
                if dim is None:
                    dim = len(fields) - 1
                    if dim < 1:
                        raise UserError(f"{path}:{lineno}: expected a word followed by its vector's numbers, "
                                        f"got {line.strip()[:40]!r}")
                if len(fields) != dim + 1 or not fields[0]:
                    raise UserError(f"{path}:{lineno}: expected a word and {dim} numbers separated by single "
                                    f"spaces, got {len(fields) - 1} values after {fields[0][:40]!r}")
                try:
                    v = np.array(fields[1:], dtype=np.float64)  # parsed on every line, so no bad line passes
                except ValueError:
                    bad = next(x for x in fields[1:] if not _is_number(x))
                    raise UserError(f"{path}:{lineno}: {bad[:40]!r} is not a number (word {fields[0][:40]!r})"
                                    ) from None
                if not np.isfinite(v).all():
                    raise UserError(f"{path}:{lineno}: the vector of {fields[0][:40]!r} has NaN or infinity")
                n_read += 1
                word = fields[0].lower() if lowercase else fields[0]
                if (keep is None or word in keep) and word not in vectors:
                    vectors[word] = v
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start} of a line); binary word2vec "
                        "files are not read: save them with binary=False") from None
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read the embeddings file: {e}") from None
    if dim is None or n_read == 0:
        raise UserError(f"{path}: the file has no word vectors")
    if declared is not None and declared != n_read:
        raise UserError(f"{path}: the word2vec header says {declared} vectors, the file has {n_read}")
    return WordVectors(dim, vectors, n_read, fmt)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def embedding_matrix(vocab: dict, wv: WordVectors, rows: int, seed=0) -> tuple[np.ndarray, int]:
    """(weight (rows, D), words found): row vocab[w] holds w's vector; rows of words the file lacks are
    drawn from N(0, s^2) with s the found vectors' standard deviation, so they start on the same scale;
    row 0 (padding) is zero."""
    rng = np.random.default_rng(seed)
    found = [(i, wv.vectors[w]) for w, i in vocab.items() if w in wv.vectors]
    scale = float(np.std([v for _, v in found])) if found else 1.0
    weight = rng.standard_normal((rows, wv.dim)) * (scale if scale > 0 else 1.0)
    for i, v in found:
        weight[i] = v
    weight[0] = 0.0
    return weight, len(found)
