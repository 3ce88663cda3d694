"""The account owner changes or cancels Joe's protective stop at the broker (issue 9: TWS at IBKR, the
platform at Capital.com), end to end through the live wiring (`BrokerSafety` around the
`OrderManager`, the broker's real client over its wire protocol, the simulator's books as the truth).

Joe never runs unprotected silently: a stop cancelled or shrunk by the owner is seen (the broker's
report, or the next reconciliation), audited, and the position is protected again (the lost-protection
reaction places a stop for what is uncovered); a stop level moved by the owner is followed (Joe's copy
equals the broker's), audited (``order.changed_outside``) and alerted (``outside_amend``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from joe.audit.anchor import StoreAnchor
from joe.audit.log import AuditLog, tail
from joe.execution.events import AlertKind
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState
from joe.store import open_store
from safety.simdesk import SYMBOL, Desk, live_desk, until

D = Decimal


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[SafetyContext]:
    store = open_store(data_dir=tmp_path)
    audit = AuditLog(tmp_path / "audit", fsync=False)
    audit.attach_anchor(StoreAnchor(store))
    yield SafetyContext(store, audit, tmp_path)
    audit.close()
    store.close()


def _events(ctx: SafetyContext, prefix: str) -> list[dict]:
    return [r for r in tail(ctx.data_dir / "audit", 5000) if r["event"].startswith(prefix)]


def _owner_moves_stop(desk: Desk, stop_coid: str, level: D) -> None:
    """The owner moves Joe's stop to `level` (TWS: a modify of the API order; Capital.com: the deal's
    stop level edited on the platform)."""
    if desk.kind == "ibkr":
        bo = desk.sim.find(stop_coid)
        desk.sim.dispatch(desk.sim.book.modify(bo, replace(bo.placed, aux_price=level)))
        return
    acc = desk.sim.account()
    [pos] = [p for p in acc.positions if p.epic == SYMBOL["capital"]]
    body = {"stopLevel": float(level), "profitLevel": float(pos.bracket.profit_level)}
    desk.sim.exchange.amend_position(acc, pos.deal_id, body)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
async def test_a_stop_level_moved_by_the_owner_is_followed_audited_and_alerted(
    kind: str, ctx: SafetyContext
) -> None:
    async with live_desk(kind, ctx) as desk:
        sym = SYMBOL[kind]
        legs = await desk.open_position("own-move")
        qty, stop = legs[1].quantity, legs[1].stop_price
        assert stop is not None
        wider = (stop * D("0.9")).quantize(D("0.01"))
        _owner_moves_stop(desk, legs[1].client_order_id, wider)
        await until(lambda: desk.stops(sym) == [(qty, wider)], "the owner's stop at the broker")
        coid = legs[1].client_order_id
        await until(lambda: any(a.kind is AlertKind.OUTSIDE_AMEND for a in desk.om.alerts), "the alert", 20)
        assert desk.om.order(coid).intent.stop_price == wider  # Joe's copy is the broker's
        [changed] = [r for r in _events(ctx, "order.changed_outside") if r["ids"]["client_order_id"] == coid]
        moved = changed["payload"]["stop_price"]
        assert (D(moved["from"]), D(moved["to"])) == (stop, wider)
        assert desk.om.unprotected_now == {}  # still covered: the position is protected at its size
        assert desk.positions() == {sym: qty}


@pytest.mark.timeout(120)
async def test_a_joe_modify_of_the_stop_is_not_taken_for_the_owner(ctx: SafetyContext) -> None:
    async with live_desk("ibkr", ctx) as desk:
        legs = await desk.open_position("own-joe")
        tighter = legs[1].stop_price + 1
        await desk.om.modify(legs[1].client_order_id, stop_price=tighter)
        await until(lambda: desk.stops("AAPL") == [(legs[1].quantity, tighter)], "Joe's modify confirmed")
        await until(lambda: desk.om.order(legs[1].client_order_id).intent.stop_price == tighter, "followed")
        assert [a for a in desk.om.alerts if a.kind is AlertKind.OUTSIDE_AMEND] == []
        assert _events(ctx, "order.changed_outside") == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("change", ["cancel", "shrink"])
async def test_a_stop_cancelled_or_shrunk_by_the_owner_in_tws_is_protected_again(
    change: str, ctx: SafetyContext
) -> None:
    async with live_desk("ibkr", ctx) as desk:
        legs = await desk.open_position("own-cut")
        qty, stop = legs[1].quantity, legs[1].stop_price
        bo = desk.sim.find(legs[1].client_order_id)
        if change == "cancel":  # in TWS: Cancelled, no error code (not the broker's own 202)
            desk.sim.dispatch(desk.sim.book.cancel(bo))
        else:  # in TWS: the stop's size cut to 4 of 10
            desk.sim.dispatch(desk.sim.book.modify(bo, replace(bo.placed, quantity=D(4))))
        await until(lambda: _events(ctx, "safety.protection_restored") != [], "protection restored", 30)
        await until(lambda: sum(q for q, _ in desk.stops("AAPL")) == qty, "stops covering the position")
        assert {p for _, p in desk.stops("AAPL")} == {stop}
        assert [r["event"] for r in _events(ctx, "safety.protection")][:1] == ["safety.protection_lost"]
        assert desk.positions() == {"AAPL": qty}
        assert ctx.states.current().state is TradingState.ACTIVE
        await until(lambda: desk.om.unprotected_now == {}, "the OrderManager sees the position covered")
