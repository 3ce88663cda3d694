"""Where a flatten asked by an operator goes: to the Joe that holds the broker, or refused loudly.

Every operator surface (``joe kill --flatten``, the dashboard, Telegram) resolves its own mode from
its own environment. A surface that resolved *paper* — an SSH shell without the unit's
EnvironmentFile, a dashboard container without ``JOE_BROKER`` — can sit beside a live daemon on the
same data folder; its flatten must still reach that daemon or say that nothing was closed
(review r16, defect 1). The rules, in one place:

* another process holds the data folder's lock (`other_holder`): the flatten is left for it as
  ``safety.broker_flatten_pending`` (`leave_for_holder`); its `HaltEnforcer` closes everything
  through its own order managers on its next poll. The answer says so — never "done";
* nobody holds the folder but the store has open *live* positions or working live orders
  (`live_exposure`): nothing in this process can close them; the answer refuses and names what to
  set (``TRADING_MODE=live``, ``JOE_BROKER``) — never a silent paper flatten.

A request belongs to the HALT it came with (review r16, defect 2): it carries that HALT's ``since``
(``halt_since``). `request_is_current` is False once the state has moved on (a resume, then a new
HALT days later), so a leftover request never turns an ordinary HALT into a flatten of the whole
account; `clear_requests` (called by every resume) deletes both requests and audits it.

A flatten already running in this process for a data folder (a double click on the dashboard's
FLATTEN, review r16 defect 3) is tracked by `running_here`; a second one is refused without leaving
a request behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joe.audit.redaction import redact_text
from joe.core.order import OrderState
from joe.core.process import pid_alive
from joe.safety.trading_state import StateRecord, TradingState

if TYPE_CHECKING:
    from joe.safety.control import SafetyContext

BROKER_FLATTEN_KEY = "safety.broker_flatten_pending"
# Written before a broker flatten connects, deleted when it answers (whatever the answer): one still there
# whose pid is gone is a flatten killed mid-way (SIGKILL, OOM, a power cut) - positions may remain.
IN_PROGRESS_KEY = "safety.flatten_in_progress"
_WORKING = {
    OrderState.NEW, OrderState.SUBMITTING, OrderState.UNKNOWN,
    OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.CANCEL_PENDING,
}  # fmt: skip
# Data folders (resolved) with a broker flatten running in this process right now.
_running: set[Path] = set()


def other_holder(data_dir: Path) -> int | None:
    """The pid of the process holding the data folder's lock (-1 when held but unreadable), None when
    it is free or held by this process as a broker-flattening daemon (its own enforcer does the work).
    This process holding it otherwise counts as a holder too: a paper daemon is told apart by its
    heartbeat (`holder_mode`), anything else gets the request and the loud answer."""
    from joe.safety.lock import holder_pid

    try:
        pid = holder_pid(data_dir)
    except OSError:
        return None
    if pid is None or (pid == os.getpid() and flattens_here()):
        return None
    return pid


def holder_mode(ctx: SafetyContext, pid: int) -> str | None:
    """The mode the holder `pid` announced in its daemon heartbeat, None when unknown (no heartbeat
    from that pid: a `joe run`, a daemon that has not beaten yet)."""
    from joe.runtime.daemon import HEARTBEAT_KEY

    beat = ctx.store.get_state(HEARTBEAT_KEY)
    if isinstance(beat, dict) and beat.get("pid") == pid and isinstance(beat.get("mode"), str):
        return str(beat["mode"])
    return None


def live_exposure(ctx: SafetyContext) -> dict[str, list[str]]:
    """Open live positions and working live orders in the store, by broker: ``{broker: [symbol...]}``
    (empty when there is none)."""
    out: dict[str, list[str]] = {}
    for p in ctx.store.open_positions("live"):
        out.setdefault(p.broker, []).append(p.symbol)
    for o in ctx.store.orders(state=_WORKING, mode="live"):
        broker = (ctx.store.order_context(o.client_order_id) or ("?", "live"))[0]
        syms = out.setdefault(broker, [])
        if o.intent.symbol not in syms:
            syms.append(o.intent.symbol)
    return out


def leave_for_holder(
    ctx: SafetyContext, *, reason: str, by: str, pid: int | None, asked_mode: str
) -> dict[str, Any]:
    """Store the flatten request for the Joe holding the data folder (its `HaltEnforcer` carries it
    out) and audit ``safety.flatten_requested``; returns the request. Call after the HALT."""
    rec = ctx.states.current()
    asked = {
        "reason": redact_text(reason),
        "by": redact_text(by),
        "at": ctx.clock().isoformat(),
        "pid": pid,
        "asked_mode": asked_mode,
        "halt_since": rec.since,
    }
    ctx.store.set_state(BROKER_FLATTEN_KEY, asked)
    ctx.audit.record("safety.flatten_requested", {"venue": "broker", **asked})
    return asked


def request_is_current(asked: dict[str, Any], rec: StateRecord) -> bool:
    """Whether a stored flatten request still belongs to the current HALT (see the module docstring)."""
    if rec.state is not TradingState.HALTED:
        return False
    since = asked.get("halt_since")
    if isinstance(since, str) and since:
        return since == rec.since
    at = asked.get("at")
    if isinstance(at, str) and at and rec.since:
        return at >= rec.since  # ISO UTC strings order as times
    return True


def clear_requests(ctx: SafetyContext, *, by: str, why: str) -> list[str]:
    """Delete every pending flatten request (broker and paper); audits ``safety.flatten_request_cleared``
    per request; returns the keys cleared."""
    from joe.safety.paper_venue import PENDING_KEY

    return _clear(ctx, (BROKER_FLATTEN_KEY, PENDING_KEY), by=by, why=why)


def clear_requests_broker(ctx: SafetyContext, *, by: str, why: str) -> list[str]:
    """`clear_requests` for the broker request only (the account was found flat)."""
    return _clear(ctx, (BROKER_FLATTEN_KEY,), by=by, why=why)


def _clear(ctx: SafetyContext, keys: tuple[str, ...], *, by: str, why: str) -> list[str]:
    cleared = []
    for key in keys:
        old = ctx.store.get_state(key)
        if old is None:
            continue
        ctx.store.delete_state(key)
        ctx.audit.record("safety.flatten_request_cleared", {"key": key, "request": old, "by": by, "why": why})
        cleared.append(key)
    return cleared


def flattens_here() -> bool:
    """True when this process runs a `HaltEnforcer` with order managers (a daemon, ``joe daemon --web``):
    a request left in the store is carried out by this very process."""
    from joe.safety.halt_enforcer import installed_with_managers

    return installed_with_managers()


def running_here(data_dir: Path) -> bool:
    return Path(data_dir).resolve() in _running


@contextmanager
def running(
    data_dir: Path, ctx: SafetyContext | None = None, *, reason: str = "", by: str = ""
) -> Iterator[None]:
    """Mark a broker flatten of `data_dir` as running in this process for the block; with `ctx`, also
    durably in the store (`IN_PROGRESS_KEY`) until the block ends, so a process killed mid-flatten
    leaves a record `unfinished_flatten` reports."""
    key = Path(data_dir).resolve()
    _running.add(key)
    if ctx is not None:
        note = {"pid": os.getpid(), "by": redact_text(by), "reason": redact_text(reason),
                "at": ctx.clock().isoformat()}  # fmt: skip
        ctx.store.set_state(IN_PROGRESS_KEY, note)
    try:
        yield
    finally:
        _running.discard(key)
        if ctx is not None:
            ctx.store.delete_state(IN_PROGRESS_KEY)


def unfinished_flatten(ctx: SafetyContext) -> dict[str, Any] | None:
    """A broker flatten whose process died before it answered (its pid no longer runs), or None."""
    note = ctx.store.get_state(IN_PROGRESS_KEY)
    if not isinstance(note, dict):
        return None
    pid = note.get("pid")
    if isinstance(pid, int) and pid > 0:
        return None if pid_alive(pid) else note  # alive (another user's too): still running
    return note


__all__ = [
    "BROKER_FLATTEN_KEY",
    "clear_requests",
    "clear_requests_broker",
    "flattens_here",
    "holder_mode",
    "leave_for_holder",
    "live_exposure",
    "other_holder",
    "request_is_current",
    "running",
    "running_here",
    "unfinished_flatten",
]
