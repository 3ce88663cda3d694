"""`--broker capital`: Capital.com market data for a paper run (the real API or its simulator)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joe.brokers.base import MarketData
from joe.brokers.capital.http import API_PREFIX
from joe.config.settings import secret_value

if TYPE_CHECKING:
    from joe.brokers.capital import CapitalClient, CapitalMarketData
    from joe.brokers.capital.executor import CapitalExecutor
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.sources import Closer


def rest_base_url(url: str | None) -> str | None:
    """CAPITAL_API_URL as the client wants it: the server root. The REST root (`.../api/v1`, as the
    simulator's banner and Capital.com's docs show it) is accepted too."""
    if not url:
        return None
    root = url.strip().rstrip("/")
    return root.removesuffix(API_PREFIX) or root


def capital_credentials(rt: Runtime) -> tuple[str, str, str]:
    """(API key, identifier, password) from the settings; "" for any not set."""
    s = rt.settings
    return (
        secret_value(s.capital_api_key) or "",
        secret_value(s.capital_identifier) or "",
        secret_value(s.capital_password) or "",
    )


async def open_capital_from_settings(
    rt: Runtime, *, timeout_s: float | None = None
) -> tuple[CapitalClient, CapitalMarketData, CapitalExecutor]:
    """Log in to Capital.com (or its simulator) as the settings and `brokers.capital` say: the one
    place that maps CAPITAL_* env over the yaml (demo, URLs, account). `timeout_s` caps the
    per-request timeout (`brokers.capital.request_timeout_s`). Raises what `open_capital` raises."""
    from joe.brokers.capital import open_capital

    s, cfg = rt.settings, rt.config.brokers.capital
    key, ident, pw = capital_credentials(rt)
    return await open_capital(
        key,
        ident,
        pw,
        demo=cfg.demo if s.capital_demo is None else bool(s.capital_demo),
        mode=rt.mode,
        audit=rt.audit,
        api_url=rest_base_url(s.capital_api_url),
        stream_url=s.capital_stream_url or None,
        account_id=s.capital_account_id or cfg.account_id or None,
        timeout_s=cfg.request_timeout_s if timeout_s is None else min(timeout_s, cfg.request_timeout_s),
    )


async def open_capital_market_data(rt: Runtime) -> tuple[MarketData, Closer]:
    """Log in with the configured credentials and return Capital.com market data and its closer."""
    key, ident, pw = capital_credentials(rt)
    missing = [
        n
        for n, v in (("CAPITAL_API_KEY", key), ("CAPITAL_IDENTIFIER", ident), ("CAPITAL_PASSWORD", pw))
        if not v
    ]
    if missing:
        raise RuntimeError(
            f"--broker capital needs {', '.join(missing)} (for the local simulator, `joe sim capital` prints "
            "the demo credentials and CAPITAL_API_URL / CAPITAL_STREAM_URL to use)"
        )
    client, market_data, _executor = await open_capital_from_settings(rt)
    return market_data, client.close
