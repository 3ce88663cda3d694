"""Timestamps for the audit chain: never backwards, and a clock jump is recorded, not followed.

A record's ``ts`` is the wall clock, except:

* **backwards** — a reading older than the chain's last record is stamped with the last record's
  time (timestamps are monotonic per chain, which `verify` checks);
* **a jump** — while this writer knows how much time really passed (a monotonic clock since its
  previous record), a reading more than ``max_jump_s`` away from that estimate is not followed: the
  record is stamped with the estimate, and an ``audit.clock_jump`` record saying what the clock read
  goes first. A jump that persists for ``confirm`` consecutive records is real (an NTP step after a
  wrong start-up clock) and is followed, again with an ``audit.clock_jump`` record;
* **far from the chain** — a reading more than ``max_gap_days`` before or after the chain's last
  record is never followed, whether it is this process's first reading (no monotonic reference yet:
  one `joe kill` started before NTP stepped the clock) or a persisting one: the record is stamped from
  the last trusted time (the chain's last record, plus the monotonic time elapsed since this writer's first
  record) and an ``audit.clock_jump`` record says what the clock read. A later process with a sane
  clock is then within bounds of the chain and writes the right date.

So a single far-future reading can no longer move every later record into a far-future file. The
price of the far bound: a data folder left idle for longer than ``max_gap_days`` (default 366) keeps
its old date, flagged, until the chain is started afresh in a new audit folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CLOCK_JUMP_EVENT = "audit.clock_jump"
DEFAULT_MAX_JUMP_S = 60.0
DEFAULT_CONFIRM = 3
# A year and a day: longer than any pause between two runs of one data folder we plan for, far shorter
# than the decade a wrong RTC or an unset clock (2036, 1970) is off by.
DEFAULT_MAX_GAP_DAYS = 366.0


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
        max_gap_days: float = DEFAULT_MAX_GAP_DAYS,
    ) -> None:
        self._clock = clock
        self._mono = monotonic
        self.max_jump = timedelta(seconds=max_jump_s)
        self.max_gap = timedelta(days=max_gap_days)
        self.confirm = max(1, confirm)
        self._ref: tuple[datetime, float] | None = None  # (time written, monotonic then)
        self._suspect = 0  # consecutive readings off the estimate
        self._far_ref: tuple[datetime, float | None] | None = None  # see `stamp`: far first readings

    def stamp(self, last: datetime | None) -> Stamp:
        """The timestamp for the next record, given the chain's last record time `last`."""
        reading = self._clock()
        if reading.tzinfo is None:
            reading = reading.replace(tzinfo=UTC)
        mono = self._mono() if self._mono is not None else None
        ts, jump = reading, None
        # Beyond the far bound of the chain's last record: never followed, however long it persists.
        far = last is not None and abs(reading - last) > self.max_gap
        if self._ref is not None and mono is not None:
            expected = self._ref[0] + timedelta(seconds=max(0.0, mono - self._ref[1]))
            off = reading - expected
            if abs(off) > self.max_jump:
                self._suspect += 1
                if self._suspect < self.confirm or far:
                    ts = expected
                    if self._suspect == 1:
                        jump = _jump(reading, expected, followed=False)
                else:
                    jump = _jump(reading, expected, followed=True)
                    self._suspect = 0
            else:
                self._suspect = 0
        elif not far:
            self._suspect, self._far_ref = 0, None
        elif last is not None:
            # No reference of our own yet, and the reading is far from the chain: stamp from the chain's
            # last record plus the monotonic time since we first saw that, and keep no reference, so the
            # next sane reading is judged afresh against the chain.
            if self._far_ref is None:
                self._far_ref = (last, mono)
                jump = _jump(reading, last, followed=False)
            base, mono0 = self._far_ref
            ts = (
                base + timedelta(seconds=max(0.0, mono - mono0))
                if mono is not None and mono0 is not None
                else base
            )
            if last is not None and ts < last:
                ts = last
            return Stamp(ts, jump)
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
