"""How fresh the regime's inputs (S&P 500, VIX) are at the as-of date.

A series is *stale* when its last bar is more than `STALE_AFTER_DAYS` calendar days before the as-of
date (4 days covers a weekend plus a one-day holiday). The regime detector lowers its confidence
for a stale input by the same rule (`joe.analysis.regime.RegimeConfig.stale_after_days`), and the
run's warnings, `run.json` and the report say how old each input is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

STALE_AFTER_DAYS = 4


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
    def stale(self) -> bool:
        """Missing, or last bar more than `STALE_AFTER_DAYS` days before the as-of date."""
        age = self.age_days
        return age is None or age > STALE_AFTER_DAYS

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
            "stale": self.stale,
            "proxy": self.proxy,
        }


def describe_input(i: RegimeInput) -> str:
    """A warning line for a stale or missing input."""
    if i.last_date is None:
        return f"regime input {i.name}: missing from this source"
    return (
        f"regime input {i.name} ({i.symbol}) is stale: last bar {i.last_date}, {i.age_days} days before "
        f"the as-of date {i.as_of}; its last value is carried and the regime's confidence is lowered"
    )
