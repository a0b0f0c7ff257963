"""Readers for delimited tables (CSV/TSV), `.npz` sequence sets and numeric series, with user-facing errors.

Every problem a user can fix (a missing file, a column that is not there, a non-number in a series,
ragged or empty sequences, NaN in features) raises `rnnkit.errors.UserError` naming the file, the row
(1-based, as an editor shows it) and the fix, so the CLI can print it as one line.
"""
from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none", "?", "n/a"})


@dataclass
class Table:
    """Rows of strings with a header. `first_line` is the file line of `rows[0]` (for messages)."""

    path: str
    header: list[str]
    rows: list[list[str]]
    first_line: int

    def column_index(self, col, option: str = "column") -> int:
        """Index of `col`, a header name or a 0-based integer (as a string or int)."""
        if isinstance(col, int) or (isinstance(col, str) and col.isdigit() and col not in self.header):
            j = int(col)
            if not 0 <= j < len(self.header):
                raise UserError(f"{self.path}: {option} {j} is out of range; the file has "
                                f"{len(self.header)} columns")
            return j
        if col not in self.header:
            raise UserError(f"{self.path}: no column named {col!r} (for {option}); columns are "
                            f"{', '.join(map(repr, self.header[:20]))}")
        return self.header.index(col)

    def column(self, col, option: str = "column") -> list[str]:
        j = self.column_index(col, option)
        return [r[j] if j < len(r) else "" for r in self.rows]


def _open_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, expected a file") from None
    except UnicodeDecodeError:
        try:
            return path.read_text(encoding="latin-1")
        except Exception:  # pragma: no cover - latin-1 decodes any bytes
            raise UserError(f"{path}: cannot decode the file as text") from None


def _csv_rows(text: str, delimiter: str, quoting, path) -> list[list[str]]:
    """All rows of `text`; fields longer than the csv module's default limit (128 KiB: a long review or
    document) are read, by raising the limit for this call only and putting it back."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, len(text) + 1))
    try:
        return list(csv.reader(text.splitlines(), delimiter=delimiter, quoting=quoting))
    except csv.Error as e:
        raise UserError(f"{path}: not a readable CSV/TSV file ({e})") from None
    finally:
        csv.field_size_limit(old)


def read_table(path, delimiter: str | None = None, header: bool = True) -> Table:
    """Read a CSV (`,`) or TSV (tab; also `.txt`) file. Without a header, columns are named "0", "1", ...

    Tab-separated files are read without quote processing, since free text such as reviews contains
    unbalanced quotes; comma-separated files follow the usual CSV quoting.
    """
    path = Path(path)
    text = _open_text(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab", ".txt") else ","
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = _csv_rows(text, delimiter, quoting, path)
    lines = [i + 1 for i, r in enumerate(rows) if any(c.strip() for c in r)]
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"{path}: the file is empty")
    if header:
        head, body, first = [c.strip() for c in rows[0]], rows[1:], (lines[1] if len(lines) > 1 else 2)
    else:
        head, body, first = [str(j) for j in range(max(len(r) for r in rows))], rows, lines[0]
    if not body:
        raise UserError(f"{path}: no data rows after the header")
    return Table(path=str(path), header=head, rows=body, first_line=first)


def parse_numeric_column(table: Table, col, fill: str | None = None, allow_missing: bool = False) -> np.ndarray:
    """The column `col` as float64. Missing cells (empty, NA, NaN, ?) are refused with their row numbers
    unless `fill` is "linear" (interpolate between neighbours, extend at the ends) or "ffill" (carry the
    last value forward; a leading gap takes the first value), or are kept as NaN with `allow_missing`
    (for a caller that inserts missing dates before filling). A non-number is always an error."""
    cells = table.column(col)
    values = np.empty(len(cells))
    missing = []
    for i, s in enumerate(cells):
        s = s.strip()
        if s.lower() in MISSING_TOKENS:
            values[i] = np.nan
            missing.append(i)
            continue
        try:
            values[i] = float(s)
        except ValueError:
            raise UserError(f"{table.path}: row {table.first_line + i}: {s[:30]!r} in column {col!r} is "
                            "not a number") from None
        if not np.isfinite(values[i]):
            raise UserError(f"{table.path}: row {table.first_line + i}: column {col!r} is {s!r}")
    if missing and not allow_missing:
        if fill is None:
            rows = [table.first_line + i for i in missing]
            shown = ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
            raise UserError(f"{table.path}: column {col!r} has {len(rows)} missing values at rows {shown}; "
                            "fix them or pass --fill linear|ffill")
        values = fill_missing(values, fill)
    return values


# beyond this magnitude squares (losses, variances, RMSE) overflow float64 to inf
MAX_ABS_VALUE = 1e150


def check_series(values: np.ndarray, where: str) -> None:
    """Refuse a series no model can be fitted to honestly: values whose squares overflow float64 (every
    loss and error would be inf) or a constant series (scaled errors such as MASE divide by zero)."""
    big = float(np.max(np.abs(values))) if values.size else 0.0
    if big > MAX_ABS_VALUE:
        raise UserError(f"{where}: values reach {big:.3g}, too large to train on (their squares overflow); "
                        "rescale the series, e.g. divide it by a power of ten")
    if values.size and float(np.ptp(values)) == 0.0:
        raise UserError(f"{where}: the series is constant (every value is {values.flat[0]:.6g}); there is nothing "
                        "to learn, and its forecast is that value")


def fill_missing(values: np.ndarray, how: str) -> np.ndarray:
    """Fill NaNs of a 1-D series by "linear" interpolation or "ffill"; an all-NaN series is an error."""
    values = np.array(values, dtype=np.float64)
    ok = ~np.isnan(values)
    if not ok.any():
        raise UserError("the series has no values at all")
    idx = np.arange(values.size)
    if how == "linear":
        values[~ok] = np.interp(idx[~ok], idx[ok], values[ok])
    elif how == "ffill":
        last = np.where(ok, idx, 0)
        np.maximum.accumulate(last, out=last)
        first = idx[ok][0]
        values = values[last]
        values[:first] = values[first]
    else:
        raise UserError(f"unknown fill method {how!r}; use linear or ffill")
    return values


def read_series_csv(path, column, time_col=None, fill: str | None = None):
    """One numeric column of a CSV as float64 (and the time column as strings, or None)."""
    table = read_table(path)
    values = parse_numeric_column(table, column, fill)
    times = table.column(time_col, "--time-col") if time_col is not None else None
    return values, times


def read_text_labels(path, text_col, label_col, header: bool = True):
    """(texts, labels) from a CSV/TSV; rows with empty text are refused with their row numbers."""
    table = read_table(path, header=header)
    texts = table.column(text_col, "--text-col")
    labels = [s.strip() for s in table.column(label_col, "--label-col")]
    empty = [table.first_line + i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise UserError(f"{path}: empty text at rows {', '.join(map(str, empty[:10]))}")
    no_label = [table.first_line + i for i, t in enumerate(labels) if t.lower() in MISSING_TOKENS]
    if no_label:
        shown = labels[no_label[0] - table.first_line]
        raise UserError(f"{path}: missing label {shown!r} at rows {', '.join(map(str, no_label[:10]))}; "
                        "fix or drop those rows")
    return texts, np.asarray(labels)


def check_sequences(X, name: str = "X") -> list:
    """Validate a list of sequences into float64 arrays (T_i, D): every one non-empty, 1-D or 2-D,
    the same D, finite. Messages name the offending sequence."""
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim in (2, 3):
        X = list(X)
    if not hasattr(X, "__len__") or len(X) == 0:
        raise UserError(f"{name} is empty: give at least one sequence")
    out, D = [], None
    for i, x in enumerate(X):
        try:
            a = np.asarray(x)
            if np.iscomplexobj(a):
                raise UserError(f"{name}[{i}]: Complex data not supported")
            a = a.astype(np.float64)
        except (ValueError, TypeError):
            raise UserError(f"{name}[{i}] is not numeric or is ragged (rows of different lengths)") from None
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise UserError(f"{name}[{i}] has shape {a.shape}; expected (T, D) or (T,)")
        if a.shape[0] == 0:
            raise UserError(f"{name}[{i}] is an empty sequence")
        if D is None:
            D = a.shape[1]
        elif a.shape[1] != D:
            raise UserError(f"{name}[{i}] has {a.shape[1]} features per step, {name}[0] has {D}")
        if not np.isfinite(a).all():
            t = int(np.argwhere(~np.isfinite(a))[0, 0])
            raise UserError(f"{name}[{i}] has NaN or infinite values (first at step {t}); fill or drop them")
        if a.size and np.abs(a).max() > MAX_ABS_VALUE:
            raise UserError(f"{name}[{i}] has values up to {np.abs(a).max():.3g}, too large to train on (their "
                            "squares overflow); rescale the features")
        out.append(a)
    return out


def read_npz_sequences(path):
    """(X list of (T_i, D), y) from an `.npz` with `X` (N,T) / (N,T,D), `y`, and an optional `lengths`
    (N,) that trims padded cases to their true length.

    Arrays are read with `allow_pickle=False`: an object array in an `.npz` is a pickle, and unpickling
    a user's file would run whatever code it names. Ragged sequences go in padded, with `lengths`."""
    path = Path(path)
    arrays = {}
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise UserError(f"{path}: a single array (.npy), not an .npz with arrays 'X' and 'y'")
        with z:
            files = set(z.files)
            if "X" not in files or "y" not in files:
                raise UserError(f"{path}: an .npz for rnnkit needs arrays 'X' and 'y'; it has "
                                f"{', '.join(sorted(files)) or 'none'}")
            for k in ("X", "y", "lengths"):
                if k in files:
                    try:
                        arrays[k] = z[k]
                    except ValueError:
                        raise UserError(f"{path}: {k} is an object array (a pickle), which rnnkit does not load "
                                        "since unpickling can run code; save it as a numeric array (ragged "
                                        "sequences: pad X to (N, T, D) and add a 'lengths' array)") from None
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, UserError):
            raise
        why = str(e).splitlines()[0][:120] if str(e) else repr(e)
        raise UserError(f"{path}: not a readable .npz file ({why})") from None
    X, y, lengths = arrays["X"], arrays["y"], arrays.get("lengths")
    if X.dtype.kind not in "biuf" or y.dtype.kind not in "biufUS" or \
            (lengths is not None and lengths.dtype.kind not in "iu"):
        raise UserError(f"{path}: X must be numeric, y numbers or text, lengths integers "
                        f"(got {X.dtype}, {y.dtype}{'' if lengths is None else ', ' + str(lengths.dtype)})")
    if X.ndim not in (2, 3):
        raise UserError(f"{path}: X has shape {X.shape}; expected (N, T) or (N, T, D)")
    X = list(X)
    if lengths is not None:
        lengths = np.asarray(lengths).astype(int)
        if lengths.shape != (len(X),):
            raise UserError(f"{path}: lengths has shape {lengths.shape}, expected ({len(X)},)")
        if len(X) and (lengths.min() < 0 or lengths.max() > len(X[0])):
            raise UserError(f"{path}: lengths must be in [0, {len(X[0])}] (the padded length of X)")
        X = [np.asarray(x)[:n] for x, n in zip(X, lengths)]
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise UserError(f"{path}: y has shape {y.shape}, expected ({len(X)},) to match X")
    check_labels(y, str(path))
    return check_sequences(X, f"{path}: X"), y


def check_labels(y, where: str, first_row: int = 0) -> None:
    """Refuse labels that are missing values (NaN, or text such as 'nan'), naming the first row: a
    NaN label would become a class of its own (NaN != NaN) or break the class lookup."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y))
    elif y.dtype.kind in "US":
        low = np.char.lower(np.char.strip(y.astype(str)))
        bad = np.flatnonzero(np.isin(low, list(MISSING_TOKENS)))
    else:
        bad = np.array([], int)
    if bad.size:
        rows = ", ".join(str(first_row + int(i)) for i in bad[:10])
        raise UserError(f"{where}: {bad.size} missing label(s) ({str(y[bad[0]])!r}) at row(s) {rows}; "
                        "fix or drop those rows")
