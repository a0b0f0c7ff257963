"""Strict JSON in and out: what rnnkit writes is valid JSON for every reader, what it reads is checked.

Python's `json` writes `NaN` and `Infinity` by default, which no strict parser (browsers, `jq`, Rust's
serde) accepts; `to_json` writes a non-finite float as `null` (a metric that could not be computed) and
NumPy scalars and arrays as plain numbers and lists. `write_json` replaces the file atomically, so a
crash leaves the previous file or the new one. `read_json` turns bad bytes into one `UserError` line.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .errors import UserError, describe_os_error


def _plain(v):
    """`v` with NumPy values made Python ones and non-finite floats made None (recursively)."""
    if isinstance(v, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.bool_, np.integer)):
        return v.item()
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, Path):
        return str(v)
    return v


def to_json(obj, **kw) -> str:
    """Strict JSON text of `obj` (NaN/inf as null; NumPy values as numbers); other types raise TypeError."""
    kw.setdefault("indent", 1)
    kw.setdefault("ensure_ascii", False)
    return json.dumps(_plain(obj), allow_nan=False, **kw)


def write_json(path, obj, **kw) -> Path:
    """Write `obj` as strict JSON to `path` atomically (a temporary file renamed into place)."""
    path = Path(path)
    text = to_json(obj, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {str(path)!r}: {describe_os_error(e)}") from None
    return path


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def read_json(path, what: str | None = None):
    """Parse strict JSON from `path` (UTF-8; no NaN/Infinity); problems raise one-line UserErrors."""
    path = Path(path)
    what = what or repr(str(path))
    try:
        text = path.read_bytes().decode("utf-8")
        return json.loads(text, parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise UserError(f"{what} is missing") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is damaged: not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise UserError(f"{what} is damaged: not valid JSON") from None
    except OSError as e:
        raise UserError(f"{what} cannot be read: {e.strerror or e}") from None
