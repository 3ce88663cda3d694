"""An exit that fails never leaves its position naked (issue 9, chaos defect 5: Capital.com seeds 62,
98, 170, 191 — the exit removed the deal's stop, its close was then refused on a closed market, and
the exit stayed ACCEPTED with nothing at the broker while trading stayed ACTIVE).

* Capital.com (hedging and netting): the deal's attached stop is never removed before the close; a
  refused close ends the exit (CANCELLED, retryable — not WORKING with nothing working), the stop is
  still attached at the broker, nothing is reported unprotected; the next exit closes the deal.
* IBKR (the bracket's stop and target must be cancelled before a market exit, or the target could
  fill with it and reverse the position): a refused exit leaves the position without a stop for a
  moment only — the `OrderManager` reports it unprotected at once, the lost-protection reaction puts
  a stop of the position's size back at the broker; with the replacement refused as well, trading
  HALTS with an alert.

Through the live wiring (`BrokerSafety` around the `OrderManager`, the real clients, the
simulators' books as the truth)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from joe.config.schema import SafetyConfig
from joe.core.order import OrderState
from joe.execution.reconciler import Reconciler
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState

from .simdesk import SYMBOL, live_desk, until

D = Decimal
_OVER = (OrderState.CANCELLED, OrderState.REJECTED)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("hedging", [True, False], ids=["hedging", "netting"])
async def test_capital_a_refused_close_keeps_the_deals_stop(ctx: SafetyContext, hedging: bool) -> None:
    async with live_desk("capital", ctx) as desk:
        desk.sim.set_hedging(hedging)
        sym = SYMBOL["capital"]
        legs = await desk.open_position("x-closed", "2")
        stop = [(legs[1].quantity, legs[1].stop_price)]
        assert desk.stops(sym) == stop
        desk.sim.exchange.status[sym] = "CLOSED"  # the market closes: every close is refused

        ex = await desk.om.exit("x-closed")
        assert ex is not None
        await until(lambda: desk.state(ex.client_order_id) in _OVER, "the refused exit to end")
        assert desk.positions() == {sym: D(2)} and desk.stops(sym) == stop  # open, and still protected
        assert desk.state(legs[1].client_order_id) is OrderState.ACCEPTED
        assert desk.om.unprotected_now == {}
        report = await Reconciler(desk.om).reconcile()
        assert desk.state(ex.client_order_id) in _OVER  # not brought back to working by a query
        assert report.explained, report.summary()
        assert ctx.states.current().state is TradingState.ACTIVE  # nothing lost: nothing to halt for

        desk.sim.exchange.status[sym] = "TRADEABLE"
        again = await desk.om.exit("x-closed")
        assert again is not None and again.client_order_id != ex.client_order_id
        await until(lambda: desk.state(again.client_order_id) is OrderState.FILLED, "the second exit")
        o = desk.om.order(again.client_order_id)
        assert o is not None and o.filled_quantity == 2  # the close is the second exit's, not the first's
        first = desk.om.order(ex.client_order_id)
        assert first is not None and first.state in _OVER and first.filled_quantity == 0
        await until(lambda: desk.positions() == {}, "flat at the broker")
        assert desk.om.position_of("x-closed") == 0
        await until(
            lambda: all(desk.state(i.client_order_id) in _OVER for i in legs[1:]), "the legs gone with it"
        )


@pytest.mark.timeout(120)
async def test_ibkr_a_refused_exit_is_protected_again_at_once(ctx: SafetyContext) -> None:
    async with live_desk("ibkr", ctx) as desk:
        sym = SYMBOL["ibkr"]
        legs = await desk.open_position("x-refused")
        desk.sim.faults.arm("reject_next", order_type="MKT")  # the exit (a market order) is refused
        ex = await desk.om.exit("x-refused")
        assert ex is not None
        await until(lambda: desk.state(ex.client_order_id) is OrderState.REJECTED, "the exit refused")
        await until(lambda: desk.stops(sym) == [(D(10), legs[1].stop_price)], "a stop back at the broker")
        assert desk.positions() == {sym: D(10)}
        await until(lambda: desk.om.unprotected_now == {}, "Joe to see the position covered again")
        want = {f"Lost stop on {sym}: lost", f"Lost stop on {sym}: restored"}
        await until(lambda: want <= {a.title for a in ctx.alerts.pending}, "alerted: lost, then restored")
        assert ctx.states.current().state is TradingState.ACTIVE  # protected again: nothing to halt for


@pytest.mark.timeout(120)
async def test_ibkr_a_refused_exit_whose_stop_cannot_be_replaced_halts(ctx: SafetyContext) -> None:
    async with live_desk("ibkr", ctx, SafetyConfig(protection_deadline_s=1.0)) as desk:
        await desk.open_position("x-naked")
        desk.sim.faults.arm("reject_next", -1)  # the broker refuses everything new from here
        ex = await desk.om.exit("x-naked")
        assert ex is not None
        await until(lambda: ctx.states.current().state is TradingState.HALTED, "HALTED", 120)
        assert "Lost stop on AAPL: NAKED" in {a.title for a in ctx.alerts.pending}
        assert desk.positions() == {"AAPL": D(10)}  # said loudly, never hidden
