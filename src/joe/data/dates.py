"""Reading the time column of a user's file: formats, day-first vs month-first, offsets, session dates.

Rules (the README's "Your own data" section repeats them for users):

* **Offsets.** A timestamp may carry a UTC offset (``2023-08-10 00:00:00+02:00``, ``...Z``). Its
  *wall time* is what is written before the offset; its *instant* is the wall time minus the offset.
* **Daily bars are dated by their session.** When a file's bars are daily (median spacing of at least
  20 hours), each bar is dated by its wall-clock date as written, whatever the offset: a bar stamped
  ``2023-08-10 00:00:00+02:00`` is the 2023-08-10 session, not 22:00 UTC on the 9th. A local midnight
  east of UTC written *in* UTC (``2023-08-09T22:00:00Z`` for Berlin, Tokyo midnights as epoch seconds:
  afternoon/evening stamps that fall on weekends as written and not a day later) is dated the next day
  (`session_dates`). Daily bars are stored at 00:00 UTC of that date, like the sample's.
* **Intraday bars** keep their instant, in UTC (naive times are taken to be UTC).
* **Day-first vs month-first** (``03/01/2022``) is decided per file from the data: a first field above
  12 means day-first, a second field above 12 means month-first (both in one file: refused). When no
  value is above 12 both readings are valid calendars and guessing from spacing would be a coin toss
  for monthly or short files, so the file is refused with a message naming it and the
  ``--date-format`` option (``dayfirst``, ``monthfirst`` or any strptime format such as ``%d.%m.%Y``).
* **``--date-format`` decides only what the data cannot** (`DateFormats`): ISO dates are always ISO,
  and a file whose data decides day- or month-first keeps the data's reading; a strptime format is
  used for a file when it reads every row of it. ``--date-format FILE=FORMAT`` (the file name or its
  symbol, repeatable) gives one file its format, and then it must read every row of that file.
* Whole numbers that all read as ``YYYYMMDD`` dates (``20230810``) are dates; other numbers are epoch
  seconds, milli-, micro- or nanoseconds (told apart by magnitude), always UTC instants; numbers too
  small for any (spreadsheet day serials such as 45148, row numbers, years) are refused naming the file.
* **A wrong ``--date-format`` is refused, naming the file** (`WrongDateFormat`, exit 2): a
  ``FILE=FORMAT`` that does not parse every row, or a format or ``dayfirst``/``monthfirst`` that puts
  rows out of order where the other reading keeps them in order. No file's rows are dropped for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from joe.data.errors import DataError

DAILY_SPACING = pd.Timedelta(hours=20)
DATE_FORMAT_HELP = (
    "pass --date-format dayfirst (31/01/2022), --date-format monthfirst (01/31/2022) or a strptime "
    "format such as --date-format %d.%m.%Y"
)
_OFFSET = re.compile(
    r"^(?P<wall>.*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?P<off>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$",
    re.IGNORECASE,
)
_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})(?![\d])(.*)$")


_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[T ]|$)")
KEYWORDS = ("dayfirst", "monthfirst", "auto")


def _keyword(fmt: str) -> str:
    return fmt.strip().lower().replace("-", "").replace("_", "")


@dataclass(frozen=True)
class DateFormats:
    """The ``--date-format`` option(s): one default and per-file formats (``AAPL.csv=%d.%m.%Y``).

    `parse(spec)` reads the option: entries separated by newlines (the CLI joins repeated options
    so), each ``FORMAT`` or ``FILE=FORMAT``. A file is matched by its name or its symbol, in any case.
    """

    default: str | None = None
    per_file: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, spec: str | None) -> DateFormats:
        default: str | None = None
        per_file: list[tuple[str, str]] = []
        for raw in (spec or "").splitlines():
            entry = raw.strip()
            if not entry:
                continue
            name, eq, fmt = entry.partition("=")
            if eq and name.strip() and not name.strip().startswith("%"):
                per_file.append((name.strip().lower(), fmt.strip()))
            elif default is not None:
                raise DataError(
                    f"--date-format given twice without a file ({default!r} and {entry!r}); give one "
                    f"default, and FILE=FORMAT for files that need another"
                )
            else:
                default = entry
        return cls(default, tuple(per_file))

    def for_file(self, file: str, symbol: str) -> tuple[str | None, bool]:
        """(the format for `file`, True when the user named this file)."""
        keys = {file.lower(), symbol.lower()}
        for name, fmt in self.per_file:
            if name in keys:
                return fmt, True
        return self.default, False

    def unused(self, files: list[str], symbols: list[str]) -> list[str]:
        """Per-file entries that match no file (a typo the user should hear about)."""
        known = {f.lower() for f in files} | {s.lower() for s in symbols}
        return [name for name, _ in self.per_file if name not in known]


class AmbiguousDates(DataError):
    """The file's dates read as day-first or month-first and the data cannot decide: refuse the run."""


class WrongDateFormat(AmbiguousDates):
    """A ``--date-format`` misreads the file (rows that do not parse, or land out of order while the
    other reading keeps them in order): refuse the run naming the file, never drop its rows."""


def first_out_of_order(values: np.ndarray) -> int | None:
    """Index of the first row out of order when `values` are neither ascending nor descending (a
    shuffled file is fine only when no reading is ordered), else None."""
    d = np.diff(values.astype("int64"))
    if (d >= 0).all() or (d <= 0).all():
        return None
    asc = (d >= 0).sum() >= (d <= 0).sum()
    return int(np.flatnonzero(d < 0 if asc else d > 0)[0]) + 1


@dataclass(frozen=True)
class ParsedTimes:
    """A file's time column read two ways: `wall` (naive, as written) and `instant` (UTC)."""

    wall: pd.DatetimeIndex
    instant: pd.DatetimeIndex
    had_offset: bool


def _offset_minutes(text: str) -> int:
    t = text.upper()
    if t in ("Z", "UTC", "GMT"):
        return 0
    sign = -1 if t[0] == "-" else 1
    digits = t[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    return sign * (hours * 60 + minutes)


def _bad_row(file: str, column: str, raw: pd.Series, bad: np.ndarray, what: str = "") -> DataError:
    i = int(np.flatnonzero(bad)[0])
    return DataError(
        f"{file}: row {i + 2}: cannot parse {column!r} value {raw.iloc[i]!r} as a date/time{what}; "
        f"use ISO dates like 2024-01-31 or 2024-01-31T14:30:00Z ({int(bad.sum())} bad rows)"
    )


def _year(y: np.ndarray) -> np.ndarray:
    # Two-digit years follow the POSIX strptime convention: 69-99 -> 1900s, 00-68 -> 2000s.
    return np.where(y < 100, np.where(y >= 69, 1900 + y, 2000 + y), y)


def decide_day_first(first: np.ndarray, second: np.ndarray, year: np.ndarray, file: str) -> bool:
    """True when `first/second/year` fields are day/month/year, False for month/day/year.

    Raises DataError naming the file when the data cannot decide (see the module docstring).
    """
    first_big, second_big = first > 12, second > 12
    if first_big.any() and second_big.any():
        i, j = int(np.flatnonzero(first_big)[0]), int(np.flatnonzero(second_big)[0])
        raise AmbiguousDates(
            f"{file}: dates mix day-first (row {i + 2}) and month-first (row {j + 2}) readings; "
            f"write them one way (ISO 2022-01-31 is best) or {DATE_FORMAT_HELP}"
        )
    if first_big.any():
        return True
    if second_big.any():
        return False
    raise AmbiguousDates(
        f"{file}: dates like {first[0]:02d}/{second[0]:02d}/{year[0]} could be day-first or month-first "
        f"and the data does not say which (no day above 12); {DATE_FORMAT_HELP}, or for this file only "
        f"--date-format {file}=dayfirst"
    )


def _dmy(
    first: np.ndarray, second: np.ndarray, year: np.ndarray, rest: pd.Series, day_first: bool, index: pd.Index
) -> pd.DatetimeIndex | None:
    """The d/m/y (or m/d/y) fields as wall times; None when some row is no calendar date that way."""
    day, month = (first, second) if day_first else (second, first)
    iso = pd.Series(
        [f"{a:04d}-{b:02d}-{c:02d}{r}" for a, b, c, r in zip(_year(year), month, day, rest, strict=True)],
        index=index,
    )
    parsed = pd.to_datetime(iso.str.strip(), format="mixed", errors="coerce")
    if parsed.isna().any():
        return None
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return pd.DatetimeIndex(parsed)


def _other_readings(wall: pd.Series) -> dict[str, pd.DatetimeIndex | None]:
    """The day-first and month-first readings of a d/m/y-like column (empty when it is not one)."""
    parts = wall.str.extract(_DMY)
    if not (len(wall) and parts[0].notna().all()):
        return {}
    f, sec, y = (parts[k].astype(int).to_numpy() for k in (0, 1, 2))
    return {
        "dayfirst": _dmy(f, sec, y, parts[3], True, wall.index),
        "monthfirst": _dmy(f, sec, y, parts[3], False, wall.index),
    }


def _check_order(
    chosen: pd.DatetimeIndex | None,
    wall: pd.Series,
    file: str,
    fmt: str,
    others: dict[str, pd.DatetimeIndex | None],
) -> None:
    """Raise `WrongDateFormat` when `chosen` puts rows out of order and another reading keeps them in
    order: the option misreads the file (a shuffled file, out of order every way, is fine)."""
    if chosen is None:
        return
    i = first_out_of_order(chosen.asi8)
    if i is None:
        return
    for name, other in others.items():
        if other is not None and first_out_of_order(other.asi8) is None:
            raise WrongDateFormat(
                f"{file}: --date-format {fmt} misreads this file: row {i + 2} ({wall.iloc[i]!r} read as "
                f"{chosen[i].date()}) lands before row {i + 1} ({wall.iloc[i - 1]!r} read as "
                f"{chosen[i - 1].date()}), while read {name} every row is in order; use --date-format "
                f"{file}={name} (or drop the option for this file)"
            )


def _strptime(wall: pd.Series, fmt: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    parsed = pd.to_datetime(wall, format=fmt, errors="coerce")
    return pd.DatetimeIndex(parsed), parsed.isna().to_numpy() & wall.notna().to_numpy()


def _refuse_mixed_shapes(wall: pd.Series, file: str, column: str, fmt: str | None) -> None:
    """Raise `DataError` when one file writes its dates in two shapes (ISO 2022-01-03 in some rows,
    03/01/2023 in others): no single reading fits it, and reading each row its own way would guess
    day- vs month-first row by row. The message names the file, both shapes and a row of each. A
    strptime `fmt` that reads every row settles it (the caller tries it)."""
    if not len(wall):
        return
    iso = wall.str.match(_ISO).to_numpy(dtype=bool)
    parts = wall.str.extract(_DMY)
    a = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    b = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    # a date one of the two readings can make (a '31/31/2024' is just a bad row, said as such)
    dmy = (np.fmin(a, b) >= 1) & (np.fmin(a, b) <= 12) & (np.fmax(a, b) <= 31)
    if not (iso.any() and dmy.any()):
        return
    if fmt is not None and not pd.to_datetime(wall, format=fmt, errors="coerce").isna().any():
        return
    i, j = int(np.flatnonzero(iso)[0]), int(np.flatnonzero(dmy)[0])
    raise DataError(
        f"{file}: column {column!r} mixes two date formats: ISO dates (row {i + 2}: {wall.iloc[i]!r}, "
        f"{int(iso.sum())} rows) and slashed/dotted dates (row {j + 2}: {wall.iloc[j]!r}, {int(dmy.sum())} "
        f"rows), whose day/month order cannot be read row by row; rewrite the file in one format (ISO "
        f"2022-01-31 is best)"
    )


def _parse_wall(
    wall: pd.Series, file: str, column: str, date_format: str | None, named: bool = False
) -> pd.DatetimeIndex:
    """Wall times of a text column; `date_format` decides only what the data cannot (module docstring).

    `named`: the user gave this format for this file (``FILE=FORMAT``): it must then read every row.
    """
    fmt = (date_format or "").strip()
    key = _keyword(fmt)
    _refuse_mixed_shapes(wall, file, column, fmt if fmt and key not in KEYWORDS else None)
    if len(wall) and wall.str.match(_ISO).all():
        parsed = pd.to_datetime(wall, format="mixed", errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        bad = parsed.isna().to_numpy()
        if bad.any():
            raise _bad_row(file, column, wall, bad)
        return pd.DatetimeIndex(parsed)
    if fmt and key not in KEYWORDS:
        parsed_fmt, bad = _strptime(wall, fmt)
        if not bad.any():
            _check_order(parsed_fmt, wall, file, fmt, _other_readings(wall))
            return parsed_fmt
        if named:
            err = _bad_row(file, column, wall, bad, f" with --date-format {file}={fmt}")
            raise WrongDateFormat(f"{err}; that format misreads this file - fix or drop it for {file}")
    parts = wall.str.extract(_DMY)
    if len(wall) and parts[0].notna().all():
        first = parts[0].astype(int).to_numpy()
        second = parts[1].astype(int).to_numpy()
        year = parts[2].astype(int).to_numpy()
        try:
            day_first = decide_day_first(first, second, year, file)
        except AmbiguousDates:
            if key == "dayfirst":
                day_first = True
            elif key == "monthfirst":
                day_first = False
            else:
                raise
            # Both readings are calendars: the option decides, unless it scrambles rows the other
            # reading keeps in order (then the option misreads this file).
            chosen = _dmy(first, second, year, parts[3], day_first, wall.index)
            other = _dmy(first, second, year, parts[3], not day_first, wall.index)
            _check_order(chosen, wall, file, fmt, {"dayfirst" if not day_first else "monthfirst": other})
        else:
            if named and key in ("dayfirst", "monthfirst") and day_first != (key == "dayfirst"):
                raise AmbiguousDates(
                    f"{file}: --date-format {file}={fmt} but the data is "
                    f"{'day' if day_first else 'month'}-first (a field above 12); drop the option for "
                    f"this file or fix its dates"
                )
        day, month = (first, second) if day_first else (second, first)
        y = _year(year)
        iso = pd.Series(
            [f"{a:04d}-{b:02d}-{c:02d}{rest}" for a, b, c, rest in zip(y, month, day, parts[3], strict=True)],
            index=wall.index,
        )
        parsed = pd.to_datetime(iso.str.strip(), format="mixed", errors="coerce")
    else:
        parsed = pd.to_datetime(wall, format="mixed", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:  # e.g. "2023-08-10 CET" parsed with a zone
        parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna().to_numpy()
    if bad.any():
        extra = f" (nor with --date-format {fmt!r})" if fmt and key not in KEYWORDS else ""
        raise _bad_row(file, column, wall, bad, extra)
    return pd.DatetimeIndex(parsed)


def _yyyymmdd(raw: pd.Series) -> bool:
    """Whole numbers that all read as calendar dates YYYYMMDD between 1900 and 2199 (20230810).

    As epoch seconds they would all fall in Aug 1970 - Sep 1970; as milliseconds, in the first 15 hours
    of 1970: no bar data is dated so, so the calendar reading wins.
    """
    vals = raw.to_numpy(dtype="float64", na_value=np.nan)
    if not len(vals) or not np.isfinite(vals).all() or (vals != np.round(vals)).any():
        return False
    if vals.min() < 19000101 or vals.max() > 21991231:
        return False
    parsed = pd.to_datetime(pd.Series(vals.astype("int64").astype(str)), format="%Y%m%d", errors="coerce")
    return not bool(parsed.isna().any())


EPOCH_MIN = 1e8  # 1973-03-03 as epoch seconds: smaller numbers are no epoch time of real bars


def _epoch_unit(raw: pd.Series, file: str, column: str) -> str:
    """The unit of epoch numbers by magnitude (s < 1e11 <= ms < 1e14 <= us < 1e17 <= ns: each reads
    as 1973-5138). Numbers too small to be any (every stamp before 1973 as seconds) are refused naming
    the file - spreadsheet day serials (Excel's 45148 is 2023-08-10) read as seconds would put every
    bar in the first hours of 1970."""
    top = float(raw.abs().max())
    if top >= EPOCH_MIN:
        return "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"
    low = float(raw.min())
    serial = low >= 10_000 and top <= 80_000
    hint = (
        " - they look like spreadsheet day numbers (Excel's 45148 is 2023-08-10)"
        if serial
        else " - row numbers or years?"
    )
    raise DataError(
        f"{file}: the {column!r} column holds numbers ({low:g} to {top:g}) that are neither YYYYMMDD dates "
        f"nor epoch seconds or milliseconds (those are at least {EPOCH_MIN:g}){hint}; write ISO dates like "
        f"2024-01-31 (in a spreadsheet, format the column as yyyy-mm-dd before saving as CSV)"
    )


def parse_times(
    raw: pd.Series, file: str, column: str, date_format: str | None = None, named: bool = False
) -> ParsedTimes:
    """Read a time column (strings, datetimes or epoch numbers) into wall times and UTC instants.

    `date_format` decides only what the data cannot; `named` (a ``FILE=FORMAT`` option) makes it
    binding for this file (see the module docstring).
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = pd.DatetimeIndex(raw)
        if ts.hasnans:  # an empty cell of a Parquet time column: no date to store the bar under
            raise _bad_row(file, column, raw, ts.isna())
        if ts.tz is None:
            return ParsedTimes(ts, ts.tz_localize("UTC"), False)
        return ParsedTimes(ts.tz_localize(None), ts.tz_convert("UTC"), True)
    if pd.api.types.is_numeric_dtype(raw) and _yyyymmdd(raw):
        wall = pd.DatetimeIndex(pd.to_datetime(raw.astype("int64").astype(str), format="%Y%m%d"))
        return ParsedTimes(wall, wall.tz_localize("UTC"), False)
    if pd.api.types.is_numeric_dtype(raw):
        # Epoch numbers: seconds, milli-, micro- or nanoseconds, told apart by magnitude.
        unit = _epoch_unit(raw, file, column)
        inst = pd.to_datetime(raw, unit=unit, utc=True, errors="coerce")
        bad = inst.isna().to_numpy()
        if bad.any():
            raise _bad_row(file, column, raw, bad)
        idx = pd.DatetimeIndex(inst)
        return ParsedTimes(idx.tz_localize(None), idx, False)
    text = raw.astype("string").str.strip()
    if text.isna().any():
        raise _bad_row(file, column, raw, text.isna().to_numpy())
    split = text.str.extract(_OFFSET)
    has_off = split["off"].notna()
    wall_text = split["wall"].where(has_off, text)
    wall = _parse_wall(wall_text, file, column, date_format, named)
    minutes = np.zeros(len(text), dtype="int64")
    if has_off.any():
        minutes[has_off.to_numpy()] = [_offset_minutes(o) for o in split["off"][has_off]]
    instant = (wall - pd.to_timedelta(minutes, unit="min")).tz_localize("UTC")
    return ParsedTimes(wall, pd.DatetimeIndex(instant), bool(has_off.any()))


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """`np.unique(a)` for a 1-D array, without its sort when `a` is already strictly increasing (the
    usual file: one bar per date, in order)."""
    if len(a) < 2 or bool(np.all(a[1:] > a[:-1])):
        return a
    return np.unique(a)


def int_median(a: np.ndarray) -> float:
    """`float(np.median(a))` of a non-empty 1-D integer array, by a sort: the middle value, or the mean of
    the two middle values as `np.median` takes it (in float64). `np.median`'s partition is ~6 times
    slower on the many equal steps of a daily index (~80 µs a file, four times per file on a load).
    Test: tests/data/test_int_median.py (equal to `np.median`, property-based)."""
    s = np.sort(a)
    m = len(s) // 2
    if len(s) % 2:
        return float(s[m])
    return (float(s[m - 1]) + float(s[m])) / 2


def bar_index(times: ParsedTimes) -> tuple[pd.DatetimeIndex, bool]:
    """The index bars are stored under, and whether the file is daily.

    Daily (median spacing of the wall times >= 20 h): the session date at 00:00 UTC. Intraday: the UTC
    instant.
    """
    wall = times.wall.as_unit("ns")
    u = sorted_unique(wall.asi8)
    daily = len(u) < 2 or int_median(np.diff(u)) >= DAILY_SPACING.value
    if daily:
        return session_dates(wall).tz_localize("UTC").rename("ts"), True
    return times.instant.as_unit("ns").rename("ts"), False


def is_daily_spacing(days: pd.DatetimeIndex) -> bool:
    """Bars about a day apart (median spacing at most 4 days): daily, not weekly or monthly bars, whose
    labels may fall on any weekday."""
    u = sorted_unique(days.as_unit("ns").asi8)  # in ns, as `Timedelta.value`, whatever the unit
    return len(u) < 2 or int_median(np.diff(u)) <= pd.Timedelta(days=4).value


def _weekend_days(days: pd.DatetimeIndex) -> int:
    return int((days.day_of_week >= 5).sum())


def midnights(wall: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """`wall.normalize()` of a naive index (each time at 00:00 of its day, NaT kept, same unit and name)
    without the frequency pandas infers for the result (a third of a daily file's dating, 0.2 s CPU of
    a 500-file folder; nothing in Joe reads an index's `freq`: the result's is None). Test:
    tests/data/test_midnights.py (equal to `normalize`, property-based)."""
    if wall.tz is not None:  # local midnights: pandas' own
        return pd.DatetimeIndex(wall.normalize())
    values = wall.to_numpy()
    days = values.astype("datetime64[D]").astype(values.dtype)  # numpy floors, NaT stays NaT
    return pd.DatetimeIndex(days, name=wall.name)


def session_dates(wall: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Daily bars' session dates from their wall times (naive), whatever the representation.

    A date as written is the session's, except for a daily file whose stamps sit in the afternoon or
    evening (12:00-23:59) that read as weekend days where the next day's date would not: a local
    midnight east of UTC written in UTC (Berlin 22:00/23:00 Z, Tokyo 15:00 Z as epoch seconds) or an FX
    day opened on Sunday evening. Those bars are dated the next day - the reading that puts (nearly)
    no bar on a Saturday or Sunday, at most 1% of them. A close-stamped file (New York 16:00 = 20:00 or
    21:00 UTC, Monday-Friday as written) and a 7-day series (crypto: as many weekend bars either way)
    keep their dates.
    """
    days = midnights(wall)
    if wall.tz is None:  # on the numpy values: pandas' subtraction and comparison cost ~0.2 ms a file
        late = (wall.to_numpy() - days.to_numpy()) >= np.timedelta64(12, "h")  # NaT: False
    else:
        late = np.asarray((wall - days) >= pd.Timedelta(hours=12))
    if not late.any() or not is_daily_spacing(days):
        return days
    shifted = pd.DatetimeIndex(np.where(late, days + pd.Timedelta(days=1), days))
    as_written, next_day = _weekend_days(days), _weekend_days(shifted)
    if next_day < as_written and next_day <= 0.01 * len(days):
        return shifted
    return days
