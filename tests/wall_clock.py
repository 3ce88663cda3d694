"""A test-only switch to run the suite as if the wall clock read a chosen instant (tests/conftest.py).

``JOE_TEST_WALL_CLOCK=2026-12-05T12:00:00Z pytest tests/data`` shifts what `datetime.now()`,
`datetime.utcnow()` and `date.today()` return, in every module of `src/joe` and `tests/`, by one fixed
offset taken when the session starts: the clock then runs on from that instant at the real rate (timeouts
and sleeps still work). A simulator built without a clock (`SimClock()`), Joe's `utcnow()` and a test that
reads the time all see the chosen instant; a simulator a test starts for Joe to trade at does not: it runs on
Joe's market clock (`market_clock.sim_clock`, JOE_SIM_CLOCK_START for `joe sim`), as Joe's runs do.
It finds tests whose outcome depends on the hour, weekday or date the suite happens to run at (UTC vs
New York midnight, weekends, NYSE hours, year ends): run a directory at e.g. 00:10 UTC on a Wednesday,
Saturday noon and 31 Dec 23:50, and compare.

Not shifted: `time.time()`, `time.monotonic()`, `pd.Timestamp.now()`, and child processes (a `joe`
subprocess gets JOE_CLOCK_START from conftest for its market hours, not this shift). So a few tests fail
under the switch by construction, not by the hour: tests/capital's two that compare the simulator's dates
with aiohttp's HTTP `Date` header (time.time). (A daemon subprocess that judged an in-process simulator's
quotes "in the future", tests/runtime/test_daemon_scheduled.py, no longer does: that simulator runs on the
market clock, and a run at Joe's simulator ages its quotes on the simulator's own clock.) Unset (the
default), nothing is patched.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ENV = "JOE_TEST_WALL_CLOCK"
_ROOTS = tuple(str(Path(__file__).resolve().parents[1] / d) for d in ("src", "tests"))
_REAL_DATETIME, _REAL_DATE = datetime, date


def parse_instant(value: str) -> datetime:
    """`value` (ISO 8601 with an offset or Z) as an aware UTC datetime; ValueError naming the variable."""
    try:
        when = _REAL_DATETIME.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{ENV}={value!r} is not an ISO 8601 instant (e.g. 2026-12-05T12:00:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"{ENV}={value!r} needs a UTC offset (e.g. {value}Z)")
    return when.astimezone(UTC)


def shifted_types(offset: timedelta) -> tuple[type, type]:
    """`datetime` and `date` stand-ins whose now/utcnow/today read the real clock + `offset`. Built
    objects are the real types, and isinstance against a stand-in accepts every real one."""

    class _Meta(type):
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, cls._real)  # type: ignore[attr-defined]

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, cls._real)  # type: ignore[attr-defined]

    class ShiftedDatetime(_REAL_DATETIME, metaclass=_Meta):
        _real = _REAL_DATETIME

        def __new__(cls, *args: Any, **kw: Any) -> Any:
            return _REAL_DATETIME(*args, **kw)

        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return _REAL_DATETIME.now(tz) + offset

        @classmethod
        def utcnow(cls) -> Any:
            return _REAL_DATETIME.now(UTC).replace(tzinfo=None) + offset

        @classmethod
        def today(cls) -> Any:
            return _REAL_DATETIME.now() + offset

    class ShiftedDate(_REAL_DATE, metaclass=_Meta):
        _real = _REAL_DATE

        def __new__(cls, *args: Any, **kw: Any) -> Any:
            return _REAL_DATE(*args, **kw)

        @classmethod
        def today(cls) -> Any:
            return (_REAL_DATETIME.now() + offset).date()

    return ShiftedDatetime, ShiftedDate


class WallClockShift:
    """Patches the `datetime`/`date` names of every loaded module under src/ or tests/ (call `apply`
    again after more modules were imported: it patches only the new ones)."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant
        self.dt, self.d = shifted_types(instant - _REAL_DATETIME.now(UTC))
        self.done: set[str] = set()

    def apply(self) -> None:
        for name, mod in list(sys.modules.items()):
            if name in self.done or mod is None:
                continue
            path = str(getattr(mod, "__file__", "") or "")
            if not path.startswith(_ROOTS) or path.endswith("wall_clock.py"):
                continue
            self.done.add(name)
            if getattr(mod, "datetime", None) is _REAL_DATETIME:
                mod.datetime = self.dt  # type: ignore[attr-defined]
            if getattr(mod, "date", None) is _REAL_DATE:
                mod.date = self.d  # type: ignore[attr-defined]
