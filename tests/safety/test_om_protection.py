"""The lost-protection reaction wired to the OrderManager's `on_unprotected` callback: a new reduce-only
stop for the uncovered size at the entry's stop level; a reduce-only exit when the stop cannot be
placed in time. (A fake order owner stands in for the OrderManager: its own tests prove it reports
`UnprotectedPosition` against the simulators.)"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from joe.audit.log import tail
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import Order, OrderState
from joe.execution.events import UnprotectedPosition as OMUnprotected
from joe.safety.control import SafetyContext
from joe.safety.om_protection import protection_reaction
from joe.safety.trading_state import TradingState

D = Decimal
T = datetime(2025, 3, 4, 15, tzinfo=UTC)


class Book:
    def __init__(self, orders: list[Order]) -> None:
        self.orders = orders

    def signal_orders(self, signal_id: str) -> list[Order]:
        return [o for o in self.orders if o.intent.signal_id == signal_id]


class FakeOM:
    def __init__(self, *, stop_works: bool) -> None:
        entry = Order(
            OrderIntent(client_order_id("s1", "entry"), "s1", OrderLeg.ENTRY, "AAPL", Side.BUY, D(100),
                        stop_loss=D(95), take_profit=D(110))
        )  # fmt: skip
        self.book = Book([entry])
        self.stop_works = stop_works
        self.submitted: list[OrderIntent] = []
        self.exits: list[str] = []
        self.position = D(100)

    async def submit(self, intents: list[OrderIntent]) -> list[Order]:
        self.submitted += intents
        out = []
        for i in intents:
            o = Order(i)
            o.transition(OrderState.SUBMITTING, "test", ts=T)
            o.transition(OrderState.ACCEPTED if self.stop_works else OrderState.REJECTED, "test", ts=T)
            self.book.orders.append(o)
            out.append(o)
        return out

    async def exit(self, signal_id: str) -> Any:
        self.exits.append(signal_id)
        self.position = D(0)
        return None

    def order(self, coid: str) -> Order | None:
        return next((o for o in self.book.orders if o.client_order_id == coid), None)

    def position_of(self, signal_id: str) -> Decimal:
        return self.position


EVENT = OMUnprotected("s1", "AAPL", D(100), D(40), "stops cover 40 of 100", T, ("joe-stop",))


async def react(om: FakeOM, ctx: SafetyContext, deadline_s: float) -> None:
    """Report EVENT and wait for the reaction, which runs as its own task (the callback returns at once:
    the OrderManager calls it from the loop that applies the very reports the reaction waits for)."""
    on_unprotected = protection_reaction(om, ctx, deadline_s=deadline_s, poll_s=0.01)
    await on_unprotected(EVENT)
    await on_unprotected(EVENT)  # reported again while it runs: one reaction per position
    assert len(on_unprotected.pending) == 1
    await on_unprotected.settle()


async def test_missing_stop_is_replaced_for_the_uncovered_size(ctx: SafetyContext) -> None:
    om = FakeOM(stop_works=True)
    await react(om, ctx, 5)
    (stop,) = om.submitted
    assert (stop.leg, stop.side, stop.quantity, stop.order_type, stop.stop_price, stop.reduce_only) == (
        OrderLeg.STOP_LOSS, Side.SELL, D(60), OrderType.STOP, D(95), True,
    )  # fmt: skip
    assert om.exits == []
    assert [r["event"] for r in tail(ctx.data_dir / "audit", 5)][-2:] == [
        "safety.protection_lost",
        "safety.protection_restored",
    ]


async def test_stop_refused_until_the_deadline_exits_reduce_only(ctx: SafetyContext) -> None:
    om = FakeOM(stop_works=False)
    await react(om, ctx, 0.05)
    assert om.submitted and om.exits == ["s1"]
    assert "safety.protection_exit" in [r["event"] for r in tail(ctx.data_dir / "audit", 10)]


def test_order_manager_alerts_become_execution_alerts_and_trip_the_breaker(ctx: SafetyContext) -> None:
    from joe.config.schema import BreakerConfig
    from joe.execution.events import AlertKind, ExecutionAlert
    from joe.safety.circuit_breaker import CircuitBreaker
    from joe.safety.om_protection import alert_bridge
    from joe.safety.trading_state import TradingState

    breaker = CircuitBreaker("ibkr", BreakerConfig(max_unknown=1), ctx)
    on_alert = alert_bridge(ctx, breaker)
    on_alert(ExecutionAlert(AlertKind.LATE_FILL, "fill after cancel", T, "joe-1", "s1"))
    assert ctx.states.current().state is TradingState.ACTIVE
    on_alert(ExecutionAlert(AlertKind.UNRESOLVED, "submit timed out, broker silent", T, "joe-2", "s2"))
    assert ctx.states.current().state is TradingState.HALTED
    titles = [a.title for a in ctx.alerts.pending]
    assert "FILL: joe-1" in titles and "UNKNOWN: joe-2" in titles
    assert any(t.startswith("Circuit breaker tripped: ibkr") for t in titles)


def test_a_broker_correction_is_alerted_as_a_correction_not_a_reject(ctx: SafetyContext) -> None:
    """A bust or a fill revision is the broker changing what Joe had: a warning titled CORRECTION
    (it read "REJECT: ..." before, which sent the operator looking for a refused order)."""
    from joe.execution.events import AlertKind, ExecutionAlert
    from joe.safety.alerts import AlertLevel
    from joe.safety.om_protection import alert_bridge

    on_alert = alert_bridge(ctx)
    on_alert(ExecutionAlert(AlertKind.BROKER_CORRECTION, "execution busted", T, "joe-3", "s3"))
    on_alert(ExecutionAlert(AlertKind.INVALID_FILL, "fill for an unknown order", T, "joe-4", "s4"))
    got = {a.title: a.level for a in ctx.alerts.pending}
    assert got == {"CORRECTION: joe-3": AlertLevel.WARNING, "INVALID_FILL: joe-4": AlertLevel.WARNING}
    assert ctx.states.current().state.value == "active"  # a warning, not a halt


def _exit(reopened: bool) -> Order:
    """A working market exit of s1: reopened by a correction (complete once, then cut to 60 of 100)
    or still on its way (60 of 100 filled)."""
    o = Order(OrderIntent(client_order_id("s1", "exit"), "s1", OrderLeg.EXIT, "AAPL", Side.SELL, D(100)))
    o.transition(OrderState.SUBMITTING, "test", ts=T)
    o.transition(OrderState.ACCEPTED, "test", ts=T)
    if reopened:
        o.filled_quantity = D(100)
        o.transition(OrderState.FILLED, "fill", ts=T)
        o.filled_quantity = D(60)
        o.transition(OrderState.PARTIALLY_FILLED, "fill revision 1", ts=T, correction=True)
    else:
        o.filled_quantity = D(60)
        o.transition(OrderState.PARTIALLY_FILLED, "fill", ts=T)
    return o


async def test_an_exit_that_does_not_stand_in_moves_trading_to_reducing_at_once(ctx: SafetyContext) -> None:
    """Chaos seed 672: the uncovered part has an exit working that does not stand in for its stop (a
    correction put a market exit's rest back to work): no stop can be re-placed while it works, so
    trading is REDUCING from the start of the reaction, by ``protection:<symbol>``, alerted."""
    om = FakeOM(stop_works=False)
    om.book.orders.append(_exit(reopened=True))
    await react(om, ctx, 0.05)
    rec = ctx.states.current()
    assert rec.state is TradingState.REDUCING and rec.by == "protection:AAPL"
    assert client_order_id("s1", "exit") in rec.reason
    assert any(a.title == "Lost stop on AAPL: REDUCING" for a in ctx.alerts.pending)


async def test_no_reducing_without_an_exit_or_with_one_that_stands_in(ctx: SafetyContext) -> None:
    for orders in ([], [_exit(reopened=False)]):
        om = FakeOM(stop_works=True)
        om.book.orders += orders
        await react(om, ctx, 5)
        assert ctx.states.current().state is TradingState.ACTIVE
