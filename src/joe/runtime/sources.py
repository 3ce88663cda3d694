"""Opening the market-data source a run asked for: `--broker` and `--source` select it.

`sim` uses a local data source (`sample` by default, or `csv:PATH` / `parquet:PATH`); `capital`
and `ibkr` read market data from the broker (the real one, or its local simulator via the
`CAPITAL_API_URL` / `IBKR_PORT` overrides). Paper trading on broker data never sends orders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from joe.brokers.base import MarketData

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.run_once import RunOptions

Closer = Callable[[], Awaitable[None]]


async def _noop() -> None:
    return None


async def open_market_data(rt: Runtime, opts: RunOptions) -> tuple[MarketData, Closer]:
    """The `MarketData` for this run and a coroutine function that releases it."""
    if opts.broker == "sim":
        from joe.data import open_source

        n = rt.config.pipeline.universe_size
        date_format = getattr(opts, "date_format", None)
        return open_source(opts.source, as_of=opts.as_of, n_synthetic=n, date_format=date_format), _noop
    if opts.broker in ("capital", "ibkr") and rt.config.brokers.failover.enabled:
        from joe.runtime.failover import open_failover_market_data

        return await open_failover_market_data(rt, opts.broker)
    return await open_broker_market_data(rt, opts.broker)


async def open_broker_market_data(rt: Runtime, broker: str) -> tuple[MarketData, Closer]:
    """One broker's market data through the bar cache, and its closer."""
    from joe.data.cache import open_cached_history

    # Broker history goes through the local bar cache (<data dir>/cache/bars): a second run fetches
    # only the last few bars per instrument.
    if broker == "capital":
        from joe.runtime.broker_capital import open_capital_market_data

        md, close = await open_capital_market_data(rt)
        return open_cached_history(md, rt.data_dir, source_key="capital"), close
    if broker == "ibkr":
        from joe.runtime.broker_ibkr import open_ibkr_market_data

        md, close = await open_ibkr_market_data(rt)
        return open_cached_history(md, rt.data_dir, source_key="ibkr"), close
    raise ValueError(f"unknown broker {broker!r}: choose sim, capital or ibkr")
