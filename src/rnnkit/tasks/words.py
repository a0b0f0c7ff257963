"""Word-level tokens and vocabulary for language modelling, as WikiText and PyTorch's word_language_model.

Tokenisation: the text is cut into lines at "\\n"; each line is split on whitespace (`str.split()`) and
ends with the token `<eos>`, an empty line included (WikiText's blank lines between paragraphs are
`<eos>` tokens too). A final line without "\\n" ends with `<eos>` as well.

Vocabulary: `<eos>` (id 0) and `<unk>` (id 1), then the words of the training text with count >=
`min_count`, most frequent first (ties alphabetical), at most `max_vocab` ids in all. Every other word
is `<unk>` (WikiText's own `<unk>` tokens are that id already). Decoding joins words with spaces and
turns `<eos>` into a newline, so decode(encode(text)) gives the text with its whitespace normalised.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import UserError

EOS, UNK = "<eos>", "<unk>"
SPECIALS = (EOS, UNK)


def tokenize(text: str) -> list[str]:
    """Words of each line, each line followed by `<eos>`."""
    lines = text.split("\n")
    if lines and lines[-1] == "":          # a text ending in "\n" has no line after it
        lines.pop()
    out: list[str] = []
    for line in lines:
        out.extend(line.split())
        out.append(EOS)
    return out


class WordVocab:
    """`<eos>`, `<unk>`, then words by descending count; `encode` maps unknown words to `<unk>`."""

    level = "word"
    start = EOS                            # generation without a prime starts at a line's beginning

    def __init__(self, words):
        words = list(words)
        if list(words[:2]) != list(SPECIALS) or len(set(words)) != len(words):
            raise ValueError(f"a word vocabulary starts with {list(SPECIALS)} and has no repeated word")
        self.symbols = words
        self.index = {w: i for i, w in enumerate(words)}
        self.unk_id = self.index[UNK]

    @classmethod
    def build(cls, tokens, max_vocab: int | None = None, min_count: int = 1) -> "WordVocab":
        if max_vocab is not None and max_vocab < len(SPECIALS) + 1:
            raise UserError(f"--max-vocab must be at least {len(SPECIALS) + 1} (<eos>, <unk> and one word), "
                            f"got {max_vocab}")
        counts = Counter(t for t in tokens if t not in SPECIALS)
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_vocab is not None:
            ranked = ranked[: max_vocab - len(SPECIALS)]
        return cls([*SPECIALS, *ranked])

    def __len__(self) -> int:
        return len(self.symbols)

    def unknown(self, tokens) -> list:
        """The distinct tokens that are not in the vocabulary (they encode as `<unk>`), in order."""
        return list(dict.fromkeys(t for t in tokens if t not in self.index))

    def encode(self, tokens) -> np.ndarray:
        """tokens (a list of words, or a str, tokenised first) -> ids (N,) int32; unknown words -> `<unk>`."""
        if isinstance(tokens, str):
            tokens = tokenize(tokens)
        get, unk = self.index.get, self.unk_id
        return np.fromiter((get(t, unk) for t in tokens), dtype=np.int32, count=len(tokens))

    def coverage(self, ids: np.ndarray) -> float:
        """Fraction of the ids that are not `<unk>`."""
        return float(np.mean(ids != self.unk_id)) if len(ids) else 1.0

    def to_json(self) -> dict:
        return {"level": self.level, "symbols": self.symbols}

    @classmethod
    def from_json(cls, d) -> "WordVocab":
        try:
            words = d["symbols"]
            if d["level"] != cls.level or not all(isinstance(w, str) and w and not any(c.isspace() for c in w)
                                                  for w in words):
                raise ValueError
            return cls(words)
        except (KeyError, TypeError, ValueError):
            raise UserError("the checkpoint's vocab.json is not a valid word vocabulary") from None

    def decoder(self, after: int | None = None):
        """A function ids -> text for streaming: words joined by spaces, `<eos>` a newline. `after` is the
        id decoded just before (e.g. the prime's last), so the first word gets its space right."""
        at_line_start = after is None or after == self.index[EOS]
        words = self.symbols

        def decode(ids) -> str:
            nonlocal at_line_start
            parts = []
            for i in ids:
                if words[i] == EOS:
                    parts.append("\n")
                    at_line_start = True
                else:
                    parts.append(words[i] if at_line_start else " " + words[i])
                    at_line_start = False
            return "".join(parts)
        return decode
