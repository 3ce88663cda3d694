"""Market calendars: exchange sessions, holidays and early closes, in UTC (`exchange-calendars`).

`calendar_for("NYSE")` gives a `MarketCalendar` (exchange names as brokers spell them map to ISO MIC
codes: NYSE/NASDAQ/ARCA/SMART → XNYS/XNAS, LSE → XLON, XETRA → XETR; FX trades 24/5, crypto 24/7).
`MarketHours` answers "is this symbol's market open now?" for the `PriceStream` (staleness only
counts while a market is open) and for entry checks (no entries while an instrument's market is
closed). Daylight-saving time is the library's: session times are exact UTC instants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

ALIASES: dict[str, str] = {
    "NYSE": "XNYS", "NASDAQ": "XNAS", "ISLAND": "XNAS", "ARCA": "XNYS", "AMEX": "XNYS", "BATS": "XNYS",
    "SMART": "XNYS", "US": "XNYS", "LSE": "XLON", "XETRA": "XETR", "IBIS": "XETR", "FWB": "XETR",
    "FX": "24/5", "IDEALPRO": "24/5", "CURRENCIES": "24/5", "CRYPTO": "24/7", "PAXOS": "24/7",
}  # fmt: skip


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
            self._cal = xcals.get_calendar(mic)
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
