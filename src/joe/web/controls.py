"""The dashboard's and the API's control actions: halt / reduce / flatten / resume, each with a reason
and a typed confirmation (the action's name, e.g. ``HALT``). They call the same functions as
`joe kill` and `joe resume` (`joe.safety.operator`); nothing else here changes state."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from joe.audit.errors import AuditWriteError
from joe.safety.control import KillDegraded
from joe.safety.kill_switch import KillLevel
from joe.safety.operator import MAX_REASON, MIN_REASON, REFUSED

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.safety.control import SafetyContext


class Action(StrEnum):
    HALT = "halt"
    REDUCE = "reduce"
    FLATTEN = "flatten"
    RESUME = "resume"


class ControlRequest(BaseModel):
    """A control request: why (audited) and the action's name typed again, in capitals."""

    reason: str = Field(
        min_length=MIN_REASON, max_length=MAX_REASON, description="Why (recorded in the audit log)."
    )
    confirm: str = Field(description="The action typed again in capitals (HALT, REDUCE, FLATTEN, RESUME).")


IN_DAEMON_FLATTEN = (
    "trading is HALTED; this daemon holds the broker connection, so its own order managers close every "
    "position on their next poll (`joe status` shows 'broker flatten pending' until it is done)"
)


def _lock_is_ours(rt: Runtime) -> bool:
    """True only when this very process is the Joe that carries out a flatten left in the store: it
    holds the data folder *and* runs a `HaltEnforcer` with order managers (``joe daemon --web``). A
    plain ``joe web`` holding the lock for a moment (its own flatten running) is not that."""
    from joe.safety.flatten_route import flattens_here
    from joe.safety.lock import holder_pid

    try:
        return holder_pid(rt.data_dir) == os.getpid() and flattens_here()
    except OSError:
        return False


class ControlRefused(Exception):
    """The request was not carried out; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def control_problem(exc: ValidationError) -> str:
    """One line naming each bad field of a control request and what it needs."""
    parts = []
    for e in exc.errors():
        field = ".".join(str(x) for x in e.get("loc", ())) or "request"
        parts.append(f"{field}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def check_request(action: Action, req: ControlRequest) -> None:
    if req.confirm.strip() != action.value.upper():
        raise ControlRefused(
            400, f"confirmation must be {action.value.upper()!r} (typed), got {req.confirm!r}"
        )
    if len(req.reason.strip()) < MIN_REASON:
        raise ControlRefused(400, f"reason must say why in at least {MIN_REASON} characters")


async def perform(
    rt: Runtime, ctx: SafetyContext, action: Action, req: ControlRequest, by: str
) -> dict[str, Any]:
    """Carry out `action` through `joe.safety.operator`; returns the outcome as JSON data.

    Raises `ControlRefused` (400 bad confirmation/reason, 409 resume refused, 503 the data disk could not
    record it — a halt still took effect where it could, the message says how). A broker flatten that
    failed or left something, or one left for the running Joe, is answered with exit code 1 / 3."""
    check_request(action, req)
    try:
        return await _perform(rt, ctx, action, req, by)
    except ControlRefused:
        raise
    except (KillDegraded, AuditWriteError) as exc:
        # A full or failing data disk: the halt took effect where it could; say what, and the way
        # that needs no free space (review r16, defect 6).
        hint = "" if isinstance(exc, KillDegraded) else (
            f" — is the disk of {rt.data_dir} full? `touch {rt.data_dir / 'KILL'}` halts without free space"
        )  # fmt: skip
        raise ControlRefused(503, f"{action.value}: {exc}{hint}") from None


async def _perform(
    rt: Runtime, ctx: SafetyContext, action: Action, req: ControlRequest, by: str
) -> dict[str, Any]:
    from joe.safety.operator import deliver_alerts, pull_kill_switch_async, resume_trading
    from joe.safety.trading_state import ResumeRefused

    if action is Action.RESUME:
        try:
            rec = resume_trading(ctx, reason=req.reason, by=by)
        except ResumeRefused as exc:
            raise ControlRefused(409, str(exc)) from None
        out: dict[str, Any] = {"action": action.value, "trading_state": rec.to_json()}
    else:
        outcome = await pull_kill_switch_async(rt, ctx, KillLevel(action.value), reason=req.reason, by=by)
        out = {
            "action": action.value,
            **outcome.to_json(),
            "errors": outcome.errors,
            "exit_code": outcome.code,
        }
        if action is Action.FLATTEN and outcome.code == REFUSED and _lock_is_ours(rt):
            # Served by the daemon (`joe daemon --web`): the Joe holding the data folder is this process,
            # so "stop the other Joe" would be wrong advice; its own order managers do the flatten.
            out["errors"] = [IN_DAEMON_FLATTEN]
            if isinstance(out.get("flatten"), dict):
                out["flatten"]["error"] = IN_DAEMON_FLATTEN
    try:
        await deliver_alerts(rt, ctx)
    except Exception as exc:  # the action is done and audited; a channel failing must not hide that
        out["alerts_error"] = f"{type(exc).__name__}"
    return out
