"""Timestamps for the audit chain: never backwards, and a clock jump is recorded, not followed.

A record's ``ts`` is the wall clock, except:

* **backwards** — a reading older than the chain's last record is stamped with the last record's
  time (timestamps are monotonic per chain, which `verify` checks);
* **a jump** — while this writer knows how much time really passed (a monotonic clock since its
  previous record), a reading more than ``max_jump_s`` away from that estimate is not followed: the
  record is stamped with the estimate, and an ``audit.clock_jump`` record saying what the clock read
  goes first. A jump that persists for ``confirm`` consecutive records is real (an NTP step after a
  wrong start-up clock) and is followed, again with an ``audit.clock_jump`` record.

So a single far-future reading can no longer move every later record into a far-future file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CLOCK_JUMP_EVENT = "audit.clock_jump"
DEFAULT_MAX_JUMP_S = 60.0
DEFAULT_CONFIRM = 3


def format_ts(ts: datetime) -> str:
    """The on-disk form: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, so text order = time order)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime | None:
    """Inverse of `format_ts` (None when `text` is not a timestamp)."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Stamp:
    """The time to write, and the ``audit.clock_jump`` payload to record first (if any)."""

    ts: datetime
    jump: dict[str, Any] | None = None


class ClockGuard:
    """Decides each record's timestamp (see the module docstring).

    `clock` gives wall time; `monotonic` (seconds, never going back) the real elapsed time. Without a
    monotonic source only the backwards rule applies.
    """

    def __init__(
        self,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] | None,
        *,
        max_jump_s: float = DEFAULT_MAX_JUMP_S,
        confirm: int = DEFAULT_CONFIRM,
    ) -> None:
        self._clock = clock
        self._mono = monotonic
        self.max_jump = timedelta(seconds=max_jump_s)
        self.confirm = max(1, confirm)
        self._ref: tuple[datetime, float] | None = None  # (time written, monotonic then)
        self._suspect = 0  # consecutive readings off the estimate

    def stamp(self, last: datetime | None) -> Stamp:
        """The timestamp for the next record, given the chain's last record time `last`."""
        reading = self._clock()
        if reading.tzinfo is None:
            reading = reading.replace(tzinfo=UTC)
        mono = self._mono() if self._mono is not None else None
        ts, jump = reading, None
        if self._ref is not None and mono is not None:
            expected = self._ref[0] + timedelta(seconds=max(0.0, mono - self._ref[1]))
            off = reading - expected
            if abs(off) > self.max_jump:
                self._suspect += 1
                if self._suspect < self.confirm:
                    ts = expected
                    if self._suspect == 1:
                        jump = _jump(reading, expected, followed=False)
                else:
                    jump = _jump(reading, expected, followed=True)
                    self._suspect = 0
            else:
                self._suspect = 0
        if last is not None and ts < last:
            if jump is None and last - ts > self.max_jump:
                jump = _jump(reading, last, followed=False)
            ts = last
        if mono is not None:
            self._ref = (ts, mono)
        return Stamp(ts, jump)


def _jump(reading: datetime, used: datetime, *, followed: bool) -> dict[str, Any]:
    return {
        "clock_read": format_ts(reading),
        "stamped": format_ts(used),
        "offset_s": round((reading - used).total_seconds(), 6),
        "followed": followed,
    }
