"""The IBKR simulator's daily history across clock moves: each session it left keeps its close.

Before its clock first moves to a later day, the simulator serves daily bars as a seeded walk ending
at the current mid (`market.make_bars`). `POST /_sim/clock` moving to a later day records, for every
symbol it prices, the mid at that moment as the close of the session the clock left (the last NYSE
session on or before the old date). From then on a daily history request is:

* the seeded walk ending at the first recorded close, on that first session (unchanged bars: what a
  client saw before the move is what it sees after it), then
* one bar per later NYSE session (exchange-calendars, so a Friday is followed by Monday and a
  holiday has no bar): open = the previous close, close = that session's recorded close (a session
  the clock jumped over keeps the previous close), and the clock's own session closes at the
  current mid (the forming bar, as TWS serves today's bar).

Prices are in the symbol's currency (USD), dates are the session's date (``YYYYMMDD``, as TWS
sends daily bars).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from joe.data.calendars import calendar_for
from joe.simulators.ibkr.codec import SimBar
from joe.simulators.ibkr.market import _d, _rng, make_bars

CALENDAR = "XNYS"


def session_on_or_before(day: date) -> date:
    """The last NYSE session on or before `day` (a weekend or holiday gives the session before)."""
    days = calendar_for(CALENDAR).trading_days(day, 1)
    return days[-1] if days else day


class SessionCloses:
    """{symbol: [(session date, close)]}, oldest first, recorded when the clock leaves a session."""

    def __init__(self) -> None:
        self.closes: dict[str, list[tuple[date, float]]] = {}

    def leave(self, old_now: datetime, new_now: datetime, mids: Iterable[tuple[str, float]]) -> None:
        """The clock moves from `old_now` to `new_now`: on a later date, `mids` close the old session."""
        if new_now.date() <= old_now.date():
            return
        day = session_on_or_before(old_now.date())
        for symbol, mid in mids:
            rec = self.closes.setdefault(symbol, [])
            if rec and rec[-1][0] >= day:
                continue
            rec.append((day, float(mid)))

    def daily_bars(
        self, seed: int, symbol: str, mid: float, count: int, end: datetime
    ) -> list[SimBar] | None:
        """The newest `count` daily bars up to `end`'s session, or None when `symbol` has no recorded
        close on or before `end` (the caller serves the plain seeded walk)."""
        rec = [(d, c) for d, c in self.closes.get(symbol, []) if d <= end.date()]
        if not rec:
            return None
        first_day, first_close = rec[0]
        anchor = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
        bars = make_bars(seed, symbol, first_close, "1 day", count, anchor)
        recorded = dict(rec[1:])
        later = calendar_for(CALENDAR).sessions(first_day + timedelta(days=1), end.date())
        prev = first_close
        for n, s in enumerate(later, 1):
            day = s.day
            close = recorded.get(day, mid if day == end.date() else prev)
            # Keyed by the session's count from the first recorded one, not its date: the same
            # clock moves give the same bars whatever day the simulator started (as `make_bars`).
            r = _rng(seed, "session", symbol, f"s{n}")
            high = max(prev, close) * (1 + abs(r.gauss(0.0, 0.006)))
            low = min(prev, close) * (1 - abs(r.gauss(0.0, 0.006)))
            volume = max(int(r.uniform(1e5, 5e6)), 1)
            bars.append(SimBar(day.strftime("%Y%m%d"), _d(prev), _d(high), _d(low), _d(close), volume))
            prev = close
        return bars[-max(1, count) :]
