"""`brokers.failover` in `joe run --once`: the run's broker, with the other broker behind it for data.

Opens the run's broker (the primary) under `request_timeout_s`; when it does not connect, the run goes
on with the secondary's prices for mapped instruments (`joe.data.failover`), and when it connects
after an outage the outage ends (`failover.recovered`, with its duration). An endpoint the mode may not
use (the real-money IBKR port outside live) is never failed over: that refusal stands (exit 3).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from joe.brokers.base import BrokerError, MarketData
from joe.brokers.ibkr.ports import PortModeMismatch
from joe.core.logging import get_logger
from joe.data.cache import BarCache, cache_root
from joe.data.failover import (
    UNAVAILABLE,
    BrokerHealth,
    FailoverMarketData,
    InstrumentMap,
    Notify,
    Reference,
)

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.sources import Closer

log = get_logger("joe.runtime.failover")
# A broker that does not come up at all (refused, dropped, timed out, login refused, session lost).
CONNECT_FAILURES: tuple[type[BaseException], ...] = (*UNAVAILABLE, BrokerError)


def other_broker(broker: str) -> str:
    return "capital" if broker == "ibkr" else "ibkr"


def cached_reference(data_dir: Path, broker: str) -> Reference:
    """The primary's last cached daily close per symbol: (bar day, close), or None."""
    cache = BarCache(cache_root(data_dir))

    def reference(symbol: str) -> tuple[pd.Timestamp, float] | None:
        bars = cache.load(broker, symbol, "1d")
        if bars is None or bars.empty:
            return None
        return pd.Timestamp(bars.index[-1]), float(bars["close"].iloc[-1])

    return reference


def alert_notify(rt: Runtime) -> Notify:
    """Failover alerts through the process's alert channels (WARNING level, deduplicated)."""

    async def notify(title: str, body: str) -> None:
        from joe.reporting.alerts import Alert, AlertLevel
        from joe.runtime.push import alert_manager

        manager = alert_manager(rt)
        if not manager.enabled:
            return
        try:
            await manager.send(Alert(AlertLevel.WARNING, title, body, key=f"failover:{title}"))
        finally:
            await manager.aclose()

    return notify


async def open_failover_market_data(rt: Runtime, primary: str) -> tuple[MarketData, Closer]:
    """The run's `MarketData` with failover to the other broker, and a closer for both."""
    from joe.runtime.sources import open_broker_market_data

    fo = rt.config.brokers.failover
    secondary = other_broker(primary)
    health = BrokerHealth(rt.store, rt.audit, notify=alert_notify(rt))
    closers: list[Closer] = []
    primary_md: MarketData | None = None
    try:
        primary_md, close = await asyncio.wait_for(open_broker_market_data(rt, primary), fo.request_timeout_s)
        closers.append(close)
        down_s = await health.up(primary)
        if down_s is not None:
            log.warning("failover.recovered", broker=primary, down_s=round(down_s, 1))
    except PortModeMismatch:
        raise  # a safety refusal, not an outage
    except CONNECT_FAILURES as exc:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("failover.primary_down", broker=primary, reason=why)
        await health.down(primary, secondary, why)

    async def open_secondary() -> MarketData:
        md, close = await open_broker_market_data(rt, secondary)
        closers.append(close)
        return md

    md = FailoverMarketData(
        primary,
        primary_md,
        secondary,
        open_secondary,
        InstrumentMap(dict(fo.instruments)),
        fo.price_tolerance_pct,
        cached_reference(rt.data_dir, primary),
        health,
        timeout_s=fo.request_timeout_s,
    )

    async def close_all() -> None:
        for c in reversed(closers):
            try:
                await c()
            except Exception:  # closing one broker never stops closing the other
                log.warning("failover.close_failed")

    return md, close_all
