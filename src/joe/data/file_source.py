"""`FileSource`: a user's own bars from a folder of CSV or Parquet files, one file per symbol.

Each file is read and checked by `joe.data.files.read_file` (its columns, aliases and rules are described
there). Here: which files a folder holds (`PATTERNS`, matched in any case), the bar size they share, and
the folder's own limits: a file leaping past the date the other files agree on, or past today, is a
``future_date`` error (`future_limit`); a problem with one file becomes an error finding that excludes
that symbol (dated at the bad bar when one row is at fault); a wrong ``--date-format`` refuses the run
naming every file it misreads (`joe.data.dates.WrongDateFormat`). Split out of `joe.data.files`.
"""

from __future__ import annotations

import fnmatch
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from joe.core import clock
from joe.core.models import Instrument
from joe.data.calendars import nth_session_after, sessions_after
from joe.data.dates import (
    AmbiguousDates,
    DateFormats,
    WrongDateFormat,
)
from joe.data.errors import DataError
from joe.data.file_ahead import ReadAhead
from joe.data.files import LoadedFile, _read_checked, _symbol_of, guess_asset_class
from joe.data.frames import FrameSource, as_of_cutoff
from joe.data.quality import Finding, QualityConfig
from joe.data.splits import SPLITS_FILE, UserSplit, read_splits_file
from joe.data.timeframes import bar_size, median_step, odd_timeframes

PATTERNS = {"csv": ("*.csv", "*.csv.gz"), "parquet": ("*.parquet", "*.pq")}


def _matches(path: Path, patterns: tuple[str, ...]) -> bool:
    """Case-insensitive glob match on the file name (`MSFT.CSV` is a CSV file)."""
    name = path.name.lower()
    return any(fnmatch.fnmatch(name, p.lower()) for p in patterns)


def _native_timeframe(frames: dict[str, pd.DataFrame]) -> str:
    """The bar size the files share (median spacing); daily unless the data is clearly intraday."""
    gaps = [median_step(pd.DatetimeIndex(f.index)) for f in frames.values() if len(f) > 2]
    if not gaps:
        return "1d"
    step = min(gaps)
    if step >= pd.Timedelta(hours=20):
        return "1d"
    minutes = max(1, round(step / pd.Timedelta(minutes=1)))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


STALE_SESSIONS = QualityConfig().stale_sessions  # the quality stage's stale limit, in sessions
SOURCE_CALENDAR = "XNYS"  # a folder's own limits (as-of past the data, future dates) count NYSE sessions


def _sessions_between(last: date, as_of: date) -> int:
    """NYSE sessions after `last` up to and including `as_of` (0 when `as_of` <= `last`): holidays are
    not missed sessions (`joe.data.calendars.sessions_after`)."""
    return sessions_after(SOURCE_CALENDAR, last, as_of)


FUTURE_LEAP = pd.Timedelta(days=10)  # a gap this long into bars past the consensus marks a typo


def _leap(dates: pd.DatetimeIndex, i: int) -> bool:
    """The bar at `i` comes more than `FUTURE_LEAP` after the one before it (or is the first)."""
    return i == 0 or bool(dates[i] - dates[i - 1] > FUTURE_LEAP)


def future_limit(last_dates: list[date], today: date) -> date:
    """The last date a file's bars may reach: `STALE_SESSIONS` NYSE sessions after the newest date
    at least two files reach (the consensus; one file: its own), and never after today + 1 day (a
    session date east of UTC).

    A date past it is a typo or a clock error in that file: taking it as the run's as-of would call
    every other file stale.
    """
    ordered = sorted(last_dates, reverse=True)
    consensus = ordered[1] if len(ordered) >= 2 else ordered[0]
    ahead = nth_session_after(SOURCE_CALENDAR, consensus, STALE_SESSIONS)
    return min(ahead, today + timedelta(days=1))


class FileSource(FrameSource):
    """MarketData over a folder (or one file) of CSV/Parquet bars, validated on load, clipped at as_of.

    A file that cannot be used (unreadable, bad rows) excludes its symbol and is reported in
    `findings` (an error naming the file and row); the folder fails only when no file is usable, or
    when a file's dates are ambiguous (day-first vs month-first): then the run is refused and the
    message names the file and the `--date-format` option.
    """

    account_for_unstarted = True

    def __init__(
        self,
        folder: str | Path,
        pattern: str | tuple[str, ...] = PATTERNS["csv"],
        *,
        as_of: date | None = None,
        kind: str | None = None,
        date_format: str | None = None,
        today: date | None = None,
    ) -> None:
        super().__init__(as_of)
        today = today or clock.utcnow().date()
        patterns = (pattern,) if isinstance(pattern, str) else pattern
        if kind is None:
            kind = "parquet" if any(".parq" in p or p.endswith(".pq") for p in patterns) else "csv"
        self.name = kind
        self.folder = Path(folder).expanduser()
        if self.folder.is_file():
            paths = [self.folder]
        elif self.folder.is_dir():
            paths = sorted(p for p in self.folder.iterdir() if p.is_file() and _matches(p, patterns))
        else:
            raise DataError(
                f"{kind} source: {self.folder} does not exist; give a folder with one file per symbol"
            )
        if not paths:
            raise DataError(
                f"{kind} source: no files matching {', '.join(patterns)} in {self.folder}; put one "
                f"file per symbol there (e.g. AAPL.csv with date, open, high, low, close, volume)"
            )
        self.findings: list[Finding] = []
        # Splits the user confirmed (`joe.data.splits`): splits.csv beside the files is not a symbol.
        self.user_splits: dict[str, list[UserSplit]] = {}
        beside = self.folder.iterdir() if self.folder.is_dir() else iter(())
        listed = [p for p in beside if p.is_file() and p.name.lower() == SPLITS_FILE]
        paths = [p for p in paths if p not in listed]
        if listed:
            self.user_splits = read_splits_file(listed[0])
        self._frames: dict[str, pd.DataFrame] = {}
        self._files: dict[str, LoadedFile] = {}
        formats = DateFormats.parse(date_format)
        typos = formats.unused([p.name for p in paths], [_symbol_of(p) for p in paths])
        if typos:
            raise DataError(
                f"--date-format names {', '.join(typos)}, which is no file in {self.folder}; use a file name "
                f"(AAPL.csv) or its symbol"
            )
        refused: list[str] = []
        # A backtest's load reads the second half of a large folder in a forked helper (`file_ahead`):
        # the same reading of each file; any file it did not read cleanly is read (and reported) here.
        # Each file is read only up to the as-of date: a bad row after it cannot exclude the file.
        with ReadAhead(paths, lambda p: _read_checked(p, formats, as_of)) as ahead:
            for p in paths:
                sym = _symbol_of(p)
                if sym in self._frames or any(
                    f.symbol == sym and f.severity == "error" for f in self.findings
                ):
                    raise DataError(f"{p.name}: symbol {sym} appears in two files in {self.folder}; keep one")
                loaded = ahead.take(p)
                if loaded is None:
                    try:
                        loaded = _read_checked(p, formats, as_of)  # the helper's reading, here
                    except AmbiguousDates as exc:  # the run is refused; name every such file, not the first
                        refused.append(str(exc))
                        continue
                    except DataError as exc:
                        # Dated at its bar when one row is at fault: a backtest replays the days before it
                        # on the file read up to the day before (`joe.backtest.loading`).
                        self.findings.append(
                            Finding(
                                sym,
                                "error",
                                "unreadable",
                                f"{exc}; the symbol is excluded",
                                p.name,
                                exc.row,
                                exc.date,
                            )
                        )
                        continue
                ahead.start()  # after the first file read here (no-op after the first call)
                self.findings.extend(loaded.findings)
                self._files[sym] = loaded
                self._frames[sym] = loaded.frame
                self._instruments[sym] = Instrument(symbol=sym, asset_class=guess_asset_class(sym), name=sym)
        if refused:
            raise (WrongDateFormat if formats.default or formats.per_file else AmbiguousDates)(
                "\n".join(refused)
            )
        for odd in odd_timeframes({s: (f.file, bar_size(f.frame, f.daily)) for s, f in self._files.items()}):
            self.findings.append(odd)  # one bar size per folder (`joe.data.timeframes`)
            del self._frames[odd.symbol], self._files[odd.symbol], self._instruments[odd.symbol]
        if not self._frames:
            first = self.findings[0].message.removesuffix("; the symbol is excluded")
            more = f" (and {len(self.findings) - 1} more files)" if len(self.findings) > 1 else ""
            raise DataError(f"{first}{more}")
        self._drop_future_dates(today, as_of)
        if not self._frames:
            raise DataError(f"{self.findings[-1].message.removesuffix('; the symbol is excluded')}")
        self.native_timeframe = _native_timeframe(self._frames)
        self._last = max(f.index[-1] for f in self._frames.values()).date()
        first = min(f.index[0] for f in self._frames.values()).date()
        if as_of is not None and as_of < first:
            raise DataError(
                f"as-of {as_of} is before the data starts in {self.folder}; choose a date between {first} "
                f"and {self._last}"
            )
        # Shortly after the end is fine (the last bars are the as-of's: a Monday run on Friday's file);
        # past the stale limit every series would be excluded, so say what the data covers instead.
        if as_of is not None and _sessions_between(self._last, as_of) > STALE_SESSIONS:
            raise DataError(
                f"as-of {as_of} is after the data in {self.folder} ends ({self._last}, "
                f"{_sessions_between(self._last, as_of)} sessions earlier: every series would be stale); "
                f"choose a date between {first} and {self._last}, or add the missing bars to the files"
            )

    def _drop_future_dates(self, today: date, as_of: date | None = None) -> None:
        """Exclude files with bars past what the data agrees on (a typed 2033 for 2023), see
        `future_limit`: an error naming the file and first such row; the as-of then comes from the rest.

        With an `as_of` the files are read up to it (`read_file`); one with no bar up to it (a series
        not started yet, read whole) is judged against tomorrow only, and is no part of the consensus:
        the other files' bars after the as-of are not read."""
        unstarted = set()
        if as_of is not None:
            unstarted = {s for s, f in self._frames.items() if f.index[0] >= as_of_cutoff(as_of)}
        ends = [f.index[-1].date() for s, f in self._frames.items() if s not in unstarted]
        limit = future_limit(ends, today) if ends else today + timedelta(days=1)
        tomorrow = as_of_cutoff(today + timedelta(days=1))
        for sym in list(self._frames):
            loaded = self._files[sym]
            dates = loaded.frame.index
            bad = np.flatnonzero(dates >= (tomorrow if sym in unstarted else as_of_cutoff(limit)))
            # Past the consensus, only a leap is a typo: a file whose bars run on, day by day, is just
            # more recent than the others (which are then stale); past tomorrow is always wrong.
            if bad.size and not (dates[bad[0]] >= tomorrow or _leap(dates, int(bad[0]))):
                bad = np.flatnonzero(dates >= tomorrow)
            if not bad.size:
                continue
            i = int(bad[0])
            when = dates[i].date()
            why = (
                f"after today ({today})"
                if when > today + timedelta(days=1)
                else f"more than {STALE_SESSIONS} sessions after the newest date the other files reach"
            )
            self.findings.append(
                Finding(
                    sym,
                    "error",
                    "future_date",
                    f"row {int(loaded.rows[i])}: date {when} is {why} ({len(bad)} such row(s)) - a typo? The "
                    f"symbol is excluded (it would make every other file look stale); fix the date or delete "
                    f"the row",
                    loaded.file,
                    int(loaded.rows[i]),
                    when.isoformat(),
                )
            )
            del self._frames[sym], self._files[sym], self._instruments[sym]

    @property
    def last_date(self) -> date:
        return self._last

    def _raw(self, symbol: str) -> pd.DataFrame | None:
        return self._frames.get(symbol)

    def locate(self, symbol: str, ts: pd.Timestamp) -> tuple[str | None, int | None]:
        """The file and 1-based line of `symbol`'s bar at `ts` (line None when there is no such bar)."""
        loaded = self._files.get(symbol)
        if loaded is None:
            return None, None
        i = int(loaded.frame.index.searchsorted(ts))
        if i < len(loaded.frame) and loaded.frame.index[i] == ts:
            return loaded.file, int(loaded.rows[i])
        return loaded.file, None

    def describe(self) -> str:
        """Plain words on what data this source serves."""
        live = self.universe_now()
        first = min(f.index[0] for f in self._frames.values()).date()
        errors = sum(1 for f in self.findings if f.severity == "error")
        on_day = sum(1 for i in live if (b := self.last_bar(i.symbol)) is not None and b.date() == self.as_of)
        behind = f" ({len(live) - on_day} more a few sessions behind)" if len(live) > on_day else ""
        return (
            f"{self.name} files in {self.folder} as of {self.as_of}: {len(self._frames)} symbols "
            f"({self.native_timeframe} bars, {first}..{self._last}), {on_day} with a bar on the as-of "
            f"date{behind}" + (f"; {errors} file(s) excluded (see data quality)." if errors else ".")
        )
