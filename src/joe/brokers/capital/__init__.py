"""Capital.com broker: async REST client, streaming, `CapitalMarketData` and `CapitalExecutor`.

Entry point for the CLI / runtime::

    client, market_data, executor = await open_capital(
        api_key, identifier, password, demo=True, mode="paper", audit=audit_log,
        api_url=None, stream_url=None, account_id=None)
    await executor.connect()
    ...
    stream = CapitalStream(client, client.stream_url, audit=audit_log, on_quote=..., on_stale=...)
    await stream.subscribe(["US500", "GOLD"]); await stream.start()   # optional live quotes
    market_data.stream = stream                                       # quotes() then prefer it
    ...
    await stream.stop(); await client.close()

`open_capital` resolves the endpoints (demo unless `demo=False` *and* `mode="live"`), logs in,
switches to `account_id` when given, and returns the three objects sharing one session.
Modules: endpoints, errors, ratelimit, session, http (transport), models, markets, accounts,
trading, mapping, reconcile, executor, marketdata, streaming; and the `ExecutionClient` adapter the
OrderManager drives: client (`CapitalExecutionClient`), observe (answers → reports), queries
(order_status / mass_status), exits (reduce-only planning), instruments (dealingRules), watch.
`CapitalExecutor` is the older stateful executor (kept for `open_capital` callers).
"""

from __future__ import annotations

from joe.brokers.capital.client import CapitalExecutionClient
from joe.brokers.capital.endpoints import Endpoints, normalise_stream_url, resolve_endpoints
from joe.brokers.capital.errors import (
    AmbiguousWrite,
    CapitalAuthError,
    CapitalError,
    CapitalTransient,
    InvalidRequest,
    MarketClosed,
    NotFound,
    ProtocolError,
    RateLimited,
    SessionExpired,
)
from joe.brokers.capital.executor import CapitalExecutor
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.marketdata import CapitalMarketData
from joe.brokers.capital.ratelimit import Limits, RateLimiter, shared_limiter
from joe.brokers.capital.session import Credentials
from joe.brokers.capital.streaming import CapitalStream, StreamQuote
from joe.core.events import AuditSink


async def open_capital(
    api_key: str,
    identifier: str,
    password: str,
    *,
    demo: bool,
    mode: str,
    audit: AuditSink,
    api_url: str | None = None,
    stream_url: str | None = None,
    account_id: str | None = None,
    encrypted_password: bool = False,
    limits: Limits | None = None,
    timeout_s: float = 10.0,
) -> tuple[CapitalClient, CapitalMarketData, CapitalExecutor]:
    """Log in and build (client, market data, executor). The caller closes the client.

    `api_url` / `stream_url` override the hosts (the simulator: CAPITAL_API_URL /
    CAPITAL_STREAM_URL); the live host is used only when `demo` is False and `mode` is "live".
    """
    ep = resolve_endpoints(demo, mode, api_url, stream_url)
    client = CapitalClient(
        ep.api_url,
        Credentials(api_key, identifier, password, encrypted_password),
        audit=audit,
        demo=not ep.live,
        limiter=shared_limiter(ep.api_url, api_key, identifier, limits=limits, demo=not ep.live),
        timeout_s=timeout_s,
        account_id=account_id or None,
    )
    audit.record("capital.open", {"api_url": ep.api_url, "live": ep.live, "demo": demo, "mode": mode})
    try:
        await client.open()
    except BaseException:
        await client.close()
        raise
    stream_target = ep.stream_url or stream_url_from_session(client)
    client.stream_url = stream_target
    return client, CapitalMarketData(client, audit=audit), CapitalExecutor(client, audit=audit)


def stream_url_from_session(client: CapitalClient) -> str | None:
    """The WebSocket URL from the login's `streamingHost` (+ `connect`), if the login gave one."""
    host = client.session.streaming_host
    return normalise_stream_url(host) if host else None


__all__ = [
    "AmbiguousWrite",
    "CapitalAuthError",
    "CapitalClient",
    "CapitalError",
    "CapitalExecutionClient",
    "CapitalExecutor",
    "CapitalMarketData",
    "CapitalStream",
    "CapitalTransient",
    "Credentials",
    "Endpoints",
    "InvalidRequest",
    "Limits",
    "MarketClosed",
    "NotFound",
    "ProtocolError",
    "RateLimited",
    "RateLimiter",
    "SessionExpired",
    "StreamQuote",
    "open_capital",
    "resolve_endpoints",
]
