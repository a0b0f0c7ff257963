"""Argument checks shared by the layers: one place for the wording of shape, dtype and value errors.

Every message names the argument, what was expected and what came, so the fix is obvious.
"""
from __future__ import annotations

import numbers

import numpy as np


def as_float_array(name: str, x, dtype, ndim: int | None = None, shape_hint: str = "",
                   finite: bool = True) -> np.ndarray:
    """`x` as an array of `dtype` (ints and other floats are converted; no silent reshaping).

    `finite=False` lets NaN/Inf through: for gradients, whose non-finite values the trainer must see
    and recover from, unlike user data, which is refused.
    """
    try:
        arr = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of numbers, could not convert it: {e}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        hint = f" {shape_hint}" if shape_hint else ""
        raise ValueError(f"{name} must have {ndim} dimensions{hint}, got shape {arr.shape}")
    arr = arr.astype(dtype, copy=False)
    if finite:
        check_finite(name, arr)
    return arr


# the parameter dtypes every layer supports: the Numba kernels are compiled for these two only, and one
# set for every path keeps a model's behaviour the same with RNNKIT_NO_NUMBA=1 (ints, complex, object:
# no meaning as parameters)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(owner: str, dtype) -> np.dtype:
    """`dtype` as a np.dtype when it is float32 or float64 (native byte order); else one TypeError
    naming it and the supported ones, at construction rather than deep inside a compiled kernel."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:                        # (np.dtype(None) is float64)
        shown = dtype if dt is None else dt
        raise TypeError(f"{owner}: dtype must be a floating type rnnkit supports (np.float32 or "
                        f"np.float64), got {shown}")
    return dt


def check_finite(name: str, arr: np.ndarray) -> None:
    if not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise ValueError(f"{name} contains {bad} NaN or Inf value(s); clean or impute the data first")


def check_shape(name: str, arr: np.ndarray, expected: tuple, what: str = "") -> None:
    if tuple(arr.shape) != tuple(expected):
        extra = f" ({what})" if what else ""
        raise ValueError(f"{name} must have shape {tuple(expected)}{extra}, got {tuple(arr.shape)}")


def check_lengths(lengths, batch: int, max_len: int) -> np.ndarray:
    """B integers in [1, T], any order, as an int64 array."""
    if isinstance(lengths, (list, tuple)) and not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths):
        raise TypeError(f"lengths must be integers, got {[type(v).__name__ for v in lengths][:5]}")
    arr = np.asarray(lengths)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"lengths must be integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},) (one per sequence in the batch), "
                         f"got {arr.shape}")
    if arr.min() < 1 or arr.max() > max_len:
        raise ValueError(f"lengths must be between 1 and the sequence length T={max_len}, "
                         f"got min {arr.min()} and max {arr.max()}")
    return arr.astype(np.int64)
