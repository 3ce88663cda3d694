"""Market calendars: exchange sessions, holidays and early closes, in UTC (`exchange-calendars`).

`calendar_for("NYSE")` gives a `MarketCalendar` (exchange names as brokers spell them map to ISO MIC
codes: NYSE/NASDAQ/ARCA/SMART → XNYS/XNAS, LSE → XLON, XETRA → XETR; FX trades 24/5, crypto 24/7).
`MarketHours` answers "is this symbol's market open now?" for the `PriceStream` (staleness only
counts while a market is open) and for entry checks (no entries while an instrument's market is
closed). Daylight-saving time is the library's: session times are exact UTC instants.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd

ALIASES: dict[str, str] = {
    "NYSE": "XNYS", "NASDAQ": "XNAS", "ISLAND": "XNAS", "ARCA": "XNYS", "AMEX": "XNYS", "BATS": "XNYS",
    "SMART": "XNYS", "US": "XNYS", "LSE": "XLON", "XETRA": "XETR", "IBIS": "XETR", "FWB": "XETR",
    "FX": "24/5", "IDEALPRO": "24/5", "CURRENCIES": "24/5", "CRYPTO": "24/7", "PAXOS": "24/7",
}  # fmt: skip


def load_exchange_calendar(mic: str, **kwargs: Any) -> Any:
    """`exchange_calendars.get_calendar(mic, **kwargs)` without the library's own deprecation noise.

    exchange-calendars builds its tables with `Series.values` on tz-aware columns, which pandas 3.1
    deprecates (Pandas4Warning) — a warning about the library's code, not about the user's data, and one
    that would land on the console of every run. Raises `exchange_calendars.errors.InvalidCalendarName`.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"exchange_calendars")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"exchange_calendars")
        return xcals.get_calendar(mic, **kwargs)


def open_on_minute(cal: Any, minute: datetime) -> bool:
    """`cal.is_open_on_minute(minute)` (an exchange_calendars calendar, `minute` aware UTC) without the
    Pandas4Warning its lookup raises on pandas 3.1 (`DatetimeIndex.values` on a tz-aware index, inside
    the library): it landed on the console of every live/shadow run's market-hours check."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(Series|DatetimeIndex)\.values returning an ndarray")
        return bool(cal.is_open_on_minute(minute))


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session: its date (exchange-local), open and close as UTC instants."""

    day: date
    open: datetime
    close: datetime
    early_close: bool


class MarketCalendar:
    """One exchange's calendar. Raises `ValueError` for an unknown exchange code."""

    def __init__(self, code: str) -> None:
        mic = ALIASES.get(code.upper(), code.upper())
        try:
            self._cal = load_exchange_calendar(mic)
        except xcals.errors.InvalidCalendarName:
            known = ", ".join(sorted(ALIASES))
            raise ValueError(
                f"unknown exchange {code!r}: use an ISO MIC code (XNYS, XLON, ...) or one of {known}"
            ) from None
        self.code = mic
        self.tz = ZoneInfo(str(self._cal.tz))
        self._early = {d.date() for d in self._cal.early_closes}

    def session(self, day: date) -> Session | None:
        """The session on `day` (exchange-local date), or None on weekends and holidays."""
        ts = pd.Timestamp(day)
        if not (self._cal.first_session <= ts <= self._cal.last_session) or not self._cal.is_session(ts):
            return None
        o = self._cal.session_open(ts).to_pydatetime().astimezone(UTC)
        c = self._cal.session_close(ts).to_pydatetime().astimezone(UTC)
        return Session(day, o, c, day in self._early)

    def is_holiday(self, day: date) -> bool:
        """A weekday without a session."""
        return day.weekday() < 5 and self.session(day) is None

    def is_open(self, ts: datetime) -> bool:
        """True while a session is trading at `ts` (aware datetime)."""
        if ts.tzinfo is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        local_day = ts.astimezone(self.tz).date()
        for d in (local_day - timedelta(days=1), local_day):  # a session may start the evening before (24/5)
            s = self.session(d)
            if s is not None and s.open <= ts < s.close:
                return True
        return False

    def sessions(self, start: date, end: date) -> list[Session]:
        """Every session with start <= day <= end."""
        out = []
        d = start
        while d <= end:
            s = self.session(d)
            if s is not None:
                out.append(s)
            d += timedelta(days=1)
        return out

    def trading_days(self, end: date, count: int) -> list[date]:
        """The dates of the last `count` sessions up to and including `end`, oldest first (fewer if
        the calendar's data starts later)."""
        first, last = self._cal.first_session, self._cal.last_session
        hi = min(pd.Timestamp(end), last)
        lo = max(first, hi - pd.Timedelta(days=int(count * 1.5) + 14))
        if hi < first:
            return []
        days = [d.date() for d in self._cal.sessions_in_range(lo, hi)]
        while len(days) < count and lo > first:
            lo = max(first, lo - pd.Timedelta(days=int(count * 1.5) + 14))
            days = [d.date() for d in self._cal.sessions_in_range(lo, hi)]
        return days[-count:]

    def last_sessions(self, end: date, count: int) -> list[Session]:
        """The `count` sessions up to and including `end`, oldest first."""
        out: list[Session] = []
        d = end
        first = self._cal.first_session.date()
        while len(out) < count and d >= first:
            s = self.session(d)
            if s is not None:
                out.append(s)
            d -= timedelta(days=1)
        out.reverse()
        return out


@lru_cache(maxsize=32)
def calendar_for(code: str) -> MarketCalendar:
    """The (cached) calendar of an exchange code or alias."""
    return MarketCalendar(code)


class Hours(Protocol):
    """Anything that knows when a market is open: a `MarketCalendar`, or an instrument's own
    `OpeningHours` (Capital.com `/markets`)."""

    def is_open(self, ts: datetime) -> bool: ...


class MarketHours:
    """Which hours each symbol trades on: `by_symbol` overrides (an exchange code, or `Hours` such as
    an instrument's own opening hours), else `default` (an exchange code)."""

    def __init__(self, default: str = "XNYS", by_symbol: Mapping[str, str | Hours] | None = None) -> None:
        self.default: Hours = calendar_for(default)
        self.by_symbol: dict[str, Hours] = {}
        for s, h in (by_symbol or {}).items():
            self.set(s, h)

    def set(self, symbol: str, hours: str | Hours) -> None:
        """Use `hours` (an exchange code or `Hours`) for `symbol` from now on."""
        self.by_symbol[symbol] = calendar_for(hours) if isinstance(hours, str) else hours

    def calendar(self, symbol: str) -> Hours:
        return self.by_symbol.get(symbol, self.default)

    def is_open(self, symbol: str, now_ns: int) -> bool:
        """The `PriceStream.is_open` hook: `now_ns` is int ns UTC."""
        return self.calendar(symbol).is_open(datetime.fromtimestamp(now_ns / 1e9, UTC))


# -- daily bars' sessions: which calendar a symbol's bars follow ------------------------------------
# Yahoo-style suffixes of non-US listings → their exchange (a file names its symbol, not its exchange).
SUFFIXES: dict[str, str] = {
    "L": "XLON", "DE": "XETR", "F": "XFRA", "PA": "XPAR", "AS": "XAMS", "BR": "XBRU", "MI": "XMIL",
    "MC": "XMAD", "SW": "XSWX", "TO": "XTSE", "T": "XTKS", "HK": "XHKG", "AX": "XASX", "ST": "XSTO",
    "OL": "XOSL", "CO": "XCSE", "HE": "XHEL", "IR": "XDUB", "LS": "XLIS", "VI": "XWBO",
}  # fmt: skip
_SESSION_CLASSES = ("equity", "etf", "index")  # FX trades 24/5, crypto 24/7: no holidays to check


def exchange_of(symbol: str, asset_class: str = "equity", exchange: str = "") -> str | None:
    """The calendar (ISO MIC) whose sessions `symbol`'s daily bars follow, or None for FX, crypto and
    commodities (no exchange holidays). A listing suffix decides (``VOD.L`` → XLON, ``SAP.DE`` → XETR),
    then the instrument's own `exchange` when it is a known calendar, else XNYS (shares, funds and
    indices without a suffix are taken as US listings: the sample, the S&P 500 and the VIX)."""
    if asset_class.lower() not in _SESSION_CLASSES:
        return None
    head, dot, suffix = symbol.rpartition(".")
    if dot and head and suffix.upper() in SUFFIXES:
        return SUFFIXES[suffix.upper()]
    if exchange:
        code = ALIASES.get(exchange.upper(), exchange.upper())
        if code in xcals.get_calendar_names():
            return code
    return "XNYS"


@lru_cache(maxsize=32)
def _session_days(code: str) -> tuple[np.ndarray, np.datetime64, np.datetime64]:
    """Every session date of `code`'s calendar (datetime64[D], sorted) and the calendar's bounds."""
    cal = calendar_for(code)._cal
    days = np.asarray(cal.sessions.values, dtype="datetime64[D]")
    return days, np.datetime64(cal.first_session.date(), "D"), np.datetime64(cal.last_session.date(), "D")


@lru_cache(maxsize=32)
def session_set(code: str) -> tuple[frozenset[date], date, date]:
    """`code`'s session dates as a set (one lookup per day) and the calendar's first and last session:
    the calendar `_session_days` reads (about the last 20 years), loaded once per process."""
    days, first, last = _session_days(code)
    return frozenset(days.astype(object)), first.astype(object), last.astype(object)


def sessions_after(code: str, last: date, as_of: date) -> int:
    """Sessions of `code` in (`last`, `as_of`]: how many sessions a series whose last bar is `last`
    missed at `as_of` (0 when `as_of` <= `last`, or when every day between was a holiday or weekend).
    Outside the calendar's range (exchange-calendars covers about the last 20 years) weekdays count."""
    if as_of <= last:
        return 0
    days, first, end = _session_days(code)
    lo, hi = np.datetime64(last, "D"), np.datetime64(as_of, "D")
    if lo < first or hi > end:
        return int(np.busday_count(lo + 1, hi + 1))
    return int(np.searchsorted(days, hi, side="right") - np.searchsorted(days, lo, side="right"))


def sessions_after_many(code: str, last: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """`sessions_after` element-wise for datetime64[D] arrays (float; NaN where `last` or `as_of` is
    NaT; 0 where `as_of` <= `last`). Outside the calendar's range weekdays count, as there."""
    lo = np.asarray(last, dtype="datetime64[D]")
    hi = np.asarray(as_of, dtype="datetime64[D]")
    out = np.full(np.broadcast(lo, hi).shape, np.nan)
    ok = ~(np.isnat(lo) | np.isnat(hi))
    if not ok.any():
        return out
    days, first, end = _session_days(code)
    lo_ok, hi_ok = np.broadcast_to(lo, out.shape)[ok], np.broadcast_to(hi, out.shape)[ok]
    inside = (lo_ok >= first) & (hi_ok <= end)
    counted = np.searchsorted(days, hi_ok, side="right") - np.searchsorted(days, lo_ok, side="right")
    weekdays = np.busday_count(lo_ok + 1, np.maximum(hi_ok, lo_ok) + 1)
    out[ok] = np.maximum(np.where(inside, counted, weekdays), 0)
    return out


def non_sessions(code: str, stamps: pd.DatetimeIndex) -> np.ndarray:
    """True where a daily bar's date is no session of `code`: a weekend, or a weekday holiday (within the
    calendar's range; older dates are checked for weekends only)."""
    d = np.asarray(stamps.tz_localize(None) if stamps.tz is not None else stamps, dtype="datetime64[D]")
    days, first, end = _session_days(code)
    weekend = ~np.is_busday(d)
    inside = (d >= first) & (d <= end)
    pos = np.searchsorted(days, d)
    hit = (pos < len(days)) & (days[np.minimum(pos, len(days) - 1)] == d)
    return weekend | (inside & ~hit)


def holiday_name(code: str, day: date) -> str | None:
    """The name the calendar gives a weekday holiday ("July 4th", "Summer Bank Holiday"), if any."""
    cal = calendar_for(code)._cal
    ts = pd.Timestamp(day)
    for rule in (cal.regular_holidays,):
        if rule is None:
            continue
        names = rule.holidays(ts, ts, return_name=True)
        if len(names):
            return str(names.iloc[0])
    return None


def nth_session_after(code: str, day: date, n: int) -> date:
    """The date of the `n`-th session of `code` after `day` (weekdays outside the calendar's range)."""
    days, first, _ = _session_days(code)
    d = np.datetime64(day, "D")
    i = int(np.searchsorted(days, d, side="right")) + n - 1
    if d < first or i >= len(days):
        return date.fromisoformat(str(np.busday_offset(d, n, roll="forward")))
    return date.fromisoformat(str(days[i]))


def sessions_between(code: str, first: np.datetime64, last: np.datetime64) -> np.ndarray:
    """The session dates of `code` in [`first`, `last`] (datetime64[D]) that the calendar covers."""
    days, _, _ = _session_days(code)
    return days[np.searchsorted(days, first, side="left") : np.searchsorted(days, last, side="right")]


def day_array(stamps: pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Dates as datetime64[D] (an aware index is taken at its UTC date: daily bars sit at 00:00 UTC)."""
    if isinstance(stamps, pd.DatetimeIndex):
        stamps = stamps.tz_convert(None) if stamps.tz is not None else stamps
    return np.asarray(stamps).astype("datetime64[D]")


def in_sorted(a: np.ndarray, sorted_b: np.ndarray) -> np.ndarray:
    """`np.isin(a, sorted_b)` for a sorted `sorted_b` by binary search (`np.isin` sorts both sides on
    every call: ~4 ms a file when a 500-file folder is loaded, most of the file source's time)."""
    if not len(sorted_b):
        return np.zeros(len(a), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_b, a), len(sorted_b) - 1)
    return np.asarray(sorted_b[pos] == a)


@lru_cache(maxsize=32)
def _weekday_holidays(code: str) -> np.ndarray:
    """Every weekday of `code`'s calendar range that is no session (datetime64[D], sorted)."""
    days, first, end = _session_days(code)
    span = np.arange(first, end + np.timedelta64(1, "D"))
    return span[np.is_busday(span) & ~in_sorted(span, days)]


def keeps_holidays(code: str, stamps: pd.DatetimeIndex | np.ndarray) -> bool:
    """True when a daily series follows `code`'s holidays: of the weekday holidays it could show - those
    whose previous and next sessions both have a bar - it has a bar on at most half (real exchange
    data; a stray holiday bar is then an error in the file). False for a weekday-calendar series -
    synthetic, or a vendor filling holidays - which has a bar on most of them: its holiday bars are its
    calendar, and its rows count as its sessions. True when no holiday can be seen."""
    d = day_array(stamps)
    if len(d) < 2 or not bool(np.all(d[1:] > d[:-1])):  # sorted and unique already: the usual file
        d = np.unique(d)
    if len(d) < 2:
        return True
    # Files of one folder mostly share their dates (and the data-quality stage asks again): one answer
    # per (calendar, dates).
    return _keeps_holidays(code, d.tobytes())


@lru_cache(maxsize=64)
def _keeps_holidays(code: str, day_bytes: bytes) -> bool:
    """`keeps_holidays` for sorted unique days (datetime64[D], at least two) given as their bytes."""
    d = np.frombuffer(day_bytes, dtype="datetime64[D]")
    days, first, end = _session_days(code)
    lo, hi = max(d[0], first), min(d[-1], end)
    if lo > hi:
        return True
    every = _weekday_holidays(code)
    holidays = every[np.searchsorted(every, lo, side="left") : np.searchsorted(every, hi, side="right")]
    if not holidays.size:
        return True
    k = np.searchsorted(days, holidays)
    seen = (k > 0) & (k < len(days))
    prev, nxt = days[np.maximum(k - 1, 0)], days[np.minimum(k, len(days) - 1)]
    seen &= in_sorted(prev, d) & in_sorted(nxt, d)
    if not seen.any():
        return True
    return int(in_sorted(holidays[seen], d).sum()) * 2 <= int(seen.sum())
