"""Reader for the UCR/UEA time-series archive's `.ts` format.

The format (as written by the archive, sktime and aeon) is a header of `@tag value` lines, then `@data`,
then one case per line::

    # comments
    @problemName BasicMotions
    @timeStamps false
    @missing false
    @univariate false
    @dimensions 6
    @equalLength true
    @seriesLength 100
    @classLabel true Standing Running Walking Badminton
    @data
    -0.74,-0.74,...:0.03,0.25,...:...:Standing

Dimensions of a case are separated by `:`, values by `,`; the class label (or `@targetLabel` regression
value) is the last `:`-field. `?` is a missing value (allowed only with `@missing true`); with
`@timeStamps true` a dimension is `(t,v),(t,v),...` and the values are kept in the order given. Each case
becomes an array `(T_i, D)`; cases may differ in length when `@equalLength false`.

A file whose data contradict its own header (a declared univariate file with two dimensions, a length other
than `@seriesLength`, a label not listed in `@classLabel`, `?` without `@missing true`) is refused with a
`UserError` naming the file, the line and the contradiction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

_BOOL = {"true": True, "false": False}
_TIMESTAMPED = re.compile(r"\(([^,()]*),([^()]*)\)")


@dataclass
class TSDataset:
    """A parsed `.ts` file: `X` is a list of (T_i, D) float64 arrays, `y` the labels (or None)."""

    X: list
    y: np.ndarray | None
    class_labels: list[str] | None
    problem_name: str | None
    header: dict = field(default_factory=dict)

    @property
    def n_dimensions(self) -> int:
        return self.X[0].shape[1] if self.X else 0

    @property
    def equal_length(self) -> bool:
        return len({x.shape[0] for x in self.X}) <= 1

    def to_array(self) -> np.ndarray:
        """Stack equal-length cases into (N, T, D); raises for unequal lengths."""
        if not self.equal_length:
            raise UserError("the cases have different lengths; use the list X (or pad them) instead")
        return np.stack(self.X)


def _parse_bool(tag: str, value: str, where: str) -> bool:
    v = value.strip().lower()
    if v not in _BOOL:
        raise UserError(f"{where}: @{tag} must be true or false, got {value.strip()!r}")
    return _BOOL[v]


def _parse_int(tag: str, value: str, where: str) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise UserError(f"{where}: @{tag} must be an integer, got {value.strip()!r}") from None
    if n < 1:
        raise UserError(f"{where}: @{tag} must be positive, got {n}")
    return n


def _parse_header(lines, where_of) -> tuple[dict, int]:
    """Read `@tag value` lines up to `@data`; returns (header, index of the first data line)."""
    header: dict = {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if not line.startswith("@"):
            raise UserError(f"{where_of(i)}: expected a '@tag' header line or '@data' before the data, "
                            f"got {line[:40]!r}")
        tag, _, value = line[1:].partition(" ")
        tag = tag.lower()
        where = where_of(i)
        if tag == "data":
            return header, i + 1
        if tag == "problemname":
            header["problem_name"] = value.strip()
        elif tag in ("timestamps", "missing", "univariate", "equallength"):
            header[tag] = _parse_bool(tag, value, where)
        elif tag in ("dimensions", "serieslength"):
            header[tag] = _parse_int(tag, value, where)
        elif tag in ("classlabel", "targetlabel"):
            parts = value.split()
            if not parts:
                raise UserError(f"{where}: @{tag} needs true or false")
            header[tag] = _parse_bool(tag, parts[0], where)
            if tag == "classlabel":
                if header[tag] and len(parts) < 2:
                    raise UserError(f"{where}: @classLabel true must list the class labels")
                header["class_labels"] = parts[1:] if header[tag] else None
        # other tags (e.g. @dataDescription) carry no information the reader needs
    raise UserError(f"{where_of(len(lines))}: no '@data' line; this is not a .ts file")


def _parse_values(text: str, timestamps: bool, missing_ok: bool, where: str) -> np.ndarray:
    text = text.strip()
    if timestamps:
        items = [m.group(2) for m in _TIMESTAMPED.finditer(text)]
        if not items and text:
            raise UserError(f"{where}: @timeStamps true but the values are not '(time,value)' pairs")
    else:
        items = text.split(",") if text else []
    out = np.empty(len(items))
    for j, s in enumerate(items):
        s = s.strip()
        if s in ("?", "NaN", "nan"):
            if not missing_ok:
                raise UserError(f"{where}: missing value {s!r} at position {j + 1}, but the header does "
                                "not say '@missing true'")
            out[j] = np.nan
            continue
        try:
            out[j] = float(s)
        except ValueError:
            raise UserError(f"{where}: value {s[:20]!r} at position {j + 1} is not a number") from None
    return out


def parse_ts(text: str, source: str = "<string>") -> TSDataset:
    """Parse the text of a `.ts` file. `source` names it in error messages."""
    lines = text.splitlines()

    def where_of(i):
        return f"{source}:{i + 1}"

    header, start = _parse_header(lines, where_of)
    timestamps = header.get("timestamps", False)
    missing_ok = header.get("missing", False)
    has_class = header.get("classlabel", False)
    has_target = header.get("targetlabel", False)
    labels_allowed = header.get("class_labels")
    dims = header.get("dimensions")
    if header.get("univariate") is True:
        if dims not in (None, 1):
            raise UserError(f"{source}: header says '@univariate true' and '@dimensions {dims}'")
        dims = 1
    elif header.get("univariate") is False and dims is None:
        dims = None  # multivariate with the count taken from the first case
    series_length = header.get("serieslength")
    equal = header.get("equallength")

    X, y = [], []
    for i in range(start, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith(("#", "%")):
            continue
        where = where_of(i)
        fields = line.split(":") if not timestamps else _split_timestamped(line)
        if has_class or has_target:
            if len(fields) < 2:
                raise UserError(f"{where}: the header promises a label but the case has none")
            label, fields = fields[-1].strip(), fields[:-1]
            if has_class:
                if labels_allowed is not None and label not in labels_allowed:
                    raise UserError(f"{where}: class label {label!r} is not among the header's "
                                    f"@classLabel {' '.join(labels_allowed)}")
                y.append(label)
            else:
                try:
                    y.append(float(label))
                except ValueError:
                    raise UserError(f"{where}: target {label!r} is not a number") from None
        if dims is None:
            dims = len(fields)
        if len(fields) != dims:
            what = "'@univariate true'" if header.get("univariate") else f"{dims} dimensions"
            raise UserError(f"{where}: case has {len(fields)} dimensions, but the header says {what}")
        cols = [_parse_values(f, timestamps, missing_ok, where) for f in fields]
        lengths = {c.size for c in cols}
        if len(lengths) != 1:
            raise UserError(f"{where}: the dimensions of one case have different lengths "
                            f"{[c.size for c in cols]}")
        T = cols[0].size
        if T == 0:
            raise UserError(f"{where}: empty series")
        if series_length is not None and equal is not False and T != series_length:
            raise UserError(f"{where}: series has {T} values, but the header says "
                            f"'@seriesLength {series_length}'")
        if equal is True and X and T != X[0].shape[0]:
            raise UserError(f"{where}: series has {T} values, the first had {X[0].shape[0]}, but the "
                            "header says '@equalLength true'")
        X.append(np.stack(cols, axis=1))  # (T, D)
    if not X:
        raise UserError(f"{source}: no cases after '@data'")
    y_arr = None
    if has_class:
        y_arr = np.asarray(y, dtype=object).astype(str)
    elif has_target:
        y_arr = np.asarray(y, dtype=np.float64)
    return TSDataset(X=X, y=y_arr, class_labels=labels_allowed, problem_name=header.get("problem_name"),
                     header=header)


def _split_timestamped(line: str) -> list[str]:
    """Split on ':' outside parentheses (timestamps such as '(2001-01-01 00:00:00,1.0)' contain ':')."""
    out, depth, cur = [], 0, []
    for ch in line:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == ":" and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def load_ts(path) -> TSDataset:
    """Read a `.ts` file from disk (UTF-8). See the module docstring for the format."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    return parse_ts(text, source=str(path))
