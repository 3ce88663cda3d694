"""The circuit breaker end to end at both simulators, through the live wiring (`BrokerSafety` around
the `OrderManager`, the broker's real client writing its wire records to the audit log).

Each storm is the broker's trouble as the simulator's fault plan makes it: rejects in a row, 5xx
answers, a gateway's HTML 504 page, 429 throttling (Capital.com REST), dropped connections and
1100 "connectivity lost" (TWS). The breaker trips once its limit is reached, and then: trading is
HALTED by ``breaker:<broker>`` (persisted, audited, alerted), the pre-entry check refuses entries,
the resting entry is cancelled at the broker, the open position's protective stop stays there, and
once the storm is over an exit still goes through (the simulator's book is the truth)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from joe.audit.log import tail
from joe.config.schema import BreakerConfig, SafetyConfig
from joe.core.models import Side
from joe.core.order import OrderState
from joe.safety.circuit_breaker import BREAKERS_KEY
from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.guards import pre_run_checks
from joe.safety.trading_state import TradingState

from .simdesk import SYMBOL, Desk, bracket, live_desk, until

D = Decimal


async def _reject_entries(desk: Desk) -> None:
    """New entries (on another instrument) all refused by the broker."""
    if desk.kind == "ibkr":
        desk.sim.faults.arm("reject_next", -1)
        sym, qty = "MSFT", "5"
    else:
        desk.sim.faults.arm("http_5xx", -1, status=400, code="error.invalid.size.minvalue",
                            path="/positions", method="POST")  # fmt: skip
        sym, qty = "EURUSD", "1000"
    mid = desk.mid(sym)
    for i in range(3):
        legs = bracket(f"storm-{i}", sym, Side.BUY, qty, (mid * D("0.95")).quantize(D("0.0001")),
                       (mid * D("1.05")).quantize(D("0.0001")))  # fmt: skip
        await desk.om.submit(legs)
        entry = legs[0].client_order_id
        await until(lambda e=entry: desk.state(e) is OrderState.REJECTED, "the reject")  # type: ignore[misc]


async def _reads_until_tripped(desk: Desk) -> None:
    """The account read (the daemon's margin poll) in a loop while the broker answers with errors."""
    for _ in range(20):
        if desk.safety.breaker.tripped:
            return
        try:
            await desk.client.account()
        except Exception:
            pass
    raise AssertionError("the breaker did not trip")


def _capital_fault(name: str, **params: object) -> Callable[[Desk], Awaitable[None]]:
    async def storm(desk: Desk) -> None:
        desk.sim.faults.arm(name, -1, path="/accounts", method="GET", **params)
        await _reads_until_tripped(desk)

    return storm


async def _reconnected(desk: Desk, n: int) -> None:
    def count() -> int:
        return sum(1 for r in tail(desk.ctx.data_dir / "audit", 3000) if r["event"] == "ibkr.reconnected")

    await until(lambda: count() >= n, f"reconnect {n}")


async def _drop_connections(desk: Desk) -> None:
    desk.safety.health.coalesce_s = 0.01  # one client here: every drop is its own outage
    for i in range(3):
        desk.sim.drop_connections()
        await _reconnected(desk, i + 1)
        await asyncio.sleep(0.05)


async def _connectivity_lost(desk: Desk) -> None:
    desk.safety.health.coalesce_s = 0.01
    for _ in range(3):
        desk.sim.inject_error(1100)
        await asyncio.sleep(0.1)
        desk.sim.inject_error(1102)
        await asyncio.sleep(0.1)


STORMS: dict[str, tuple[str, Callable[[Desk], Awaitable[None]], str]] = {
    # name: (broker, storm, what the breaker's reason says)
    "ibkr-rejects": ("ibkr", _reject_entries, "3 consecutive rejects"),
    "ibkr-disconnects": ("ibkr", _drop_connections, "3 disconnect event(s)"),
    "ibkr-1100": ("ibkr", _connectivity_lost, "3 disconnect event(s)"),
    "capital-rejects": ("capital", _reject_entries, "3 consecutive rejects"),
    "capital-5xx": ("capital", _capital_fault("http_5xx", status=503), "5 server_error event(s)"),
    "capital-504-html": ("capital", _capital_fault("http_504_html"), "5 server_error event(s)"),
    "capital-429": ("capital", _capital_fault("http_429"), "10 rate_limited event(s)"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("storm", list(STORMS))
async def test_a_storm_trips_the_breaker_entries_refused_stops_stay_exits_allowed(
    storm: str, ctx: SafetyContext
) -> None:
    kind, make_storm, why = STORMS[storm]
    config = SafetyConfig(breaker=BreakerConfig(max_consecutive_rejects=3))
    async with live_desk(kind, ctx, config) as desk:
        sym = SYMBOL[kind]
        held = await desk.open_position("b-held")
        resting = await desk.rest_entry("b-rest")
        assert not desk.safety.breaker.tripped

        await make_storm(desk)

        await until(lambda: desk.safety.breaker.tripped, "the breaker to trip")
        tripped = ctx.store.get_state(BREAKERS_KEY)[kind]
        assert tripped["state"] == "tripped" and why in tripped["reason"], tripped
        rec = ctx.states.current()
        assert rec.state is TradingState.HALTED and rec.by == f"breaker:{kind}"
        audited = [r for r in tail(ctx.data_dir / "audit", 3000) if r["event"] == "safety.breaker_tripped"]
        assert len(audited) == 1 and audited[0]["payload"]["broker"] == kind
        titles = {a.title for a in ctx.alerts.pending}
        assert {f"Circuit breaker tripped: {kind}", "Trading state: HALTED"} <= titles

        # Entries refused: the next run's pre-entry check names the breaker.
        assert entry_allowed(ctx)[0] is False
        checks = await pre_run_checks(ctx, mode="live", broker=kind, verify_chain=False)
        assert not checks.allowed and any(
            r.startswith("breaker: circuit breaker tripped") for r in checks.reasons
        )

        # The resting entry is cancelled at the broker; the position's stop stays there.
        await until(lambda: desk.state(resting[0].client_order_id) is OrderState.CANCELLED, "entry cancelled")
        assert desk.resting_entries() == []
        assert [p for _, p in desk.stops(sym)] == [held[1].stop_price]

        # The storm ends; the breaker stays tripped (only `joe resume` re-arms it); exits go through.
        desk.sim.faults.disarm()
        await desk.om.exit("b-held")
        await until(lambda: desk.positions().get(sym, D(0)) == 0, "the exit to close the position")
        assert desk.safety.breaker.tripped and ctx.states.current().state is TradingState.HALTED
