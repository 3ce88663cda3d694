"""`pre_run_checks`: the one question the live (and shadow) run asks before it sends any entry.

    result = await pre_run_checks(ctx, mode="live", broker="ibkr", read_account=client.account,
                                  margin=MarginMonitor(cfg.safety.margin, ctx))
    if not result.allowed:
        ...  # no entries this run; exits, cancels and protective stops stay allowed
    for why in result.reasons: print(why)

The checks, in order (each one a `Check` in `result.checks`, named as below):

1. ``kill_file``      ``<data dir>/KILL`` present → its level is applied (`control.check_kill_file`);
2. ``trading_state``  the persisted `TradingState` must be ACTIVE (REDUCING and HALTED deny entries);
3. ``audit_chain``    the hash chain and its store anchor (`joe.audit.health`): broken denies live and
                      shadow; in paper it is a warning (principle 1: paper always works);
4. ``margin``         a fresh account reading through `read_account` judged by the `MarginMonitor`
                      (which moves the state itself at reduce/halt); a reading that fails denies in
                      live/shadow (fail closed) and is skipped in paper; skipped without a reader;
5. ``breaker``        the broker's `CircuitBreaker` must not be tripped (`kv_state` ``safety.breakers``).

Wiring the safety layer into a live (or shadow) process, in one place (the rest of this module is
the pre-run check itself)::

    ctx = SafetyContext.from_runtime(rt)
    feed = BreakerFeed(CircuitBreaker(client.name, cfg.safety.breaker, ctx))  # every order outcome
    om = OrderManager(client, rt.store, AlertingAudit(rt.audit, ctx.alerts), mode=rt.mode,
                      on_alert=alert_bridge(ctx, feed), on_event=feed.on_event)
    om.journal.on_unprotected = protection_reaction(om, ctx, deadline_s=cfg.safety.protection_deadline_s)
    stop_alerts = alert_on_state_changes(ctx)      # every state change alerted, whoever made it
    enforcer = HaltEnforcer(ctx, [om]); enforcer.install(); asyncio.create_task(enforcer.run())
    result = await pre_run_checks(ctx, mode=rt.mode, broker=client.name, read_account=client.account,
                                  margin=MarginMonitor(cfg.safety.margin, ctx))
    if result.allowed: approved, denied = RunGuard(...).screen(signals, book)  # the RiskGate, every intent
    ...; await ctx.alerts.flush(alert_manager(rt))   # deliver the queued alerts

Every check runs even after a denial, so the result lists every reason at once. The outcome is
audited as ``safety.pre_run_checks`` (allowed, reasons, warnings). It never raises for a failed
check: a check that crashes is itself a denial with its error (fail closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from joe.core.models import AccountInfo
from joe.safety.control import SafetyContext, check_kill_file

if TYPE_CHECKING:
    from joe.safety.margin_monitor import MarginMonitor

_LIVE = ("live", "shadow")


@dataclass(frozen=True, slots=True)
class Check:
    """One check: ``outcome`` is ``pass``, ``deny``, ``warn`` or ``skip``; ``detail`` says why."""

    name: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class GuardResult:
    """`allowed`: may new entries be sent now. `reasons`: why not (one line per denying check);
    `warnings`: what to say loudly without denying; `checks`: every check in order."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "checks": [{"name": c.name, "outcome": c.outcome, "detail": c.detail} for c in self.checks],
        }


async def pre_run_checks(
    ctx: SafetyContext,
    *,
    mode: str,
    broker: str | None = None,
    read_account: Callable[[], Awaitable[AccountInfo]] | None = None,
    margin: MarginMonitor | None = None,
    verify_chain: bool = True,
) -> GuardResult:
    """Run the checks of the module docstring; returns allowed/denied with reasons (never raises).

    `mode`: the resolved trading mode (``paper``, ``live``, ``shadow``); `broker`: the broker whose
    breaker and margin are checked (``ibkr``, ``capital``); `read_account`: an async account read
    (e.g. ``ExecutionClient.account``); `margin`: the monitor that judges it (needs both to run);
    `verify_chain`: walk the audit chain (the daemon may set False between its own periodic checks).
    """
    checks: list[Check] = []

    async def run(name: str, fn: Callable[[], Awaitable[Check]]) -> None:
        try:
            checks.append(await fn())
        except Exception as e:  # a check that cannot answer denies (fail closed)
            checks.append(Check(name, "deny", f"check failed: {type(e).__name__}: {e}"))

    async def kill_file() -> Check:
        kf = check_kill_file(ctx)
        if kf is None:
            return Check("kill_file", "pass", "no kill file")
        return Check("kill_file", "deny", f"kill file {kf.path} present ({kf.level.value}: {kf.reason})")

    async def trading_state() -> Check:
        rec = ctx.states.current()
        if rec.state.allows_entries():
            return Check("trading_state", "pass", "active")
        return Check(
            "trading_state",
            "deny",
            f"trading is {rec.state.value} (by {rec.by}: {rec.reason}); `joe resume --reason ...` to resume",
        )

    async def audit_chain() -> Check:
        if not verify_chain:
            return Check("audit_chain", "skip", "not verified this time")
        from joe.audit.anchor import StoreAnchor
        from joe.audit.health import chain_health

        health = chain_health(ctx.data_dir / "audit", StoreAnchor(ctx.store).load_anchor())
        if health.ok:
            return Check("audit_chain", "pass", health.summary)
        if mode in _LIVE:
            ctx.alerts.audit_broken(health.summary)
            return Check(
                "audit_chain", "deny", f"audit chain broken: {health.summary}; run `joe audit verify`"
            )
        return Check("audit_chain", "warn", f"AUDIT CHAIN BROKEN — {health.summary}; paper continues")

    async def margin_check() -> Check:
        if read_account is None or margin is None:
            return Check("margin", "skip", "no account reader")
        from joe.safety.margin_monitor import MarginLevel, MarginReading, describe

        try:
            account = await read_account()
        except Exception as e:
            if mode in _LIVE:
                return Check("margin", "deny", f"account read failed: {type(e).__name__}: {e}")
            return Check("margin", "skip", f"account read failed in paper: {type(e).__name__}")
        reading = MarginReading.from_account(broker or "?", account)
        level = margin.check(reading)
        detail = f"{level.value}: {describe(reading, margin.config)}"
        if level in (MarginLevel.REDUCE, MarginLevel.HALT):
            return Check("margin", "deny", f"margin {detail}")
        return Check("margin", "warn" if level is MarginLevel.WARN else "pass", f"margin {detail}")

    async def breaker() -> Check:
        from joe.safety.circuit_breaker import BREAKERS_KEY

        all_ = ctx.store.get_state(BREAKERS_KEY) or {}
        tripped = {b: v for b, v in all_.items() if v.get("state") == "tripped"}
        if broker is not None:
            tripped = {b: v for b, v in tripped.items() if b == broker}
        if not tripped:
            return Check("breaker", "pass", "no breaker tripped")
        what = "; ".join(f"{b}: {v.get('reason', '?')}" for b, v in tripped.items())
        return Check("breaker", "deny", f"circuit breaker tripped ({what})")

    await run("kill_file", kill_file)
    await run("trading_state", trading_state)
    await run("audit_chain", audit_chain)
    await run("margin", margin_check)
    await run("breaker", breaker)
    if any(c.name == "margin" and c.outcome == "deny" for c in checks):
        # The monitor may just have moved the state down: the state check reads it again.
        checks = [c if c.name != "trading_state" else (await trading_state()) for c in checks]
    reasons = [f"{c.name}: {c.detail}" for c in checks if c.outcome == "deny"]
    warnings = [f"{c.name}: {c.detail}" for c in checks if c.outcome == "warn"]
    result = GuardResult(not reasons, reasons, warnings, checks)
    try:
        ctx.audit.record(
            "safety.pre_run_checks",
            {
                "mode": mode,
                "broker": broker,
                "allowed": result.allowed,
                "reasons": reasons,
                "warnings": warnings,
            },
        )
    except Exception as e:  # cannot audit: nothing may be sent (principle 4 and 3)
        return GuardResult(False, [*reasons, f"audit: write failed: {type(e).__name__}"], warnings, checks)
    return result


__all__ = ["Check", "GuardResult", "pre_run_checks"]
