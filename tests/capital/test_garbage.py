"""Garbage from the server (invalid JSON, HTML, missing fields, wrong types, 5xx) on reads: a typed
error or a transparent retry, never a crash, and nothing lost (the next call sees everything)."""

from __future__ import annotations

import pytest

from joe.brokers.capital import CapitalClient, CapitalTransient, ProtocolError
from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.markets import MarketsApi
from joe.brokers.capital.trading import TradingApi
from joe.simulators.capital import CapitalSimulator

KINDS = ["invalid_json", "html", "missing_fields", "wrong_types"]


@pytest.mark.parametrize("kind", KINDS)
async def test_persistent_garbage_is_a_typed_error(
    sim: CapitalSimulator, client: CapitalClient, kind: str
) -> None:
    trading = TradingApi(client)
    sim.exchange.open_position(
        sim.exchange.accounts["12345678901234567"], {"epic": "GOLD", "direction": "BUY", "size": 1}
    )
    sim.faults.arm("garbage", -1, kind=kind, path="/positions", method="GET")
    with pytest.raises(ProtocolError) as info:
        await trading.positions()
    assert isinstance(info.value, CapitalTransient)
    sim.faults.disarm()
    assert len(await trading.positions()) == 1  # nothing lost


async def test_one_garbled_read_is_retried_transparently(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    sim.faults.arm("garbage", 1, kind="invalid_json", path="/accounts")
    assert len(await AccountsApi(client).accounts()) == 2
    assert sim.count("/accounts") == 2


@pytest.mark.parametrize("fault", ["http_5xx", "http_504_html"])
async def test_transient_5xx_on_reads_is_retried(
    sim: CapitalSimulator, client: CapitalClient, fault: str
) -> None:
    sim.faults.arm(fault, 2, path="/markets")
    assert len(await MarketsApi(client).all_markets()) == 22
    assert sim.count("/markets", status=200) == 1


async def test_persistent_5xx_surfaces_as_transient(sim: CapitalSimulator, client: CapitalClient) -> None:
    sim.faults.arm("http_504_html", -1, path="/watchlists")
    with pytest.raises(CapitalTransient):
        await MarketsApi(client).watchlists()
    assert sim.count("/watchlists") == 1 + client.read_retries


@pytest.mark.parametrize("kind", ["missing_fields", "wrong_types"])
async def test_bad_shapes_on_market_data(sim: CapitalSimulator, client: CapitalClient, kind: str) -> None:
    markets = MarketsApi(client)
    before = await markets.prices("GOLD", "DAY", count=20)
    for path, call in [
        ("/prices", lambda: markets.prices("GOLD", "DAY", count=20)),
        ("/clientsentiment", lambda: markets.sentiment(["GOLD"])),
        ("/marketnavigation", lambda: markets.navigation()),
    ]:
        sim.faults.arm("garbage", 1, kind=kind, path=path)
        with pytest.raises(ProtocolError):
            await call()
    after = await markets.prices("GOLD", "DAY", count=20)
    assert after[:-1] == before[:-1]  # the newest bar is still forming: it follows the live price


async def test_latency_below_timeout_is_fine(sim: CapitalSimulator, client: CapitalClient) -> None:
    sim.faults.arm("latency", 1, seconds=0.1, path="/accounts")
    assert len(await AccountsApi(client).accounts()) == 2
