"""`TradingState`: ACTIVE → REDUCING (exits only) → HALTED (no new orders), persisted and audited.

Automated guards (kill switch, circuit breakers, margin monitor, protections, reconciliation) only
ever move the state *down* (`TradingStateStore.escalate`); only a human with a reason moves it back
up (`TradingStateStore.resume`, reached through ``joe resume``). The state lives in the store
(``kv_state`` key ``safety.trading_state``) and its audit record is written inside the same
transaction, so the store's audit anchor is committed with the state it describes, and a restart
finds exactly the state (and why) it left. The rule comes from DESIGN.md "Trading state and the
kill switch"; Freqtrade's ``/stopentry`` is the counter-example (lost on restart).

Every persisted change is told, after its transaction, to the store's ``on_change`` callback (the
`SafetyContext` uses it for the state-change alert) and to every process-wide listener
(`add_state_listener`): the `HaltEnforcer` listens so that a move to HALTED by *any* guard in this
process — breaker, margin monitor, reconciler, kill switch — cancels the working entry orders at
once. Moves made by another process (``joe kill``, the kill file) are picked up by its poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from joe.audit.redaction import redact_text
from joe.core.clock import utcnow
from joe.core.events import AuditSink

if TYPE_CHECKING:
    from joe.store import Store

STATE_KEY = "safety.trading_state"
STATE_EVENT = "safety.state_changed"
MIN_RESUME_REASON = 5


class TradingState(StrEnum):
    """What may be sent. Ordered by severity: ACTIVE < REDUCING < HALTED."""

    ACTIVE = "active"  # everything allowed
    REDUCING = "reducing"  # exits, reduce-only orders and cancels only
    HALTED = "halted"  # no new orders (cancels allowed; protective stops stay at the broker)

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def allows_entries(self) -> bool:
        return self is TradingState.ACTIVE

    def allows_exits(self) -> bool:
        """Reduce-only exits: allowed while REDUCING; while HALTED only a human's flatten sends them."""
        return self is not TradingState.HALTED


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class ResumeRefused(ValueError):
    """`resume` was called without a usable reason, or while a kill file is present."""


@dataclass(frozen=True, slots=True)
class StateRecord:
    """The current state, who set it (``cli``, ``kill-file``, ``breaker:ibkr``...), why and when (UTC ISO)."""

    state: TradingState
    by: str
    reason: str
    since: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_json(cls, raw: Any) -> StateRecord | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(TradingState(raw["state"]), str(raw["by"]), str(raw["reason"]), str(raw["since"]))
        except (KeyError, ValueError):
            return None


INITIAL = StateRecord(TradingState.ACTIVE, "default", "never changed", "")

StateListener = Callable[[StateRecord, StateRecord], None]  # (before, after); must not raise
_listeners: list[StateListener] = []


def add_state_listener(fn: StateListener) -> Callable[[], None]:
    """Call `fn(before, after)` after every persisted state change in this process; returns a remover."""
    _listeners.append(fn)

    def remove() -> None:
        if fn in _listeners:
            _listeners.remove(fn)

    return remove


def _notify(before: StateRecord, after: StateRecord, own: StateListener | None) -> None:
    for fn in ([own] if own is not None else []) + list(_listeners):
        try:
            fn(before, after)
        except Exception:  # a listener never undoes or blocks a state change
            logging.getLogger(__name__).exception("trading-state listener %r failed", fn)


def read_stored_state(store: Store) -> tuple[StateRecord | None, str]:
    """The stored state without side effects: ``(record, "")``, or ``(None, why)`` when it is unreadable
    (which every reader treats as HALTED; `TradingStateStore.current` also repairs it). The one rule,
    shared by Joe and its read-only exporters (``/metrics``)."""
    try:
        raw = store.get_state(STATE_KEY)
    except ValueError as e:  # json.JSONDecodeError from the store's JSON column
        return None, f"not JSON ({type(e).__name__}: {e})"
    if raw is None:
        return INITIAL, ""
    rec = StateRecord.from_json(raw)
    if rec is None:
        return None, f"not a trading state: {raw!r:.80}"
    return rec, ""


class TradingStateStore:
    """Reads and changes the persisted `TradingState` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        audit: AuditSink,
        clock: Callable[[], datetime] = utcnow,
        on_change: StateListener | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self._clock = clock
        self._on_change = on_change

    def current(self) -> StateRecord:
        """The persisted state; an unreadable value is HALTED (fail closed), never ACTIVE.

        Unreadable means not JSON at all (a damaged row, a hand edit) or JSON that is not a state
        record (``{"state": "paused"}``). Such a value is replaced by a HALTED record saying so, and
        audited, once (`_unreadable`); ``joe resume --reason …`` is the way back, as for any halt.
        """
        rec, why = read_stored_state(self.store)
        return rec if rec is not None else self._unreadable(why)

    def _unreadable(self, why: str) -> StateRecord:
        """Store and audit HALTED in place of an unreadable value; returns it even if that fails."""
        reason = redact_text(
            f"unreadable stored state ({STATE_KEY}): {why}; trading is halted until a human checks the "
            "data folder and runs `joe resume --reason ...`"
        )
        rec = StateRecord(TradingState.HALTED, "store", reason, self._clock().isoformat())
        try:
            with self.store.atomic():
                self.store.set_state(STATE_KEY, rec.to_json())
                self.audit.record(
                    STATE_EVENT,
                    {
                        "from": "unreadable",
                        "to": rec.state.value,
                        "by": rec.by,
                        "reason": reason,
                        "action": "repair",
                    },
                )
        except Exception as e:  # a read-only store, a failing audit: still HALTED, said in the log
            logging.getLogger(__name__).error(
                "trading state: could not store the repair: %s", type(e).__name__
            )
        return rec

    def escalate(self, to: TradingState, *, by: str, reason: str) -> tuple[StateRecord, bool]:
        """Move to `to` if it is more severe than now; returns (state after, changed?).

        Never moves the state up: an automated guard cannot undo another's halt. If the audit record
        cannot be written the more restrictive state is still stored (failing closed), then the error
        is raised.
        """
        try:
            with self.store.atomic():
                cur = self.current()
                if to.severity <= cur.state.severity:
                    return cur, False
                new = self._set(cur, to, by=by, reason=reason, action="escalate")
        except Exception:
            cur = self.current()
            if to.severity > cur.state.severity:
                why = redact_text(f"{reason} (audit write failed)")
                new = StateRecord(to, redact_text(by), why, self._clock().isoformat())
                self.store.set_state(STATE_KEY, new.to_json())
                _notify(cur, new, self._on_change)
            raise
        _notify(cur, new, self._on_change)
        return new, True

    def resume(self, *, by: str, reason: str, to: TradingState = TradingState.ACTIVE) -> StateRecord:
        """A human moves the state back up to `to` (default ACTIVE). Raises `ResumeRefused` without a
        reason of at least `MIN_RESUME_REASON` characters or when `to` is not less severe."""
        if len(reason.strip()) < MIN_RESUME_REASON:
            raise ResumeRefused(f"a resume needs a written reason (at least {MIN_RESUME_REASON} characters)")
        with self.store.atomic():
            cur = self.current()
            if to.severity >= cur.state.severity:
                raise ResumeRefused(f"trading is already {cur.state.value}; nothing to resume to {to.value}")
            new = self._set(cur, to, by=by, reason=reason.strip(), action="resume")
        _notify(cur, new, self._on_change)
        return new

    def _set(self, cur: StateRecord, to: TradingState, *, by: str, reason: str, action: str) -> StateRecord:
        # Human text goes to the store as well as the audit log: the same redaction (a pasted key).
        by, reason = redact_text(by), redact_text(reason)
        new = StateRecord(to, by, reason, self._clock().isoformat())
        self.store.set_state(STATE_KEY, new.to_json())
        self.audit.record(
            STATE_EVENT,
            {"from": cur.state.value, "to": to.value, "by": by, "reason": reason, "action": action},
        )
        return new
