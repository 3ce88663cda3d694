"""Build the IBKR market data and execution client on one shared connection (what `--broker ibkr` uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joe.brokers.ibkr.client import IBKRExecutionClient
from joe.brokers.ibkr.connection import IBKRConnection
from joe.brokers.ibkr.marketdata import IBKRMarketData
from joe.brokers.ibkr.orderids import OrderIdStore
from joe.brokers.ibkr.ports import PortModeMismatch, check_port, default_port
from joe.core.events import AuditSink


def create_ibkr(
    *,
    audit: AuditSink,
    mode: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    client_id: int = 1,
    account: str = "",
    gateway: bool = False,
    order_ids: OrderIdStore | str | Path | None = None,
    connect_timeout: float = 4.0,
    **market_data_options: Any,
) -> tuple[IBKRMarketData, IBKRExecutionClient]:
    """Market data + execution client sharing one `IBKRConnection` (one clientId, one socket).

    `port` defaults to the paper port (TWS 7497, or IB Gateway 4002 with `gateway=True`). The
    port/mode gate runs here already (fail fast) and again, audited, on connect. Call
    `await md.connect()` and/or `await client.connect()`; each `close()` releases its share.
    """
    p = default_port(gateway) if port is None else int(port)
    try:
        check_port(p, mode)
    except PortModeMismatch as exc:
        audit.record("ibkr.port_refused", {"port": p, "mode": str(mode), "reason": str(exc)})
        raise
    conn = IBKRConnection(host, p, client_id, account, mode, audit, connect_timeout=connect_timeout)
    md = IBKRMarketData(audit=audit, connection=conn, **market_data_options)
    client = IBKRExecutionClient(audit=audit, connection=conn, order_ids=order_ids)
    return md, client
