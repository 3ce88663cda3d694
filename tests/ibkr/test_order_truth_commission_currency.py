"""A commission keeps its currency (r9 finding 3). IBKR may charge a USD stock's commission in the
account's base currency (commissionReport.currency = EUR); it used to be dropped, so 1.00 EUR was
booked as 1.00 in the stock's dollars. The fill now carries `commission_currency`, stored, audited and
read back after a restart; before or after its execution, live or from the executions query."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store, open_store

from .helpers import single
from .truth import agree, joe, settle


async def _charged(sim: IBKRSimulator, make_om: Any, store: Store, sig: str, **fault: Any) -> Any:
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    for name, params in fault.items():
        sim.faults.arm(name, **params)
    it = single(sig)
    await om.submit([it])
    await settle(lambda: agree(sim, store, [it.client_order_id]))

    def charged() -> None:
        fills = list(joe(store, it.client_order_id).fills.values())
        assert [(f.commission, f.commission_currency) for f in fills] == [(Decimal("1.00"), "EUR")]

    await settle(charged)
    return om, it


async def test_a_commission_in_the_accounts_currency_keeps_it(
    sim178: IBKRSimulator, make_om: Any, store: Store, tmp_path: Path
) -> None:
    om, it = await _charged(sim178, make_om, store, "eur", commission_currency={"currency": "EUR"})
    mass = await om.client.mass_status()  # the executions query says the same
    [fr] = [f for f in mass.fills if f.fill.client_order_id == it.client_order_id]
    assert (fr.fill.commission, fr.fill.commission_currency) == (Decimal("1.00"), "EUR")
    reopened = open_store(data_dir=tmp_path)  # what a restart reads
    try:
        o = reopened.load_order(it.client_order_id)
        assert o is not None and [f.commission_currency for f in o.fills.values()] == ["EUR"]
    finally:
        reopened.close()


async def test_a_commission_before_its_execution_keeps_its_currency(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    await _charged(
        sim178, make_om, store, "eur-first", commission_first={}, commission_currency={"currency": "EUR"}
    )
