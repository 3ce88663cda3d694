"""The account owner's other contracts on a stock Joe trades (r9 finding 1). TWS reports every
contract on one underlying with the underlying's `symbol` (an AAPL option says `symbol=AAPL`): read
by symbol alone, the owner's short AAPL calls netted Joe's 100 AAPL shares to 0, so Joe's exit was
skipped and its stop and target cancelled — 100 shares left with no protection and no alert. Only
the contract Joe trades (a USD stock) is Joe's symbol; the simulator's books are the truth."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from joe.brokers.ibkr.account import read_positions
from joe.brokers.ibkr.translate import fill_report, joe_symbol
from joe.core.models import Side
from joe.simulators.ibkr import IBKRSimulator
from joe.simulators.ibkr.codec import SimContract
from joe.store import Store

from .truth import S, agree, at_broker, filled_bracket, ids, joe, settle

CALLS = SimContract(777001, "AAPL", sec_type="OPT")  # the owner's AAPL calls: same symbol, own conId


async def test_exit_closes_joes_shares_whatever_the_owners_options(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    om, legs = await filled_bracket(sim178, make_om, store, "opt-exit")
    sim178.owner_holds(CALLS, -100, 250)  # short 100 calls: netted by symbol, the account "held 0 AAPL"
    await asyncio.sleep(0.3)  # the position push reaches Joe's client
    assert [joe(store, c).state for c in ids(legs)[1:]] == [S.ACCEPTED, S.ACCEPTED]  # legs untouched
    ex = await om.exit("opt-exit")
    assert ex is not None and ex.quantity == 100
    await settle(lambda: agree(sim178, store, [*ids(legs), ex.client_order_id]))
    assert sim178.book.positions["AAPL"].qty == 0  # flat in the stock Joe bought
    assert [at_broker(sim178, c).status for c in ids(legs)[1:]] == ["Cancelled", "Cancelled"]
    assert not om.unprotected_now


async def test_the_owners_options_are_not_an_outside_change_of_joes_shares(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    om, legs = await filled_bracket(sim178, make_om, store, "opt-live")
    sim178.owner_holds(CALLS, -40, 250)
    await asyncio.sleep(0.5)
    assert store.reconcile_items("ibkr", "live", "outside_change") == []
    assert om.position_of("opt-live") == 100
    stop = at_broker(sim178, legs[1].client_order_id)
    assert (stop.status, stop.sim.quantity) == ("Submitted", 100)  # not shrunk to 60
    positions = await om.client.positions()
    assert {p.symbol: p.quantity for p in positions} == {"AAPL": 100, "AAPL:OPT:USD:777001": -40}


def test_joe_symbol_names_only_the_usd_stock_by_its_symbol() -> None:
    stock = SimpleNamespace(symbol="AAPL", secType="STK", currency="USD", conId=265598)
    unqualified = SimpleNamespace(symbol="AAPL", secType="", currency="", conId=0)
    option = SimpleNamespace(symbol="AAPL", secType="OPT", currency="USD", conId=777001)
    cfd = SimpleNamespace(symbol="AAPL", secType="CFD", currency="USD", conId=143)
    euro = SimpleNamespace(symbol="AAPL", secType="STK", currency="EUR", conId=9)
    assert joe_symbol(stock) == joe_symbol(unqualified) == "AAPL"
    keys = {joe_symbol(c) for c in (option, cfd, euro)}
    assert len(keys) == 3 and "AAPL" not in keys
    execution = SimpleNamespace(
        execId="0001.02.01.01", orderRef="", side="SLD", shares=5.0, price=2.5, time=None, orderId=0
    )
    assert fill_report(option, execution).fill.symbol == "AAPL:OPT:USD:777001"
    assert fill_report(stock, execution).fill.side is Side.SELL
    rows = [
        SimpleNamespace(account="DU1", contract=stock, position=100.0, avgCost=100.0),
        SimpleNamespace(account="DU1", contract=option, position=-100.0, avgCost=2.5),
    ]
    held = {p.symbol: p.quantity for p in read_positions(rows, "DU1", ts=None)}  # type: ignore[arg-type]
    assert held == {"AAPL": Decimal(100), "AAPL:OPT:USD:777001": Decimal(-100)}
