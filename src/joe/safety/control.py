"""The safety operations — the one place the CLI, the dashboard and Telegram all call.

Each channel only translates to and from these functions (Freqtrade's ``rpc.py`` model, see
STYLE.md): `kill`, `resume`, `check_kill_file`, `flatten`, `entry_allowed`. State changes are
persisted and audited by `TradingStateStore`; the kill switch itself is audited here as
``safety.kill`` / ``safety.resume`` with who and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from joe.audit.errors import AuditWriteError
from joe.audit.redaction import redact_text
from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.core.models import OrderLeg
from joe.safety.alerts import ExecutionAlerts
from joe.safety.flatten import FlattenReport, FlattenVenue, flatten_venue
from joe.safety.kill_switch import KillFile, KillLevel, read_kill_file
from joe.safety.trading_state import ResumeRefused, StateRecord, TradingState, TradingStateStore

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.store import Store


@dataclass
class SafetyContext:
    """What the operations need: the store, the audit log, the data folder, a clock, alerts."""

    store: Store
    audit: AuditSink
    data_dir: Path
    clock: Callable[[], datetime] = utcnow
    alerts: ExecutionAlerts = field(default_factory=ExecutionAlerts)

    @classmethod
    def from_runtime(cls, rt: Runtime, alerts: ExecutionAlerts | None = None) -> SafetyContext:
        return cls(rt.store, rt.audit, rt.data_dir, alerts=alerts or ExecutionAlerts())

    @property
    def states(self) -> TradingStateStore:
        return TradingStateStore(self.store, self.audit, self.clock, on_change=self._state_changed)

    def _state_changed(self, before: StateRecord, after: StateRecord) -> None:
        if after.state is not before.state:
            self.alerts.state_changed(after.state.value, after.by, after.reason)


def alert_on_state_changes(ctx: SafetyContext) -> Callable[[], None]:
    """Alert through `ctx.alerts` every state change made in this process, also by guards holding their
    own `TradingStateStore` (the reconciler); returns the remover. Changes made through `ctx.states`
    are alerted either way; the queue's dedup key makes the two reports of one change one alert."""
    from joe.safety.trading_state import add_state_listener

    return add_state_listener(ctx._state_changed)


class KillDegraded(AuditWriteError):
    """The kill took effect but could not be fully recorded (a full or failing data disk).

    An `AuditWriteError` (callers fail closed on that one type). `state` is the trading state after it
    (None when the store could not be read either) and `kill_file` the ``KILL`` file written as the
    fallback (None when the store took the move). The message says what happened and what to do; the
    callers (CLI, dashboard, Telegram) show it."""

    def __init__(
        self, message: str, state: StateRecord | None, kill_file: Path | None, where: Path | None = None
    ) -> None:
        RuntimeError.__init__(self, message)
        self.path = where or Path(".")
        self.errno = None
        self.state = state
        self.kill_file = kill_file


def kill(ctx: SafetyContext, level: KillLevel, *, reason: str, by: str) -> StateRecord:
    """Pull the kill switch at `level` (reduce → REDUCING, halt/flatten → HALTED); returns the state.

    A kill is never refused: an empty reason is recorded as "no reason given". Flattening the
    positions is `flatten`'s job (it needs broker connections); this only moves the state.

    Fail closed (review r16, defect 6): the state moves even when the audit record cannot be written,
    and when the store cannot take the move either the ``KILL`` file is written (it needs at most one
    block; an empty one is HALT). Either way `KillDegraded` is raised afterwards, saying so.
    """
    why = redact_text(reason.strip()) or "no reason given"
    failures: list[str] = []
    try:
        ctx.audit.record("safety.kill", {"level": level.value, "reason": why, "by": by})
    except Exception as exc:
        failures.append(f"audit: {type(exc).__name__}: {exc}")
    rec: StateRecord | None = None
    changed = False
    try:
        rec, changed = ctx.states.escalate(level.state, by=by, reason=f"kill --{level.value}: {why}")
    except Exception as exc:
        failures.append(f"state: {type(exc).__name__}: {exc}")
        try:
            rec = ctx.states.current()
        except Exception:
            rec = None
    if not failures and rec is not None:
        ctx.alerts.kill(level.value, by, why, rec.state.value, changed)
        return rec
    kill_file = None
    if rec is None or rec.state.severity < level.state.severity:
        kill_file = write_fallback_kill_file(ctx.data_dir, level, why)
    message = _degraded_message(ctx.data_dir, level, rec, kill_file, failures)
    raise KillDegraded(message, rec, kill_file, ctx.data_dir)


def write_fallback_kill_file(data_dir: Path, level: KillLevel, why: str) -> Path | None:
    """Write ``KILL`` (level and reason; an empty file when even that block is not free: HALT); the
    path, or None when not even an empty file could be created. Creates the data folder if needed."""
    import os

    from joe.safety.kill_switch import kill_file_path, write_kill_file

    try:
        return write_kill_file(data_dir, level, why)
    except OSError:
        pass
    path = kill_file_path(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        return path
    except OSError:
        return None


def _degraded_message(
    data_dir: Path, level: KillLevel, rec: StateRecord | None, kill_file: Path | None, failures: list[str]
) -> str:
    held = rec is not None and rec.state.severity >= level.state.severity
    did = (
        f"trading is {rec.state.value.upper()}" if held and rec is not None
        else f"the kill file {kill_file} was written: every Joe on this data folder halts"
        if kill_file is not None
        else "NOTHING could be recorded: stop Joe (SIGTERM) now"
    )  # fmt: skip
    return (
        f"{level.value.upper()}: {did}, but the kill could not be fully recorded ({'; '.join(failures)}). "
        f"Is the disk of {data_dir} full? `touch {data_dir / 'KILL'}` halts without free space; free "
        "space, then check `joe status` and `joe audit verify`"
    )


def resume(ctx: SafetyContext, *, reason: str, by: str) -> StateRecord:
    """A human moves trading back to ACTIVE and clears every pending flatten request (broker and
    paper). Raises `ResumeRefused` (no reason, kill file present, already active)."""
    kf = read_kill_file(ctx.data_dir)
    if kf is not None:
        raise ResumeRefused(f"the kill file {kf.path} is present ({kf.reason}); remove it first, then resume")
    from joe.safety.circuit_breaker import reset_breakers

    before = ctx.states.current()
    rec = ctx.states.resume(by=by, reason=reason)
    reset_breakers(ctx, by)  # a human looked: tripped breakers are re-armed with the state
    from joe.safety.flatten_route import clear_requests

    # No flatten asked before the resume may outlive it (a later ordinary HALT must not flatten).
    clear_requests(ctx, by=by, why="resume")
    ctx.audit.record("safety.resume", {"from": before.state.value, "reason": rec.reason, "by": by})
    ctx.alerts.resumed(by, rec.reason, before.state.value)
    return rec


def check_kill_file(ctx: SafetyContext) -> KillFile | None:
    """Honour ``<data dir>/KILL``: move the state to its level (if not already there); return it."""
    kf = read_kill_file(ctx.data_dir)
    if kf is None:
        return None
    rec = ctx.states.current()
    if kf.level.state.severity > rec.state.severity:
        kill(ctx, kf.level, reason=kf.reason, by="kill-file")
    return kf


def entry_allowed(ctx: SafetyContext) -> tuple[bool, StateRecord]:
    """Whether a new entry may be sent now (checks the kill file first)."""
    check_kill_file(ctx)
    rec = ctx.states.current()
    return rec.state.allows_entries(), rec


async def flatten(
    ctx: SafetyContext,
    venues: Sequence[FlattenVenue],
    *,
    reason: str,
    by: str,
    attempts: int = 3,
    pause_s: float = 1.0,
    halt: bool = True,
) -> list[FlattenReport]:
    """``kill --flatten``: HALT first (unless the caller did: `halt` False), then close everything
    reduce-only at each venue and cancel working orders, retrying within `attempts`; returns what
    each venue has left."""
    if halt:
        kill(ctx, KillLevel.FLATTEN, reason=reason, by=by)

    def is_entry(coid: str) -> bool:
        order = ctx.store.load_order(coid)
        return order is not None and order.intent.leg is OrderLeg.ENTRY and not order.intent.reduce_only

    def symbol_of(coid: str) -> str | None:
        order = ctx.store.load_order(coid)
        return None if order is None else order.intent.symbol

    reports = [
        await flatten_venue(
            v,
            ctx.audit,
            reason=reason,
            attempts=attempts,
            pause_s=pause_s,
            clock=ctx.clock,
            is_entry=is_entry,
            symbol_of=symbol_of,
        )
        for v in venues
    ]
    for r in reports:
        ctx.alerts.flattened(r.venue, r.flat, r.to_dict())
    return reports


__all__ = [
    "KillDegraded",
    "KillLevel",
    "ResumeRefused",
    "SafetyContext",
    "StateRecord",
    "TradingState",
    "alert_on_state_changes",
    "check_kill_file",
    "entry_allowed",
    "flatten",
    "kill",
    "resume",
]
