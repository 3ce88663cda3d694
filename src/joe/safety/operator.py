"""The kill switch as every operator channel pulls it: `joe kill`, the dashboard and Telegram call
`pull_kill_switch`, `resume_trading` and `deliver_alerts` — one implementation of each action.

`pull_kill_switch` moves the state (`control.kill`) and, for ``flatten``, does what the mode allows:
live/shadow flatten at the broker (`broker_flatten.flatten_at_broker`: through the OrderManager, or left
pending for the running Joe; shadow transmits nothing), paper asks the next paper run to close the book —
and, when another Joe holds the data folder or the store has open live positions, leaves the flatten
for that Joe or refuses loudly (`joe.safety.flatten_route`; a paper-resolved shell beside a live daemon).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from joe.safety.control import SafetyContext, kill, resume
from joe.safety.kill_switch import MAX_REASON as KILL_MAX_REASON
from joe.safety.kill_switch import KillLevel
from joe.safety.trading_state import StateRecord

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime

OK, FAILED, REFUSED = 0, 1, 3  # the CLI's exit codes (joe.cli.exit_codes), for every channel
# Every channel's reason: at least MIN_REASON characters (as `joe resume`), at most MAX_REASON (the
# kill switch keeps no more).
MIN_REASON = 5
MAX_REASON = KILL_MAX_REASON


@dataclass
class KillOutcome:
    """What a kill did: the state after it, the flatten result (a dict, or a sentence for paper), and
    the CLI exit code it maps to (0 done, 1 a broker flatten failed or left something, 3 refused)."""

    state: StateRecord
    level: KillLevel
    mode: str
    flatten: dict[str, Any] | str | None = None
    code: int = OK
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level.value,
            "mode": self.mode,
            "trading_state": self.state.to_json(),
        }
        if self.flatten is not None:
            out["flatten"] = self.flatten
        return out


async def pull_kill_switch_async(
    rt: Runtime, ctx: SafetyContext, level: KillLevel, *, reason: str, by: str
) -> KillOutcome:
    from joe.safety.paper_venue import request_paper_flatten

    if level is KillLevel.FLATTEN and rt.mode in ("live", "shadow"):
        fl, code, errors = await _broker_flatten(rt, ctx, reason, by)
        return KillOutcome(ctx.states.current(), level, rt.mode, fl, code, errors)
    rec = kill(ctx, level, reason=reason, by=by)
    out = KillOutcome(rec, level, rt.mode)
    if level is KillLevel.FLATTEN:
        # The paper book has no prices of its own: the next paper run closes everything first.
        request_paper_flatten(ctx, reason=reason, by=by)
        out.flatten = "pending: the next paper run closes every paper position at its marks"
        _route_beyond_paper(rt, ctx, out, reason=reason, by=by)
    return out


def _route_beyond_paper(rt: Runtime, ctx: SafetyContext, out: KillOutcome, *, reason: str, by: str) -> None:
    """A flatten asked from a surface that resolved paper must still reach the Joe holding the broker,
    or refuse loudly (`joe.safety.flatten_route`): never a quiet paper-only "pending"."""
    from joe.safety import flatten_route

    why = "; ".join(getattr(rt.decision, "reasons", []) or []) or "TRADING_MODE is not live"
    pid = flatten_route.other_holder(rt.data_dir)
    exposure = flatten_route.live_exposure(ctx)
    if pid is not None and flatten_route.holder_mode(ctx, pid) == "paper" and not exposure:
        pid = None  # a paper daemon: the paper flatten left for it is the whole job
    if pid is not None:
        asked = flatten_route.leave_for_holder(ctx, reason=reason, by=by, pid=pid, asked_mode=rt.mode)
        _refuse(
            out,
            {"error": "left for the running Joe", "pending": asked},
            f"this process resolved {rt.mode.upper()} ({why}) but another Joe (pid {pid}) holds "
            f"{rt.data_dir}: trading is HALTED and the flatten is left for it (a live daemon's order "
            "managers close every position on their next poll; `joe status` shows 'broker flatten "
            "pending' until it is done). Nothing was closed from here; check the broker",
        )
    elif exposure:
        held = "; ".join(f"{b}: {', '.join(sorted(s))}" for b, s in sorted(exposure.items()))
        _refuse(
            out,
            {"error": "live positions not flattened", "live": exposure},
            f"this process resolved {rt.mode.upper()} ({why}) but the store holds open LIVE positions or "
            f"working orders ({held}) and no Joe is running on {rt.data_dir}: trading is HALTED, nothing "
            "was closed at the broker. Run `joe kill --flatten` again with the live settings "
            "(TRADING_MODE=live, JOE_BROKER, the broker's host/port/account) or close them at the broker",
        )
    if out.code == REFUSED:
        ctx.audit.record(
            "safety.flatten_refused",
            {"mode": rt.mode, "holder_pid": pid, "live": exposure, "by": by, "errors": out.errors},
        )


def _refuse(out: KillOutcome, flatten: dict[str, Any], message: str) -> None:
    """Mark `out` refused: nothing transmitted, the paper part kept under ``paper``, `message` said."""
    out.flatten = {**flatten, "transmitted": False, "paper": out.flatten}
    out.code = REFUSED
    out.errors.append(message)


def pull_kill_switch(
    rt: Runtime, ctx: SafetyContext, level: KillLevel, *, reason: str, by: str
) -> KillOutcome:
    """Synchronous `pull_kill_switch_async` (a command line, a worker thread)."""
    return asyncio.run(pull_kill_switch_async(rt, ctx, level, reason=reason, by=by))


async def _broker_flatten(
    rt: Runtime, ctx: SafetyContext, reason: str, by: str
) -> tuple[dict[str, Any], int, list[str]]:
    from joe.safety.broker_flatten import Refused, flatten_at_broker

    try:
        result = await flatten_at_broker(rt, ctx, reason=reason, by=by)
    except Refused as e:
        return {"error": str(e), "transmitted": False}, REFUSED, [f"Broker flatten refused: {e}"]
    except Exception as e:  # the state is HALTED already; say what failed and that nothing is known flat
        msg = (
            f"Broker flatten failed: {type(e).__name__}: {e} — trading is HALTED; check the broker by hand "
            "(positions and working orders may remain)"
        )
        return {"error": f"{type(e).__name__}: {e}", "transmitted": None}, FAILED, [msg]
    ok = result["flat"] or not result["transmitted"]
    return result, OK if ok else FAILED, []


def resume_trading(ctx: SafetyContext, *, reason: str, by: str) -> StateRecord:
    """`control.resume` (raises `ResumeRefused`)."""
    return resume(ctx, reason=reason, by=by)


async def deliver_alerts(rt: Runtime, ctx: SafetyContext) -> None:
    """Send the alerts an action queued through the configured channels (Telegram, Discord)."""
    from joe.runtime.push import alert_manager

    manager = alert_manager(rt)
    try:
        await ctx.alerts.flush(manager if manager.enabled else None)
    finally:
        await manager.aclose()
