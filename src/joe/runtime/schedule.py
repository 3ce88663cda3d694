"""The daemon's run schedule, in exchange time (DST handled by the calendar).

A `ScheduleRule` is anchored to the session's open or close (minutes before or after), or to a fixed
exchange-local clock time. `Schedule.runs_on(day)` turns the rules into UTC instants for one day:
- no session (weekend, holiday) → no runs;
- open/close anchors follow the real session, so an early close moves a close-anchored run earlier;
- a fixed-time run later than the day's close (an early close) is skipped: no run, hence no entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from joe.data.calendars import MarketCalendar


class Anchor(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    TIME = "time"


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    """`name`: the run's label; `anchor` open/close with `offset_min` (negative = before), or `time`
    with `at` (exchange-local wall-clock time)."""

    name: str
    anchor: Anchor
    offset_min: int = 0
    at: time | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a schedule rule needs a name")
        if (self.anchor is Anchor.TIME) != (self.at is not None):
            msg = f"schedule rule {self.name!r}: 'at' is required for anchor 'time' and only for it"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    name: str
    at: datetime  # UTC
    day: date  # the session's exchange-local date
    # Symbols the run must not enter: the daemon's stale instruments when the run fired.
    no_entries: tuple[str, ...] = ()


class Schedule:
    """Rules on one exchange calendar."""

    def __init__(self, calendar: MarketCalendar, rules: list[ScheduleRule]) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule rule names must be unique: {names}")
        self.calendar = calendar
        self.rules = list(rules)

    def runs_on(self, day: date) -> list[ScheduledRun]:
        """The day's runs in UTC, in time order (see the module docstring)."""
        s = self.calendar.session(day)
        if s is None:
            return []
        out = []
        for r in self.rules:
            if r.anchor is Anchor.OPEN:
                at = s.open + timedelta(minutes=r.offset_min)
            elif r.anchor is Anchor.CLOSE:
                at = s.close + timedelta(minutes=r.offset_min)
            else:
                assert r.at is not None
                at = datetime.combine(day, r.at, tzinfo=self.calendar.tz).astimezone(UTC)
                if at > s.close:
                    continue  # after an early close: the market is shut, no run
            out.append(ScheduledRun(r.name, at, day))
        return sorted(out, key=lambda x: x.at)

    def next_run(self, after: datetime, horizon_days: int = 14) -> ScheduledRun | None:
        """The first run strictly after `after` (aware), looking `horizon_days` ahead."""
        if after.tzinfo is None:
            raise ValueError("next_run needs a timezone-aware datetime")
        d = after.astimezone(self.calendar.tz).date() - timedelta(days=1)
        for _ in range(horizon_days + 2):
            for run in self.runs_on(d):
                if run.at > after:
                    return run
            d += timedelta(days=1)
        return None
