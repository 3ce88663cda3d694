"""Executions in one instant at Capital.com (issue 9's race, made deterministic with the simulator's
clock frozen: every activity row is stamped with the same millisecond).

An activity row has no id of its own; a fill is `capital:<dealId>:<dateUTC>:<source>`. The owner's
partial close on the platform and Joe's DELETE of the same deal are both `USER` closes of one deal:
in one millisecond they had one id, the second was taken for the first ("already booked") and the
owner's close vanished — neither an outside change nor adopted; the Reconciler then reported
`position_mismatch GOLD broker 0 Joe 1` (about 1 run in 7 of the race test on a running clock).
Each row is now numbered by its occurrence (`joe.brokers.capital.rows`): two rows, two fills."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from capital.conftest import *  # noqa: F403  (sim, client, audit)
from capital.test_truth_om import manager, state, until
from capital.truth_helpers import adapter, around, books, bracket, held, outside_changes
from joe.brokers.capital import CapitalClient
from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.rows import row_fill_id
from joe.core.models import Side
from joe.core.order import OrderState
from joe.execution.events import AlertKind
from joe.execution.reconciler import FindingKind, Reconciler
from joe.simulators.capital import CapitalSimulator
from joe.store import Store

FROZEN = pytest.mark.parametrize("sim", ["frozen"], indirect=True)  # one instant: every row in one ms


@FROZEN
async def test_the_owners_close_in_the_exits_millisecond_is_booked_once_as_outside(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    xc = adapter(client)
    om = await manager(xc, store)
    try:
        sig = "same-ms"
        stop, target = around(sim, "GOLD", "2")
        group = bracket(sig, "GOLD", Side.BUY, "2", stop, target)
        await om.submit(group)
        await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
        close = xc.trading.close_position

        async def owner_first(deal_id: str) -> Any:
            sim.manual_trade("GOLD", "SELL", 1)  # netting: reduces Joe's deal to 1 in the DELETE's instant
            return await close(deal_id)

        xc.trading.close_position = owner_first  # type: ignore[method-assign]
        ex = await om.exit(sig)
        assert ex is not None
        await until(lambda: state(om, ex.client_order_id) is OrderState.FILLED)
        assert held(sim) == 0 and books(sim, "GOLD") == []
        rows = [r for r in sim.account().activity if r["epic"] == "GOLD"]
        assert len({r["dateUTC"] for r in rows}) == 1 and len(rows) == 3  # the opening and two closes, one ms
        report = await Reconciler(om).reconcile()
        assert report.explained, report.summary()
        assert outside_changes(store) == [(sig, Decimal(-1))]  # the owner's close, booked once
        o = om.order(ex.client_order_id)
        assert o is not None and (o.quantity, o.filled_quantity) == (1, 1)
        assert om.position_of(sig) == 0 == held(sim)
        kinds = [a.kind for a in om.alerts]
        assert AlertKind.OWNER_TRADE in kinds and AlertKind.OVERFILL not in kinds
        again = await Reconciler(om).reconcile()  # a second pass books nothing twice
        assert again.explained and again.applied_fills == () and again.adopted == ()
        assert outside_changes(store) == [(sig, Decimal(-1))]
    finally:
        await om.stop()


@FROZEN
async def test_rows_of_one_instant_have_one_identity_each_in_every_read(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    """Three POSITION rows of one deal in one millisecond (open 3, the owner closes 1, then 1 more):
    three ids, the same whether read by deal, by `lastPeriod` or by a window, and the fills of
    `mass_status` are three."""
    sim.manual_trade("GOLD", "BUY", 3)
    sim.manual_trade("GOLD", "SELL", 1)
    sim.manual_trade("GOLD", "SELL", 1)
    [(deal, _, size, _)] = books(sim, "GOLD")
    assert size == 1
    api = AccountsApi(client)
    now = sim.clock()
    reads = [
        await api.activity(deal_id=deal, fiql="type==POSITION"),
        await api.activity(last_period_s=60),
        await api.activity(now, now),  # the window is the rows' own second, both bounds inclusive
        await api.activity(now.replace(microsecond=999_999), now),  # a bound with a fraction is floored
    ]
    ids = [[row_fill_id(r) for r in rows] for rows in reads]
    assert len(set(ids[0])) == 3 and all(i == ids[0] for i in ids)
    mass = await adapter(client).mass_status(now)
    assert sorted(f.fill.fill_id for f in mass.fills) == sorted(ids[0])


@FROZEN
async def test_an_owners_trade_on_the_checkpoints_second_is_adopted_exactly_once(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    """The checkpoint is the broker's read time; with no overlap the next pass reads from that very
    second. The owner's trade stamped in it is read (inclusive bound) and adopted once, not again."""
    om = await manager(adapter(client), store)
    try:
        rec = Reconciler(om, overlap=timedelta(0))
        first = await rec.reconcile()
        assert first.explained and first.adopted == ()
        sim.manual_trade("GOLD", "BUY", 1)  # the clock stands still: the checkpoint's own instant
        second = await rec.reconcile()
        assert second.since == first.ts
        fills = [f for f in second.findings if f.kind is FindingKind.EXTERNAL_FILL]
        assert [(f.instrument, f.broker_qty) for f in fills] == [("GOLD", Decimal(1))]
        assert "GOLD" in second.adopted and second.explained
        third = await rec.reconcile()
        assert third.adopted == () and third.explained
        assert [f.kind for f in third.findings] == [FindingKind.EXTERNAL_POSITION]
    finally:
        await om.stop()
