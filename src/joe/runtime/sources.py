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
        return open_source(opts.source, as_of=opts.as_of, n_synthetic=n), _noop
    if opts.broker == "capital":
        from joe.runtime.broker_capital import open_capital_market_data

        return await open_capital_market_data(rt)
    if opts.broker == "ibkr":
        from joe.runtime.broker_ibkr import open_ibkr_market_data

        return await open_ibkr_market_data(rt)
    raise ValueError(f"unknown broker {opts.broker!r}: choose sim, capital or ibkr")
