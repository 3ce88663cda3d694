"""`--broker ibkr`: market data from TWS / IB Gateway (or the local TWS simulator) for a paper run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joe.brokers.base import MarketData

if TYPE_CHECKING:
    from joe.brokers.ibkr.client import IBKRExecutionClient
    from joe.brokers.ibkr.marketdata import IBKRMarketData
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.sources import Closer


def create_ibkr_from_settings(rt: Runtime) -> tuple[IBKRMarketData, IBKRExecutionClient]:
    """IBKR market data + execution client (one clientId) from the environment over the yaml
    (`IBKR_HOST/PORT/CLIENT_ID/ACCOUNT` win over `brokers.ibkr.*`); not yet connected."""
    from joe.brokers.ibkr.factory import create_ibkr

    s, cfg = rt.settings, rt.config.brokers.ibkr
    return create_ibkr(
        audit=rt.audit,
        mode=rt.mode,
        host=s.ibkr_host or cfg.host,
        port=s.ibkr_port if s.ibkr_port is not None else cfg.port,
        client_id=s.ibkr_client_id if s.ibkr_client_id is not None else cfg.client_id,
        account=s.ibkr_account or cfg.account,
        order_ids=rt.data_dir / "ibkr-order-ids.json",
        connect_timeout=cfg.connect_timeout_s,
    )


async def open_ibkr_market_data(rt: Runtime) -> tuple[MarketData, Closer]:
    """Connect (a live port outside live mode is refused and audited) and return IBKR market data."""
    md, _client = create_ibkr_from_settings(rt)
    await md.connect()
    return md, md.close
