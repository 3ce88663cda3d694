"""The daemon applies a confirmed split to the positions it watches (issue 14).

`joe.execution.monitor_splits` holds an instrument's watched positions when its quotes jump by a real
split's factor (no backup exit, no trailing; the broker-side stop stays). Holding is safe but leaves
the bot-side backup stop off. `SplitFollower` ends the hold the right way: a suspected split that is
**confirmed** is applied (`PositionMonitor.apply_split`: quantity × r, entry/stop/target/trail ÷ r)
without a restart, audited and alerted.

Confirmed means both:

* the monitor saw the jump (`SplitSuspect`: the first quote after the previous mark moved by a
  split's factor), and
* ``splits.csv`` in the daemon's data folder (``JOE_DATA_DIR``; the file the CSV source reads, same
  columns ``symbol,date[,ratio]``) lists a split of that symbol within
  `joe.data.splits.CONFIRM_WINDOW_DAYS` days of the day the jump was seen, whose ratio (when given) is
  the jump's within `joe.execution.monitor_splits.SPLIT_TOL` (log). The listed ratio is applied (the
  jump's own factor when the line has none).

A listed split alone never adjusts anything: before the first post-split quote the levels would be
in the wrong units the other way (a take-profit ÷ 4 is reached by every pre-split quote). A jump the
file does not list stays held (the file is re-read on every `check` - the daemon runs it every
`CHECK_EVERY_S` seconds while a split is pending - so adding the line later is enough). A listed
ratio that is not the jump's is refused (``daemon.split_mismatch``, alerted once): the hold stays.
An unreadable ``splits.csv`` is audited (``daemon.splits_file_error``) and alerted once; the hold stays.

Audit: ``daemon.split_applied`` {symbol, ratio, positions, source, seen}. Not covered: corporate
actions the broker reports (IBKR, Capital.com) are not read; ``splits.csv`` is the confirmation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from joe.core.events import AuditSink
from joe.data.errors import DataError
from joe.data.splits import CONFIRM_WINDOW_DAYS, SPLITS_FILE, UserSplit, read_splits_file, split_label
from joe.execution.monitor_splits import SPLIT_TOL, SplitSuspect
from joe.execution.position_monitor import PositionMonitor

log = logging.getLogger(__name__)
CHECK_EVERY_S = 5.0  # how often the daemon looks for a confirmation of a held split (and re-reads the file)


@dataclass(frozen=True, slots=True)
class _Pending:
    suspect: SplitSuspect
    seen: date  # the day (UTC, the daemon's clock) the jump was seen


class SplitFollower:
    """Applies suspected splits that ``splits.csv`` confirms to `monitor` (module docstring).

    `today` gives the daemon's date (injected: tests and rehearsals set it); `alert(symbol, text)`
    sends an operator alert (the daemon's ``order_event("split", ...)``).
    """

    def __init__(
        self,
        monitor: PositionMonitor,
        audit: AuditSink,
        splits_file: Path,
        today: Callable[[], date],
        alert: Callable[[str, str], None] | None = None,
    ) -> None:
        self.monitor = monitor
        self.audit = audit
        self.path = splits_file
        self.today = today
        self.alert = alert
        self._pending: dict[str, _Pending] = {}
        self._told: set[tuple[str, str]] = set()  # (symbol or file, why) already alerted

    @classmethod
    def in_data_dir(
        cls,
        monitor: PositionMonitor,
        audit: AuditSink,
        data_dir: Path,
        today: Callable[[], date],
        alert: Callable[[str, str], None] | None = None,
    ) -> SplitFollower:
        return cls(monitor, audit, Path(data_dir) / SPLITS_FILE, today, alert)

    @property
    def pending(self) -> list[str]:
        """Symbols whose suspected split waits for confirmation."""
        return sorted(self._pending)

    def on_suspect(self, suspect: SplitSuspect) -> None:
        """A `PositionMonitor.split_listeners` hook: remember the jump. (Confirmed on the next `check`,
        never inside the monitor's quote path, which is iterating its positions.)"""
        self._pending[suspect.symbol] = _Pending(suspect, self.today())

    def periodic(self, every_s: float = CHECK_EVERY_S) -> tuple[str, float, Callable[[], Awaitable[None]]]:
        """The daemon's periodic hook (name, period in s, coroutine function) that runs `check`."""
        return ("splits", every_s, self.check_async)

    async def check_async(self) -> None:
        """`check` for the daemon's periodic hooks."""
        self.check()

    def check(self) -> list[str]:
        """Apply every pending split ``splits.csv`` confirms; returns the adjusted position ids."""
        if not self._pending:
            return []
        self._drop_released()
        listed = self._read()
        if listed is None:
            return []
        done: list[str] = []
        for symbol, pending in list(self._pending.items()):
            match = self._match(symbol, pending, listed.get(symbol, []))
            if match is None:
                continue
            ratio = match.factor if match.factor is not None else pending.suspect.ratio
            ids = self.monitor.apply_split(symbol, ratio)
            del self._pending[symbol]
            payload = {"symbol": symbol, "ratio": ratio, "positions": ids, "source": match.source,
                       "seen": pending.seen.isoformat()}  # fmt: skip
            self.audit.record("daemon.split_applied", payload)
            text = (
                f"{symbol}: {split_label(ratio)} split confirmed in {match.source}; {len(ids)} watched "
                f"position(s) adjusted (quantity × {ratio:g}, levels ÷ {ratio:g}), backup stop re-armed"
            )
            self._tell(symbol, "applied", text)
            done += ids
        return done

    def _drop_released(self) -> None:
        """Forget symbols none of whose positions is still held (the price came back, or closed)."""
        for symbol in list(self._pending):
            held = [p for p in self.monitor.position_ids() if self.monitor.symbol_of(p) == symbol]
            if not any(self.monitor.split_held(p) for p in held):
                del self._pending[symbol]

    def _read(self) -> dict[str, list[UserSplit]] | None:
        if not self.path.is_file():
            return {}
        try:
            return read_splits_file(self.path)
        except DataError as exc:
            self.audit.record("daemon.splits_file_error", {"file": str(self.path), "error": str(exc)})
            self._tell(str(self.path), str(exc), f"{exc}: suspected splits stay held until it is fixed")
            return None

    def _match(self, symbol: str, pending: _Pending, listed: list[UserSplit]) -> UserSplit | None:
        near = [u for u in listed if abs((u.day - pending.seen).days) <= CONFIRM_WINDOW_DAYS]
        jump = pending.suspect.ratio
        for u in near:
            if u.factor is None or abs(math.log(u.factor / jump)) <= SPLIT_TOL:
                return u
        for u in near:
            assert u.factor is not None
            payload = {"symbol": symbol, "listed": u.factor, "jump": jump, "source": u.source}
            if (symbol, u.source) not in self._told:
                self.audit.record("daemon.split_mismatch", payload)
            text = (
                f"{symbol}: {u.source} lists a {split_label(u.factor)} split but the quotes jumped by a "
                f"{split_label(jump)}'s factor: not applied, the positions stay held (the broker's stop "
                "protects); fix the line"
            )
            self._tell(symbol, u.source, text)
        return None

    def _tell(self, key: str, why: str, text: str) -> None:
        if (key, why) in self._told:
            return
        self._told.add((key, why))
        log.warning("%s", text)
        if self.alert is not None:
            try:
                self.alert(key, text)
            except Exception as exc:  # an alert channel must not stop the adjustment
                log.error("split alert failed: %r", exc)
