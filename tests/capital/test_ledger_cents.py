"""The simulator's cash adds up to what it reports (review r18b F2).

A broker books realised P&L in cents: the deposit's change over a run of round trips must equal
both the sum of the confirms' `profit` and the sum of the TRADE transactions, to the cent, and no
amount is a negative zero. Sizes and prices are chosen so that P&L has fractions of a cent.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.capital.http import CapitalClient
from joe.simulators.capital import CapitalSimulator


async def _confirm(client: CapitalClient, ref: str) -> dict[str, Any]:
    for _ in range(50):
        try:
            body: dict[str, Any] = await client.request("GET", f"/confirms/{ref}")
            return body
        except Exception:  # not ready yet (404 until the deal is processed)
            await asyncio.sleep(0.05)
    raise AssertionError(f"no confirm for {ref}")


async def _deposit(client: CapitalClient) -> Decimal:
    body = await client.request("GET", "/accounts")
    return Decimal(str(body["accounts"][0]["balance"]["deposit"]))


@pytest.mark.parametrize(("epic", "size"), [("SILVER", "1"), ("EURUSD", "1700"), ("GOLD", "0.37")])
async def test_deposit_equals_the_sum_of_booked_profits(
    sim: CapitalSimulator, client: CapitalClient, epic: str, size: str
) -> None:
    before = await _deposit(client)
    seen = len((await client.request("GET", "/history/transactions"))["transactions"])
    profits: list[Decimal] = []
    for i in range(8):
        # Move the price a fraction of a tick between open and close so P&L has sub-cent parts.
        body = {"epic": epic, "direction": "BUY", "size": float(size)}
        opened = await client.request("POST", "/positions", json_body=body)
        deal = (await _confirm(client, opened["dealReference"]))["affectedDeals"][0]["dealId"]
        await asyncio.sleep(0.02 * (i % 3))
        closed = await client.request("DELETE", f"/positions/{deal}")
        conf = await _confirm(client, closed["dealReference"])
        assert str(conf["profit"]) != "-0.0"
        profits.append(Decimal(str(conf["profit"])))
    after = await _deposit(client)
    txs = (await client.request("GET", "/history/transactions"))["transactions"][seen:]
    trades = [t for t in txs if t["transactionType"] == "TRADE"]
    assert len(trades) == 8
    assert all(t["size"] != "-0.00" for t in trades)
    assert after - before == sum(profits) == sum(Decimal(t["size"]) for t in trades)
