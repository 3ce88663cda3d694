"""Contract tests: every endpoint the client uses, success and documented error shapes, checked
against the spec models in `joe.brokers.capital.models` (shared with the client)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from joe.brokers.capital import models as m
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.markets import fmt_ts
from joe.simulators.capital import CapitalSimulator


class Raw:
    """Direct HTTP access with the client's tokens, so status codes and headers are visible."""

    def __init__(self, sim: CapitalSimulator, client: CapitalClient) -> None:
        self.sim, self.client = sim, client

    async def __call__(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {"X-CAP-API-KEY": self.sim.login.api_key}
        if auth:
            headers.update(self.client.session.headers())
        headers.update(kw.pop("headers", {}))
        await self.client.limiter.acquire(order=method == "POST" and path in ("/positions", "/workingorders"))
        async with httpx.AsyncClient(base_url=self.sim.url + "/api/v1") as h:
            return await h.request(method, path, headers=headers, **kw)


@pytest.fixture
def raw(sim: CapitalSimulator, client: CapitalClient) -> Raw:
    return Raw(sim, client)


def ok(resp: httpx.Response, model: type[BaseModel]) -> Any:
    assert resp.status_code == 200, resp.text
    return model.model_validate(resp.json())


def err(resp: httpx.Response, status: int, code: str) -> m.ErrorBody:
    assert resp.status_code == status, resp.text
    body = m.ErrorBody.model_validate(resp.json())
    assert set(resp.json()) == {"errorCode"}  # no other field, as in every recorded error
    assert body.errorCode.split(":", 1)[0] == code
    return body


async def test_session_endpoints(sim: CapitalSimulator, client: CapitalClient, raw: Raw) -> None:
    ok(await raw("GET", "/time", auth=False), m.ServerTime)
    ok(await raw("GET", "/session/encryptionKey", auth=False), m.EncryptionKey)
    details = ok(await raw("GET", "/session"), m.SessionDetails)
    assert details.accountId == client.session.account_id
    assert ok(await raw("GET", "/ping"), m.StatusResponse).status == "OK"
    resp = await raw("GET", "/accounts")
    assert resp.headers["CST"] == client.session.cst  # tokens echoed on authenticated answers
    assert resp.headers["X-SECURITY-TOKEN"] == client.session.security_token
    login = m.LoginResponse.model_validate(client.session.login_body)
    assert login.streamingHost == sim.stream_host
    assert {a.accountId for a in login.accounts} == set(sim.exchange.accounts)


async def test_session_errors(sim: CapitalSimulator, raw: Raw) -> None:
    await __import__("asyncio").sleep(0.2)  # login spacing (scaled)
    body = {"identifier": sim.login.identifier, "password": "wrong"}
    err(await raw("POST", "/session", auth=False, json=body), 401, "error.invalid.details")
    err(
        await raw("POST", "/session", auth=False, json=body, headers={"X-CAP-API-KEY": ""}),
        400,
        "error.null.api.key",
    )
    err(await raw("PUT", "/session", json={"accountId": "nope"}), 400, "error.invalid.accountId")
    err(await raw("GET", "/positions", auth=False), 400, "error.null.client.token")
    err(
        await raw("GET", "/positions", headers={"CST": "x", "X-SECURITY-TOKEN": "y"}),
        401,
        "error.invalid.session.token",
    )


async def test_account_endpoints(client: CapitalClient, raw: Raw) -> None:
    accs = ok(await raw("GET", "/accounts"), m.AccountsResponse)
    assert accs.accounts and all(a.status == "ENABLED" for a in accs.accounts)
    prefs = ok(await raw("GET", "/accounts/preferences"), m.Preferences)
    assert "SHARES" in prefs.leverages
    assert ok(await raw("PUT", "/accounts/preferences", json={"leverages": {"SHARES": 2}}), m.StatusResponse)
    err(
        await raw("PUT", "/accounts/preferences", json={"leverages": {"SHARES": 7}}),
        400,
        "error.invalid.leverage.value",
    )
    ok(
        await raw("GET", "/history/activity", params={"lastPeriod": 600, "detailed": "true"}),
        m.ActivityResponse,
    )
    ok(await raw("GET", "/history/transactions"), m.TransactionsResponse)
    err(await raw("GET", "/history/activity", params={"from": "2022-01-17"}), 400, "error.invalid.from")


async def test_market_endpoints(raw: Raw) -> None:
    assert len(ok(await raw("GET", "/markets"), m.MarketsResponse).markets) >= 20
    hits = ok(await raw("GET", "/markets", params={"searchTerm": "gold"}), m.MarketsResponse).markets
    assert [h.epic for h in hits] == ["GOLD"]
    det = ok(await raw("GET", "/markets", params={"epics": "GOLD,US500"}), m.MarketDetailsList)
    assert [d.instrument.epic for d in det.marketDetails] == ["GOLD", "US500"]
    one = ok(await raw("GET", "/markets/EURUSD"), m.MarketDetails)
    assert one.dealingRules.minSizeIncrement is not None
    err(await raw("GET", "/markets", params={"searchTerm": ""}), 400, "error.null.searchTerm")
    err(await raw("GET", "/markets/NOPE"), 404, "error.not-found.epic")
    nav = ok(await raw("GET", "/marketnavigation"), m.NavigationResponse)
    node = ok(
        await raw("GET", f"/marketnavigation/{nav.nodes[0].id}", params={"limit": 2}), m.NavigationResponse
    )
    assert len(node.markets) == 2
    err(
        await raw("GET", f"/marketnavigation/{nav.nodes[0].id}", params={"limit": 0}),
        400,
        "error.invalid.limit",
    )


async def test_prices_endpoint_and_range_rules(raw: Raw) -> None:
    default = ok(await raw("GET", "/prices/US500"), m.PricesResponse)
    assert len(default.prices) == 10  # no parameters: the last 10 one-minute bars
    now = raw.sim.clock().replace(microsecond=0)  # the broker's now (a pinned Tuesday), not the host's
    span = {"resolution": "HOUR", "max": 100, "from": fmt_ts(now - timedelta(hours=99)), "to": fmt_ts(now)}
    bars = ok(await raw("GET", "/prices/US500", params=span), m.PricesResponse).prices
    assert 0 < len(bars) <= 100
    times = [b.snapshotTimeUTC for b in bars]
    assert times == sorted(times)
    too_wide = dict(span, **{"from": fmt_ts(now - timedelta(hours=100))})
    err(await raw("GET", "/prices/US500", params=too_wide), 400, "error.invalid.max.daterange")
    err(await raw("GET", "/prices/US500", params={"resolution": "MINUTE_3"}), 400, "error.invalid.resolution")
    err(await raw("GET", "/prices/US500", params={"max": 1001}), 400, "error.invalid.max")
    future = {"resolution": "DAY", "to": fmt_ts(now + timedelta(days=2))}
    err(await raw("GET", "/prices/US500", params=future), 400, "error.invalid.daterange")
    err(await raw("GET", "/prices/US500", params={"from": "2024-01-01T00:00:00Z"}), 400, "error.invalid.from")
    old = {"resolution": "MINUTE", "max": 100, "from": "1990-01-01T00:00:00", "to": "1990-01-01T01:00:00"}
    err(await raw("GET", "/prices/US500", params=old), 404, "error.prices.not-found")


async def test_sentiment_and_watchlists(raw: Raw) -> None:
    one = ok(await raw("GET", "/clientsentiment/SILVER"), m.SentimentItem)
    assert one.longPositionPercentage + one.shortPositionPercentage == pytest.approx(100)
    many = ok(await raw("GET", "/clientsentiment", params={"marketIds": "SILVER,GOLD"}), m.SentimentsResponse)
    assert [s.marketId for s in many.clientSentiments] == ["SILVER", "GOLD"]
    err(await raw("GET", "/clientsentiment/NOPE"), 404, "error.not-found.epic")
    lists = ok(await raw("GET", "/watchlists"), m.WatchlistsResponse).watchlists
    ok(await raw("GET", f"/watchlists/{lists[0].id}"), m.MarketsResponse)
    created = ok(
        await raw("POST", "/watchlists", json={"name": "mine", "epics": ["GOLD", "NOPE"]}),
        m.CreateWatchlistResponse,
    )
    assert created.status == "SUCCESS_NOT_ALL_INSTRUMENTS_ADDED"
    assert ok(
        await raw("PUT", f"/watchlists/{created.watchlistId}", json={"epic": "SILVER"}), m.StatusResponse
    )
    err(
        await raw("PUT", f"/watchlists/{created.watchlistId}", json={"epic": "NOPE"}),
        404,
        "error.not-found.epic",
    )
    assert ok(await raw("DELETE", f"/watchlists/{created.watchlistId}/SILVER"), m.StatusResponse)
    assert ok(await raw("DELETE", f"/watchlists/{created.watchlistId}"), m.StatusResponse)
    err(await raw("GET", "/watchlists/999"), 404, "error.invalid.watchlist")
    err(await raw("DELETE", "/watchlists/999"), 404, "error.not-found.watchlist")
    err(
        await raw("POST", "/watchlists", json={"name": "x" * 21}),
        400,
        "error.size.createwatchlistrequest.name",
    )


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)  # GOLD stays at 2000: 1999.9 is too close
async def test_trading_endpoints(raw: Raw) -> None:
    ref = ok(
        await raw("POST", "/positions", json={"epic": "GOLD", "direction": "BUY", "size": 1}), m.DealReference
    ).dealReference
    assert ref.startswith("o_")
    confirm = ok(await raw("GET", f"/confirms/{ref}"), m.Confirm)
    assert confirm.dealStatus == "ACCEPTED"
    opened = [d.dealId for d in confirm.affectedDeals if d.status == "OPENED"]
    assert len(opened) == 1 and opened[0] != confirm.dealId  # position id != request id
    rows = ok(await raw("GET", "/positions"), m.PositionsResponse).positions
    assert rows[0].position.dealId == opened[0]
    assert rows[0].position.workingOrderId == confirm.dealId
    assert rows[0].position.dealReference == "p_" + opened[0]
    ok(await raw("GET", f"/positions/{opened[0]}"), m.PositionRow)
    amend = ok(await raw("PUT", f"/positions/{opened[0]}", json={"stopLevel": 1900.0}), m.DealReference)
    assert amend.dealReference == "p_" + opened[0]
    ok(await raw("DELETE", f"/positions/{opened[0]}"), m.DealReference)
    err(await raw("GET", f"/positions/{opened[0]}"), 404, "error.not-found.dealId")
    err(await raw("DELETE", f"/positions/{opened[0]}"), 404, "error.not-found.dealId")
    err(await raw("GET", "/confirms/o_missing"), 404, "error.not-found.dealReference")
    bad = await raw(
        "POST", "/positions", json={"epic": "GOLD", "direction": "BUY", "size": 1, "stopLevel": 1999.9}
    )
    body = err(bad, 400, "error.invalid.stoploss.maxvalue")
    assert float(body.errorCode.split(":", 1)[1]) < 2000
    order = {"epic": "GOLD", "direction": "BUY", "size": 1, "level": 1500.0, "type": "LIMIT"}
    oref = ok(await raw("POST", "/workingorders", json=order), m.DealReference).dealReference
    oc = ok(await raw("GET", f"/confirms/{oref}"), m.Confirm)
    wid = oc.affectedDeals[0].dealId
    wos = ok(await raw("GET", "/workingorders"), m.WorkingOrdersResponse).workingOrders
    assert [w.workingOrderData.dealId for w in wos] == [wid]
    ok(await raw("PUT", f"/workingorders/{wid}", json={"level": 1490.0}), m.DealReference)
    ok(await raw("DELETE", f"/workingorders/{wid}"), m.DealReference)
    err(await raw("DELETE", f"/workingorders/{wid}"), 404, "error.not-found.dealId")
    past = dict(order, goodTillDate="2020-01-01T00:00:00")
    err(await raw("POST", "/workingorders", json=past), 400, "error.not-in-future.goodTillDate")


async def test_working_order_levels_reported_as_distances(raw: Raw) -> None:
    order = {
        "epic": "GOLD",
        "direction": "BUY",
        "size": 1,
        "level": 1800.0,
        "type": "LIMIT",
        "stopLevel": 1790.0,
        "profitLevel": 1830.0,
    }
    ok(await raw("POST", "/workingorders", json=order), m.DealReference)
    w = ok(await raw("GET", "/workingorders"), m.WorkingOrdersResponse).workingOrders[0].workingOrderData
    assert (w.stopDistance, w.profitDistance) == (-10, 30)


async def test_rate_limit_shape(sim: CapitalSimulator, raw: Raw) -> None:
    sim.faults.arm("http_429", 1, path="/accounts")
    err(await raw("GET", "/accounts"), 429, "error.too-many.requests")
