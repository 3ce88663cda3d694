"""How fresh the regime's inputs (S&P 500, VIX) are at the as-of date.

A series is *stale* when it misses a session: its last bar is more than `STALE_AFTER_SESSIONS` (0)
sessions of the New York Stock Exchange (`REGIME_CALENDAR`, exchange-calendars) before the as-of date.
A long weekend or a holiday (Good Friday, Thanksgiving) is no missed session, so never stale; one
missing trading day is. The regime detector lowers its confidence by the same count
(`joe.analysis.regime.RegimeConfig.stale_after_sessions`), and the run's warnings, `run.json` and
the report say how old each input is (sessions, and calendar days).
(Until issue 14 session 6 the age was calendar days with 4 allowed: a missed Monday after a Friday
read fresh, and a series that missed two sessions of a Tuesday-Wednesday was not stale.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from joe.data.calendars import sessions_after

STALE_AFTER_SESSIONS = 0
REGIME_CALENDAR = "XNYS"  # the S&P 500 and the VIX are New York series


@dataclass(frozen=True, slots=True)
class RegimeInput:
    """One regime input: which series fed it, its last bar and its age at the as-of date."""

    name: str  # "S&P 500" | "VIX"
    symbol: str | None  # the source's symbol, or None when the source has none
    last_date: date | None
    as_of: date
    proxy: bool = False  # True for the equal-weight index used when the source has no S&P 500

    @property
    def age_days(self) -> int | None:
        """Calendar days from the last bar to the as-of date (None when missing)."""
        return None if self.last_date is None else (self.as_of - self.last_date).days

    @property
    def age_sessions(self) -> int | None:
        """NYSE sessions after the last bar up to and including the as-of date (None when missing)."""
        if self.last_date is None:
            return None
        return sessions_after(REGIME_CALENDAR, self.last_date, self.as_of)

    @property
    def stale(self) -> bool:
        """Missing, or more than `STALE_AFTER_SESSIONS` sessions behind the as-of date."""
        age = self.age_sessions
        return age is None or age > STALE_AFTER_SESSIONS

    @classmethod
    def of(
        cls, name: str, symbol: str, frame: pd.DataFrame, as_of: pd.Timestamp, *, proxy: bool = False
    ) -> RegimeInput:
        idx = pd.DatetimeIndex(frame.index)
        upto = idx[idx <= as_of + pd.Timedelta(days=1) - pd.Timedelta(1)]
        last = upto[-1].date() if len(upto) else None
        return cls(name, symbol, last, as_of.date(), proxy)

    @classmethod
    def missing(cls, name: str, as_of: pd.Timestamp) -> RegimeInput:
        return cls(name, None, None, as_of.date())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "symbol": self.symbol,
            "last_date": None if self.last_date is None else self.last_date.isoformat(),
            "age_days": self.age_days,
            "age_sessions": self.age_sessions,
            "stale": self.stale,
            "proxy": self.proxy,
        }


def describe_input(i: RegimeInput) -> str:
    """A warning line for a stale or missing input."""
    if i.last_date is None:
        return f"regime input {i.name}: missing from this source"
    return (
        f"regime input {i.name} ({i.symbol}) is stale: last bar {i.last_date}, {i.age_sessions} NYSE "
        f"session(s) ({i.age_days} days) before the as-of date {i.as_of}; its last value is carried and "
        f"the regime's confidence is lowered"
    )
