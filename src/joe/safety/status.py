"""``joe status``: one snapshot of everything that decides whether Joe may trade right now.

Mode and why; trading state, who set it and why; the kill file; circuit breakers; the last margin
reading; the protections' locks (stop-loss streak, cooldowns, drawdown, low-profit); open positions
with their stops (for orders Joe placed at a broker: the protective stop orders working there and
whether they cover the position); working orders; today's PnL against the daily loss limit; the
audit chain's health; whether another Joe holds the data folder. Read from the store and the audit
log only (no broker connection), so it answers even when a broker is down.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from joe.audit.anchor import StoreAnchor
from joe.audit.health import chain_health
from joe.core.clock import utcnow
from joe.core.models import OrderLeg
from joe.core.order import TERMINAL_STATES, Order, OrderState
from joe.data.failover import HEALTH_KEY
from joe.execution.outside import outside_by_signal
from joe.execution.protective_cover import protection
from joe.safety.control import SafetyContext
from joe.safety.flatten_route import unfinished_flatten
from joe.safety.halt_enforcer import BROKER_FLATTEN_KEY
from joe.safety.kill_switch import read_kill_file
from joe.safety.lock import holder_pid
from joe.safety.paper_venue import paper_flatten_pending

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime

BREAKERS_KEY = "safety.breakers"
MARGIN_KEY = "safety.margin"


def daily_pnl(ctx: SafetyContext, mode: str) -> dict[str, Any]:
    """Today's PnL (the last equity point's UTC day) against the day's opening equity."""
    curve = ctx.store.equity_curve(mode)
    if not curve:
        return {"day": None, "pnl": "0", "pnl_pct": "0", "start_equity": None, "equity": None}
    last = curve[-1]
    day = last.ts.date()
    before = [p for p in curve if p.ts.date() < day]
    start = before[-1].equity if before else next(p.equity for p in curve if p.ts.date() == day)
    pnl = last.equity - start
    pct = (pnl / start * 100) if start else Decimal(0)
    return {
        "day": day.isoformat(),
        "start_equity": str(start),
        "equity": str(last.equity),
        "pnl": str(pnl.quantize(Decimal("0.01"))),
        "pnl_pct": str(pct.quantize(Decimal("0.01"))),
    }


def protection_locks_now(rt: Runtime, now: datetime | None = None) -> list[dict[str, str]]:
    """The protections' locks holding now, for the run's mode.

    A paper book keeps its own time (``--as-of`` runs may be years back): its "now" is the last equity
    point, so a cooldown booked on 2018-02-02 shows as it did that day; live and shadow use the clock.
    """
    from joe.safety.paper_book import protection_locks

    curve = rt.store.equity_curve(rt.mode)
    if now is None:
        now = curve[-1].ts if rt.mode == "paper" and curve else utcnow()
    equity = curve[-1].equity if curve else rt.config.paper.starting_cash
    locks = protection_locks(rt.store, rt.mode, now, rt.config.safety.protections, Decimal(equity))
    return [
        {"policy": lk.policy, "scope": lk.scope, "until": lk.until.isoformat(), "reason": lk.reason}
        for lk in sorted(locks, key=lambda lk: (lk.policy, lk.scope))
    ]


def _stop_row(o: Order) -> dict[str, str | None]:
    return {
        "client_order_id": o.client_order_id,
        "stop_price": None if o.intent.stop_price is None else str(o.intent.stop_price),
        "quantity": str(o.remaining),
        "state": o.state.value,
    }


def broker_positions(rt: Runtime) -> list[dict[str, Any]]:
    """Positions Joe opened through the `OrderManager` (live and shadow), from its orders in the store:
    each with the protective stop orders working at the broker and whether they cover it."""
    out: list[dict[str, Any]] = []
    for mode in ("live", "shadow"):
        by_signal: dict[str, list[Order]] = {}
        for o in rt.store.orders(mode=mode):
            by_signal.setdefault(o.intent.signal_id, []).append(o)
        outside: dict[str, dict[str, Decimal]] = {}  # per broker: the owner's closes, per signal
        for sid, orders in by_signal.items():
            p = protection(orders)
            if p is None or p.position == 0:  # outside changes only reduce: nothing open either way
                continue
            entry = next(o for o in orders if o.intent.leg is OrderLeg.ENTRY)
            where = rt.store.order_context(entry.client_order_id)
            broker = where[0] if where else "?"
            if broker not in outside:
                outside[broker] = outside_by_signal(rt.store, broker, mode)
            p = protection(orders, outside[broker].get(sid, Decimal(0)))
            if p is None or p.position <= 0:
                continue
            stops = [
                o for o in orders if o.intent.leg is OrderLeg.STOP_LOSS and o.client_order_id in p.stop_ids
            ]
            out.append(
                {
                    "mode": mode,
                    "broker": where[0] if where else "?",
                    "signal_id": sid,
                    "symbol": p.symbol,
                    "side": entry.intent.side.value,
                    "quantity": str(p.position),
                    "protected": str(p.protected),
                    "unprotected": p.protected < p.position,
                    "broker_stops": [_stop_row(o) for o in stops],
                }
            )
    return out


def status_snapshot(rt: Runtime, ctx: SafetyContext, now: datetime | None = None) -> dict[str, Any]:
    """The whole status as plain JSON data."""
    state = ctx.states.current()
    kf = read_kill_file(ctx.data_dir)
    chain = chain_health(rt.data_dir / "audit", StoreAnchor(rt.store).load_anchor())
    positions = []
    for mode in ("paper", "live", "shadow"):
        for p in rt.store.open_positions(mode):
            positions.append(
                {
                    "mode": mode,
                    "broker": p.broker,
                    "symbol": p.symbol,
                    "quantity": str(p.quantity),
                    "avg_price": str(p.avg_price),
                    "stop": None if p.stop_loss is None else str(p.stop_loss),
                    "target": None if p.take_profit is None else str(p.take_profit),
                    "opened_at": p.opened_at.isoformat(),
                }
            )
    working_states = set(OrderState) - set(TERMINAL_STATES)
    working = [
        {
            "client_order_id": o.intent.client_order_id,
            "symbol": o.intent.symbol,
            "side": o.intent.side.value,
            "leg": o.intent.leg.value,
            "quantity": str(o.intent.quantity),
            "order_type": o.intent.order_type.value,
            "limit_price": None if o.intent.limit_price is None else str(o.intent.limit_price),
            "stop_price": None if o.intent.stop_price is None else str(o.intent.stop_price),
            "state": o.state.value,
        }
        for o in rt.store.orders(state=working_states)
    ]
    limit = rt.config.risk.daily_loss_limit_pct
    pnl = daily_pnl(ctx, rt.mode)
    pnl["daily_loss_limit_pct"] = str(limit)
    pnl["limit_hit"] = Decimal(pnl["pnl_pct"]) <= -limit
    return {
        "mode": rt.mode,
        "mode_reasons": list(rt.decision.reasons),
        "trading_state": state.to_json(),
        "kill_file": None
        if kf is None
        else {"path": str(kf.path), "level": kf.level.value, "reason": kf.reason},
        "paper_flatten_pending": paper_flatten_pending(ctx),
        "broker_flatten_pending": rt.store.get_state(BROKER_FLATTEN_KEY),
        "flatten_unfinished": unfinished_flatten(ctx),
        "breakers": rt.store.get_state(BREAKERS_KEY) or {},
        "margin": rt.store.get_state(MARGIN_KEY),
        "positions": positions,
        "broker_positions": broker_positions(rt),
        "protection_locks": protection_locks_now(rt),
        "working_orders": working,
        "daily_pnl": pnl,
        "audit": {"ok": chain.ok, "summary": chain.summary, "anchored": chain.anchored},
        "running_pid": holder_pid(ctx.data_dir),
        "prices": price_sources(rt),
    }


def price_sources(rt: Runtime) -> dict[str, Any]:
    """Which broker each price of the latest finished run came from, and the brokers down now
    (broker failover, issue 19: `joe.data.failover`)."""
    run = rt.store.latest_run(status="ok")
    sources = dict((run.summary or {}).get("price_sources") or {}) if run is not None else {}
    down = rt.store.get_state(HEALTH_KEY) or {}
    return {"run_id": run.run_id if run else None, "broker": run.broker if run else None,
            "sources": sources, "down": down}  # fmt: skip
