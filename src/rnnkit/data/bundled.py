"""Real data files that other wheels ship, found on disk without importing those libraries.

`importlib.util.find_spec` of a top-level package gives its folder without running its `__init__`, so
reading aeon's BasicMotions `.ts` files or statsmodels' sunspots CSV costs nothing beyond the file read.

| name | package | file | series / cases |
|---|---|---|---|
| basicmotions | aeon | datasets/data/BasicMotions/BasicMotions_{TRAIN,TEST}.ts | 40 + 40 cases, 6 × 100 |
| airline | aeon | datasets/data/Airline/Airline.csv | monthly passengers 1949-1960, 144 |
| sunspots | statsmodels | datasets/sunspots/sunspots.csv | yearly sunspot activity 1700-2008, 309 |
| nile | statsmodels | datasets/nile/nile.csv | yearly Nile volume 1871-1970, 100 |
| elnino | statsmodels | datasets/elnino/elnino.csv | monthly sea temperature 1950-2010, 732 |
| co2 | statsmodels | datasets/co2/co2.csv | weekly CO2 at Mauna Loa 1958-2001, 2,284 weeks, 59 missing |

`co2_monthly()` makes a monthly series with gaps from the weekly co2 file: the mean of each calendar
month's readings, a month without any reading left out (5 of 526 months: a missing date, not a NaN).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import UserError
from .tables import read_table

# name -> (package, path inside it, column, season)
SERIES = {
    "airline": ("aeon", "datasets/data/Airline/Airline.csv", "Passengers", 12),
    "sunspots": ("statsmodels", "datasets/sunspots/sunspots.csv", "SUNACTIVITY", 11),
    "nile": ("statsmodels", "datasets/nile/nile.csv", "volume", 1),
    "elnino": ("statsmodels", "datasets/elnino/elnino.csv", None, 12),  # wide: YEAR, JAN..DEC
    "co2": ("statsmodels", "datasets/co2/co2.csv", "co2", 52),
}


def package_dir(package: str) -> Path | None:
    """Folder of an installed top-level package, or None; the package is not imported."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def shipped_file(package: str, relpath: str) -> Path:
    root = package_dir(package)
    if root is None:
        raise UserError(f"this data set ships with the '{package}' package; pip install {package}")
    path = root / relpath
    if not path.is_file():
        raise UserError(f"{path} not found in the installed '{package}' (another version?)")
    return path


def load_ts_shipped(problem: str, split: str, package: str = "aeon"):
    """A UCR/UEA problem's TRAIN or TEST `.ts` file that aeon ships, e.g. ("BasicMotions", "TRAIN")."""
    from .ts_format import load_ts

    return load_ts(shipped_file(package, f"datasets/data/{problem}/{problem}_{split.upper()}.ts"))


def series_path(name: str) -> Path:
    if name not in SERIES:
        raise UserError(f"unknown series {name!r}; known: {', '.join(SERIES)}")
    package, rel, _, _ = SERIES[name]
    return shipped_file(package, rel)


def load_series(name: str) -> tuple[np.ndarray, int]:
    """(values float64 (T,), season) of a shipped series; elnino's year-by-month table is flattened."""
    _, _, column, season = SERIES[name]
    table = read_table(series_path(name))
    if column is None:
        values = np.asarray([[float(c) for c in row[1:13]] for row in table.rows]).reshape(-1)
    else:
        j = table.column_index(column)
        values = np.asarray([float(r[j]) for r in table.rows])
    return values, season


def load_series_with_times(name: str) -> tuple[list[str], np.ndarray]:
    """(time stamps, values float64 (T,) with NaN where a value is missing) of a shipped series, the
    stamps as the file writes them (elnino's year-by-month table gives "YYYY-MM")."""
    _, _, column, _ = SERIES[name]
    table = read_table(series_path(name))
    if column is None:
        times = [f"{int(float(row[0])):04d}-{k:02d}" for row in table.rows for k in range(1, 13)]
        return times, np.asarray([[float(c) for c in row[1:13]] for row in table.rows]).reshape(-1)
    j = table.column_index(column)
    cells = [r[j].strip() for r in table.rows]
    return [r[0] for r in table.rows], np.asarray([float(c) if c else np.nan for c in cells])


def co2_monthly() -> tuple[list[str], np.ndarray]:
    """("YYYY-MM" stamps, monthly means) from the weekly co2 file; months without a reading are left out."""
    times, values = load_series_with_times("co2")
    months: dict[str, list[float]] = {}
    for t, v in zip(times, values):
        months.setdefault(f"{t[:4]}-{t[4:6]}", []).append(v)
    kept = [(m, float(np.nanmean(v))) for m, v in months.items() if not np.isnan(v).all()]
    return [m for m, _ in kept], np.asarray([v for _, v in kept])
