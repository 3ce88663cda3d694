"""The reaction to lost protection end to end at both simulators, through the live wiring
(`BrokerSafety`: the `OrderManager` reports the unprotected position, `protection_reaction` acts).

* IBKR cancels a protective stop on its own (error 202 + Cancelled): a new reduce-only stop for the
  whole position, at the same level, rests at the broker within the deadline;
* the account owner removes the stop of Joe's deal on the Capital.com platform (the deal's
  stop/limit set replaced without a stop): seen by the order watcher, the stop is put back;
* the broker refuses every new stop: once the deadline passes the position is closed reduce-only
  (flat at the broker, never reversed);
* the broker refuses the stop and the exit: trading HALTS (``by protection:<symbol>``), nothing new opens.

Each step is audited (``safety.protection_*``) and alerted; the simulator's book is the truth.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from joe.audit.log import tail
from joe.config.schema import SafetyConfig
from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.trading_state import TradingState

from .simdesk import SYMBOL, Desk, live_desk, until

D = Decimal


def _events(ctx: SafetyContext) -> list[str]:
    return [
        r["event"] for r in tail(ctx.data_dir / "audit", 5000) if r["event"].startswith("safety.protection")
    ]


def _lose_stop(desk: Desk, stop_coid: str) -> None:
    """IBKR cancels the stop itself; on Capital.com the owner edits the deal to keep the limit only."""
    if desk.kind == "ibkr":
        desk.sim.broker_cancel(stop_coid, reason="price check")
        return
    acc = desk.sim.account()
    [pos] = [p for p in acc.positions if p.epic == SYMBOL["capital"]]
    body = {"profitLevel": float(pos.bracket.profit_level)}
    desk.sim.exchange.amend_position(acc, pos.deal_id, body)  # PUT replaces the whole set: no stop
    assert pos.stop_order is None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
async def test_a_stop_lost_at_the_broker_is_placed_again(kind: str, ctx: SafetyContext) -> None:
    async with live_desk(kind, ctx) as desk:
        sym = SYMBOL[kind]
        held = await desk.open_position("p-held")
        qty, stop = held[1].quantity, held[1].stop_price
        assert desk.stops(sym) == [(qty, stop)]

        _lose_stop(desk, held[1].client_order_id)

        await until(lambda: "safety.protection_restored" in _events(ctx), "the stop to be restored", 120)
        await until(lambda: desk.stops(sym) == [(qty, stop)], "the new stop at the broker")
        assert desk.positions() == {sym: qty}  # still open, now protected again
        assert _events(ctx)[:1] == ["safety.protection_lost"]
        titles = {a.title for a in ctx.alerts.pending}
        assert {f"Lost stop on {sym}: lost", f"Lost stop on {sym}: restored"} <= titles
        assert ctx.states.current().state is TradingState.ACTIVE
        await until(lambda: desk.om.unprotected_now == {}, "the OrderManager to see the position covered")


@pytest.mark.timeout(120)
async def test_a_stop_the_broker_keeps_refusing_ends_in_a_reduce_only_exit(ctx: SafetyContext) -> None:
    config = SafetyConfig(protection_deadline_s=1.5)
    async with live_desk("ibkr", ctx, config) as desk:
        held = await desk.open_position("p-refused")
        desk.sim.faults.arm("reject_next", -1, order_type="STP")  # every new stop refused; exits pass
        desk.sim.broker_cancel(held[1].client_order_id, reason="price check")

        await until(lambda: "safety.protection_exit" in _events(ctx), "the reduce-only exit", 120)
        assert desk.positions() == {}  # flat at the broker: closed, not reversed
        assert desk.om.position_of("p-refused") == 0
        events = _events(ctx)
        assert events[0] == "safety.protection_lost"
        assert "safety.protection_restored" not in events
        assert f"Lost stop on {SYMBOL['ibkr']}: exited" in {a.title for a in ctx.alerts.pending}
        placed_stops = [p for p in desk.sim.placed if p.order_type == "STP"]
        assert len(placed_stops) >= 2  # the bracket's stop, then at least one refused replacement


@pytest.mark.timeout(120)
async def test_stop_and_exit_both_refused_halts_trading(ctx: SafetyContext) -> None:
    config = SafetyConfig(protection_deadline_s=1.0)
    async with live_desk("ibkr", ctx, config) as desk:
        held = await desk.open_position("p-naked")
        desk.sim.faults.arm("reject_next", -1)  # the broker refuses everything new
        desk.sim.broker_cancel(held[1].client_order_id, reason="price check")

        await until(lambda: ctx.states.current().state is TradingState.HALTED, "HALTED", 120)
        rec = ctx.states.current()
        assert rec.by == "protection:AAPL" and "unprotected" in rec.reason
        assert entry_allowed(ctx)[0] is False
        assert "Lost stop on AAPL: NAKED" in {a.title for a in ctx.alerts.pending}
        assert desk.positions() == {"AAPL": D(10)}  # still open (naked): said loudly, never hidden
