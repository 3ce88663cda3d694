"""The execution side of a live or shadow run: one broker connection, its `ExecutionClient` and quotes.

IBKR: `create_ibkr` (market data and execution share one socket and client id; the port/mode gate
runs again on connect). Capital.com: one logged-in session for the `CapitalExecutionClient` and the
market data. The endpoints are the ones the mode gate accepted (`joe.config.endpoints`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from joe.brokers.base import ExecutionClient, MarketData

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime


@dataclass
class BrokerLink:
    """An open broker connection for one run; `close()` releases it."""

    client: ExecutionClient
    market: MarketData
    close: Callable[[], Awaitable[None]]
    # The far end is Joe's own simulator: IBKR's announced itself on the wire, Capital.com's is on
    # loopback (`joe.config.endpoints`); recorded as the run's ``run.venue`` for the demo-live record.
    simulator: bool = False


async def open_broker(rt: Runtime, broker: str) -> BrokerLink:
    """Connect to `broker` for execution (live) or read-only execution calls (shadow)."""
    if broker == "ibkr":
        return await _ibkr(rt)
    if broker == "capital":
        return await _capital(rt)
    raise ValueError(f"broker {broker!r} has no execution side (choose capital or ibkr)")


async def _ibkr(rt: Runtime) -> BrokerLink:
    from joe.runtime.broker_ibkr import create_ibkr_from_settings

    md, client = create_ibkr_from_settings(rt)
    await client.connect()
    await md.connect()

    async def close() -> None:
        await md.close()
        await client.close()

    return BrokerLink(client, md, close, simulator=bool(getattr(client.conn, "simulator", False)))


async def _capital(rt: Runtime) -> BrokerLink:
    from joe.brokers.capital.client import CapitalExecutionClient
    from joe.runtime.broker_capital import open_capital_from_settings

    client, market, _executor = await open_capital_from_settings(rt)
    xc = CapitalExecutionClient(client, audit=rt.audit)
    return BrokerLink(xc, market, xc.close, simulator=bool(rt.decision.simulator))
