"""Time stamps of a series: parse them, infer the calendar (hourly ... yearly) and its season, insert the
dates a regular calendar is missing.

`infer_calendar(cells)` reads the time column's strings as dates (ISO `2024-03-01`, `2024-03-01 13:00`,
`2024-03`, `20240301`, `2024`, `2024Q1` / `2024-Q1`, `Jan-1-1995`, `01.03.2024`; a slashed day/month
is refused as ambiguous) and names the calendar from the median spacing of consecutive dates:

| median spacing | calendar | season |
|---|---|---|
| 1 hour | hourly | 24 |
| 1 day | daily | 7 |
| 7 days | weekly | 52 |
| 28-31 days | monthly | 12 |
| 89-92 days | quarterly | 4 |
| 365-366 days | yearly | 1 |

It returns a `Calendar` (name, season, the position of every stamp on the regular grid) or, when the
stamps are not dates or their spacing is none of these, None and a note saying why. Positions are counted
in whole steps from the first stamp (months and quarters by the calendar, the others by elapsed time), so a
stamp off the grid, a repeated stamp or one out of order is named by its row.
`regularize(values, calendar, times)` puts the values on the full grid: a missing date becomes a row of
NaN (to be filled like any missing value) with a generated stamp.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

# name -> (season, step in days for the elapsed-time calendars or months for the calendar ones)
CALENDARS = {"hourly": (24, 1 / 24), "daily": (7, 1.0), "weekly": (52, 7.0), "monthly": (12, 1),
             "quarterly": (4, 3), "yearly": (1, 12)}
_BY_MONTHS = ("monthly", "quarterly", "yearly")

_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")
_FORMATS = ("%Y%m%d", "%Y-%m", "%Y/%m", "%Y%m", "%Y", "%b-%d-%Y", "%b %Y", "%Y %b", "%d.%m.%Y",
            "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")


def parse_time(s: str) -> dt.datetime | None:
    """One stamp as a datetime (naive), or None when it is none of the forms above."""
    s = s.strip()
    q = _QUARTER.match(s)
    if q:
        return dt.datetime(int(q.group(1)), 3 * int(q.group(2)) - 2, 1)
    try:
        t = dt.datetime.fromisoformat(s)
        return t.replace(tzinfo=None) if t.tzinfo is not None else t
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(s, fmt)
        except ValueError:
            continue
    return None


@dataclass
class Calendar:
    name: str
    season: int
    positions: np.ndarray  # int64, the grid position of each stamp (0 for the first)
    start: dt.datetime

    @property
    def period(self) -> float:
        """The season's length in steps: a year of weeks is 365.25/7 = 52.18, not 52."""
        return 365.25 / 7 if self.name == "weekly" else float(self.season)

    @property
    def n_missing(self) -> int:
        return int(self.positions[-1] + 1 - len(self.positions))

    def stamp(self, k: int) -> str:
        """The stamp of grid position k, written in ISO form."""
        if self.name in _BY_MONTHS:
            months = self.start.month - 1 + k * CALENDARS[self.name][1]
            year, month = self.start.year + months // 12, months % 12 + 1
            return {"monthly": f"{year:04d}-{month:02d}", "quarterly": f"{year:04d}-Q{(month + 2) // 3}",
                    "yearly": f"{year:04d}"}[self.name]
        t = self.start + dt.timedelta(days=k * CALENDARS[self.name][1])
        return t.isoformat(sep=" ") if self.name == "hourly" else t.date().isoformat()


def infer_calendar(cells, first_row: int = 2, column: str = "time") -> tuple[Calendar | None, str]:
    """(Calendar, "") for a regular calendar with possibly missing dates, or (None, note) for stamps that
    are not dates or not regular. A repeated or decreasing stamp is a UserError naming its row."""
    times = []
    for i, s in enumerate(cells):
        t = parse_time(s)
        if t is None:
            return None, f"row {first_row + i}: {s.strip()[:30]!r} in column {column!r} is not a date I can read"
        times.append(t)
    if len(times) < 3:
        return None, f"column {column!r} has fewer than 3 time stamps"
    secs = np.array([t.timestamp() if t.tzinfo else (t - dt.datetime(1970, 1, 1)).total_seconds() for t in times])
    gaps = np.diff(secs) / 86400.0
    for i, g in enumerate(gaps):
        if g <= 0:
            what = "repeats the one before" if g == 0 else "is earlier than the one before"
            raise UserError(f"row {first_row + i + 1}: time stamp {cells[i + 1].strip()!r} in column {column!r} "
                            f"{what}; sort the rows by time and keep one per stamp")
    med = float(np.median(gaps))
    name = _name_of_spacing(med)
    if name is None:
        return None, (f"the time stamps in column {column!r} are {med:g} days apart (median), "
                      "not hourly, daily, weekly, monthly, quarterly or yearly")
    step = CALENDARS[name][1]
    if name in _BY_MONTHS:
        months = np.array([(t.year - times[0].year) * 12 + t.month - times[0].month for t in times])
        pos, off = np.divmod(months, step)
        off_grid = off != 0
    else:
        exact = (secs - secs[0]) / 86400.0 / step
        pos = np.rint(exact).astype(np.int64)
        off_grid = np.abs(exact - pos) > 0.05
    if off_grid.any() or np.any(np.diff(pos) <= 0):
        i = int(np.flatnonzero(off_grid | np.r_[False, np.diff(pos) <= 0])[0])
        return None, (f"row {first_row + i}: time stamp {cells[i].strip()!r} is off the {name} calendar the other "
                      "stamps follow")
    return Calendar(name, CALENDARS[name][0], pos.astype(np.int64), times[0]), ""


def _name_of_spacing(days: float) -> str | None:
    for name, lo, hi in (("hourly", 0.9 / 24, 1.1 / 24), ("daily", 0.9, 1.1), ("weekly", 6.5, 7.5),
                         ("monthly", 27.5, 31.5), ("quarterly", 88.5, 92.5), ("yearly", 364.5, 366.5)):
        if lo <= days <= hi:
            return name
    return None


def regularize(values: np.ndarray, calendar: Calendar, times: list[str]) -> tuple[np.ndarray, list[str]]:
    """(values on the full grid (T', ...) with NaN rows for the missing dates, their stamps)."""
    n = int(calendar.positions[-1]) + 1
    full = np.full((n,) + values.shape[1:], np.nan)
    full[calendar.positions] = values
    stamps = [calendar.stamp(k) for k in range(n)]
    for p, s in zip(calendar.positions, times):
        stamps[p] = s
    return full, stamps
