"""The simulator answers in the real service's shapes (issue 18), checked on the raw wire.

Time (UTC stamps, bars at their start, the current minute in `GET /prices`), prices on the
instrument's grid, `pipPosition` / `tickSize` in market summaries, error answers carrying the
session tokens, balances that add up and complete activity / working-order rows. The recorded
answers these follow are in `fixtures/recorded/` (see its README).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from joe.brokers.capital.errors import NotFound
from joe.brokers.capital.markets import MarketsApi
from joe.brokers.capital.models import Confirm, MarketDetails, MarketSummary, parse
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.capital.catalog import BY_EPIC, CATALOG, RESOLUTION_SECONDS
from joe.simulators.common import SimClock

from .conftest import HOST_CLOCK, SCALE

T0 = datetime(2026, 11, 30, 15, 39, 5, 467000, tzinfo=UTC)  # mid-minute, as in the issue
PRICE_KEYS = ("bid", "offer", "high", "low", "netChange")


class Wire:
    """A raw HTTP session on the simulator: JSON bodies and headers exactly as sent."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        for _ in range(20):  # the (scaled) order spacing answers 429 to back-to-back orders
            resp = await self.http.request(
                method, "/api/v1" + path, headers={**self.headers, **(headers or {})}, **kw
            )
            if resp.status_code != 429:
                break
            await asyncio.sleep(0.02)
        return resp

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self.call(method, path, **kw)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        return resp.json()


async def open_wire(sim: CapitalSimulator) -> tuple[httpx.AsyncClient, Wire]:
    http = httpx.AsyncClient(base_url=sim.url)
    resp = await http.post(
        "/api/v1/session",
        headers={"X-CAP-API-KEY": sim.login.api_key},
        json={"identifier": sim.login.identifier, "password": sim.login.password},
    )
    assert resp.status_code == 200
    return http, Wire(
        http, {"CST": resp.headers["CST"], "X-SECURITY-TOKEN": resp.headers["X-SECURITY-TOKEN"]}
    )


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[CapitalSimulator, SimClock, Wire]]:
    clock = SimClock.frozen(T0)
    sim = CapitalSimulator(seed=11, limits=SimLimits().scaled(SCALE), tick_s=0.02, clock=clock)
    await sim.start()
    http, wire = await open_wire(sim)
    yield sim, clock, wire
    await http.aclose()
    await sim.stop()
    assert sim.internal_errors == []


@pytest.fixture
async def wire(sim: CapitalSimulator) -> AsyncIterator[Wire]:
    http, w = await open_wire(sim)
    yield w
    await http.aclose()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def on_grid(x: float, tick: Decimal) -> bool:
    """`x` as sent (its shortest repr) is an exact multiple of `tick`: on the grid, no float noise."""
    return Decimal(repr(x)) % tick == 0


def prices_of(summary: dict[str, Any]) -> Iterator[tuple[str, float]]:
    for k in PRICE_KEYS:
        if summary.get(k) is not None:
            yield k, summary[k]


# ------------------------------------------------------------------ 1. time
@HOST_CLOCK  # the simulator's HTTP Date header follows the host's clock, not its own
async def test_confirm_date_is_utc_like_the_http_date(sim: CapitalSimulator, wire: Wire) -> None:
    ref = (await wire.json("POST", "/positions", json={"epic": "SILVER", "direction": "BUY", "size": 1}))[
        "dealReference"
    ]
    resp = await wire.call("GET", f"/confirms/{ref}")
    confirm = parse(Confirm, resp.json())
    http_date = parsedate_to_datetime(resp.headers["Date"])
    assert abs(confirm.date_utc - http_date) < timedelta(seconds=5)  # not 2 h off (the account zone)
    assert confirm.date_utc.tzinfo is UTC
    row = (await wire.json("GET", "/positions"))["positions"][0]["position"]
    assert confirm.date[:19] == row["createdDateUTC"][:19] != row["createdDate"][:19]


async def test_every_time_the_simulator_sends_comes_from_its_utc_clock(
    clocked: tuple[CapitalSimulator, SimClock, Wire],
) -> None:
    sim, _clock, wire = clocked
    assert (await wire.json("GET", "/time"))["serverTime"] == int(T0.timestamp() * 1000)
    key = await wire.json("GET", "/session/encryptionKey", headers={"X-CAP-API-KEY": sim.login.api_key})
    assert key["timeStamp"] == int(T0.timestamp() * 1000)
    m = (await wire.json("GET", "/markets/SILVER"))["snapshot"]
    assert m["updateTime"] == "2026-11-30T17:39:05.467"  # account zone = timezoneOffset (2 h)
    summary = (await wire.json("GET", "/markets", params={"searchTerm": "silver"}))["markets"][0]
    assert summary["updateTimeUTC"] == "2026-11-30T15:39:05.467"
    tz = (await wire.json("GET", "/session"))["timezoneOffset"]
    assert utc(summary["updateTime"]) - utc(summary["updateTimeUTC"]) == timedelta(hours=tz)


async def test_default_prices_end_with_the_current_minute(
    clocked: tuple[CapitalSimulator, SimClock, Wire],
) -> None:
    _sim, clock, wire = clocked
    for _ in range(3):
        bars = (await wire.json("GET", "/prices/SILVER"))["prices"]
        assert len(bars) == 10
        assert bars[-1]["snapshotTimeUTC"] == clock().replace(second=0, microsecond=0).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
        clock.advance(47)


@pytest.mark.parametrize("resolution", list(RESOLUTION_SECONDS))
async def test_history_bars_are_stamped_at_their_start(
    clocked: tuple[CapitalSimulator, SimClock, Wire], resolution: str
) -> None:
    _sim, clock, wire = clocked
    bars = (await wire.json("GET", "/prices/GOLD", params={"resolution": resolution, "max": 50}))["prices"]
    step = RESOLUTION_SECONDS[resolution]
    starts = [utc(b["snapshotTimeUTC"]) for b in bars]
    for t in starts:
        if resolution == "WEEK":
            assert t.weekday() == 0 and t.time() == datetime.min.time()  # Monday 00:00 UTC
        else:
            assert int(t.timestamp()) % step == 0
    assert starts[-1] <= clock() < starts[-1] + timedelta(seconds=step)  # the forming bar is last


# ------------------------------------------------------------------ 2. prices on the grid
@pytest.mark.parametrize("epic", ["SILVER", "EURUSD", "US500", "NATURALGAS"])
async def test_history_prices_are_on_the_grid_and_join_the_live_price(
    sim: CapitalSimulator, wire: Wire, epic: str
) -> None:
    tick = BY_EPIC[epic].tick
    sim.paused = True
    for resolution in RESOLUTION_SECONDS:
        bars = (await wire.json("GET", f"/prices/{epic}", params={"resolution": resolution, "max": 200}))[
            "prices"
        ]
        for b in bars:
            for key in ("openPrice", "closePrice", "highPrice", "lowPrice"):
                for side in ("bid", "ask"):
                    assert on_grid(b[key][side], tick), (resolution, key, side, b[key][side])
            assert b["lowPrice"]["bid"] <= min(b["openPrice"]["bid"], b["closePrice"]["bid"])
            assert b["highPrice"]["bid"] >= max(b["openPrice"]["bid"], b["closePrice"]["bid"])
        bid, ask = sim.exchange.quote(epic)
        assert (bars[-1]["closePrice"]["bid"], bars[-1]["closePrice"]["ask"]) == (float(bid), float(ask))
    # continuous: the seeded minutes close exactly where the live tape opens, and at every
    # resolution the last seeded bar closes where the next bar opens
    seeded, live = sim.history.generated(epic, "MINUTE"), sim.history.tape.bars(epic, "MINUTE")
    assert (seeded[-1].bid.c, seeded[-1].ask.c) == (live[0].bid.o, live[0].ask.o)
    for resolution in RESOLUTION_SECONDS:
        seeded, joined = sim.history.generated(epic, resolution), sim.history.live(epic, resolution)
        assert (seeded[-1].bid.c, seeded[-1].ask.c) == (joined[0].bid.o, joined[0].ask.o), resolution
        assert seeded[-1].start < joined[0].start


async def test_market_prices_are_on_the_grid_everywhere(sim: CapitalSimulator, wire: Wire) -> None:
    for _ in range(5):
        sim.step()
    await wire.json("POST", "/positions", json={"epic": "SILVER", "direction": "BUY", "size": 1})
    bid = (await wire.json("GET", "/markets/SILVER"))["snapshot"]["bid"]
    await wire.json(
        "POST",
        "/workingorders",
        json={
            "epic": "SILVER",
            "direction": "BUY",
            "size": 1,
            "level": round(bid * 0.9, 3),
            "type": "LIMIT",
            "stopLevel": round(bid * 0.8, 3),
            "profitLevel": round(bid * 0.95, 3),
        },
    )
    summaries = (await wire.json("GET", "/markets"))["markets"]
    summaries += [(await wire.json("GET", "/positions"))["positions"][0]["market"]]
    order = (await wire.json("GET", "/workingorders"))["workingOrders"][0]
    summaries.append(order["marketData"])
    for s in summaries:
        tick = BY_EPIC[s["epic"]].tick
        assert Decimal(repr(s["tickSize"])) == tick
        for key, value in prices_of(s):
            assert on_grid(value, tick), (s["epic"], key, value)
        assert s["low"] <= s["bid"] <= s["high"]
        assert round(s["percentageChange"], 4) == s["percentageChange"]
    for key in ("stopDistance", "profitDistance", "orderLevel"):
        assert on_grid(order["workingOrderData"][key], Decimal("0.001")), key
    for epic in ("SILVER", "EURUSD", "US500"):
        snap = (await wire.json("GET", f"/markets/{epic}"))["snapshot"]
        tick = Decimal(1).scaleb(-snap["decimalPlacesFactor"])
        assert tick == BY_EPIC[epic].tick
        for key, value in prices_of(snap):
            assert on_grid(value, tick), (epic, key, value)


# ------------------------------------------------------------------ 3. instrument metadata
async def test_market_summaries_carry_pip_position_and_tick_size(sim: CapitalSimulator, wire: Wire) -> None:
    node = next(m.node for m in CATALOG if m.epic == "SILVER")
    lists = [
        (await wire.json("GET", "/markets", params={"searchTerm": "silver"}))["markets"],
        (await wire.json("GET", "/markets"))["markets"],
        (await wire.json("GET", f"/marketnavigation/{node}"))["markets"],
        (await wire.json("GET", "/watchlists/1002"))["markets"],
    ]
    for markets in lists:
        assert markets
        for m in markets:
            spec = BY_EPIC[m["epic"]]
            assert isinstance(m["pipPosition"], int) and isinstance(m["tickSize"], float)
            assert m["pipPosition"] == spec.pip_position
            parsed = parse(MarketSummary, m)
            assert parsed.tick == spec.tick  # Joe's model reads the grid the order path rounds to
    details = parse(MarketDetails, await wire.json("GET", "/markets/EURUSD"))
    assert details.snapshot.tick == Decimal("0.00001")
    silver = next(m for m in lists[0] if m["epic"] == "SILVER")
    assert (silver["pipPosition"], silver["tickSize"]) == (2, 0.001)


# ------------------------------------------------------------------ 4. errors
@pytest.mark.parametrize(
    ("method", "path", "kw", "status", "code"),
    [
        ("GET", "/positions/nope", {}, 404, "error.not-found.dealId"),
        ("GET", "/confirms/o_nope", {}, 404, "error.not-found.dealReference"),
        ("GET", "/markets/NOPE", {}, 404, "error.not-found.epic"),
        ("GET", "/clientsentiment", {"params": {"marketIds": "NOTFOUND"}}, 404, "error.not-found.epic"),
        ("GET", "/clientsentiment/NOTFOUND", {}, 404, "error.not-found.epic"),
        ("GET", "/prices/SILVER", {"params": {"resolution": "MINUTE_3"}}, 400, "error.invalid.resolution"),
        ("GET", "/history/activity", {"params": {"from": "2022-01-17"}}, 400, "error.invalid.from"),
        ("PUT", "/session", {"json": {"accountId": "1"}}, 400, "error.invalid.accountId"),
        ("GET", "/watchlists/999", {}, 404, "error.invalid.watchlist"),
        ("DELETE", "/workingorders/nope", {}, 404, "error.not-found.dealId"),
    ],
)
async def test_error_answers_carry_the_session_tokens(
    sim: CapitalSimulator, wire: Wire, method: str, path: str, kw: dict[str, Any], status: int, code: str
) -> None:
    resp = await wire.call(method, path, **kw)
    assert (resp.status_code, resp.json()) == (status, {"errorCode": code})
    assert resp.headers["CST"] == wire.headers["CST"]
    assert resp.headers["X-SECURITY-TOKEN"] == wire.headers["X-SECURITY-TOKEN"]


async def test_client_keeps_tokens_from_an_error_answer(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    old = client.tokens
    sim.faults.arm("rotate_tokens", 1, path="/clientsentiment")
    with pytest.raises(NotFound):
        await MarketsApi(client).sentiment_one("NOTFOUND")  # 404, with the new tokens in its headers
    assert client.tokens != old
    sim.gate.aliases.clear()  # the old pair is dead from now on
    await MarketsApi(client).sentiment_one("SILVER")
    assert client.logins == 1  # no re-login needed: the refreshed pair was kept


async def test_client_sentiment_skips_unknown_ids(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    items = await MarketsApi(client).sentiment(["SILVER", "NOTFOUND", "GOLD"])
    assert [i.marketId for i in items] == ["SILVER", "GOLD"]
    assert await MarketsApi(client).sentiment(["NOTFOUND"]) == []


# ------------------------------------------------------------------ 5. account and order details
def assert_balance_adds_up(b: dict[str, float]) -> None:
    for v in b.values():
        assert Decimal(repr(v)) == Decimal(repr(v)).quantize(Decimal("0.01")), b  # at most 2 decimals
    assert Decimal(repr(b["balance"])) == Decimal(repr(b["deposit"])) + Decimal(repr(b["profitLoss"])), b
    assert b["available"] <= b["balance"]


async def test_balances_add_up_before_and_after_trading(sim: CapitalSimulator, wire: Wire) -> None:
    async def balances() -> list[dict[str, float]]:
        accounts = (await wire.json("GET", "/accounts"))["accounts"]
        return [a["balance"] for a in accounts]

    for b in await balances():
        assert_balance_adds_up(b)
    for epic, size in (("SILVER", 3), ("EURUSD", 1000), ("GOLD", 0.37)):
        await wire.json("POST", "/positions", json={"epic": epic, "direction": "BUY", "size": size})
    for _ in range(20):
        sim.step()
    for b in await balances():
        assert_balance_adds_up(b)
    for row in (await wire.json("GET", "/positions"))["positions"]:
        ref = (await wire.json("DELETE", f"/positions/{row['position']['dealId']}"))["dealReference"]
        profit = (await wire.json("GET", f"/confirms/{ref}"))["profit"]
        assert Decimal(repr(profit)) == Decimal(repr(profit)).quantize(Decimal("0.01")), profit  # cents
    after = await balances()
    for b in after:
        assert_balance_adds_up(b)
    assert after[0]["profitLoss"] == 0.0 and after[0]["deposit"] != 100_000.0  # realised into the cash


async def test_activity_rows_and_working_orders_carry_the_details(sim: CapitalSimulator, wire: Wire) -> None:
    await wire.json("POST", "/positions", json={"epic": "SILVER", "direction": "BUY", "size": 2})
    pos = (await wire.json("GET", "/positions"))["positions"][0]["position"]
    level = pos["level"]
    await wire.json(
        "PUT",
        f"/positions/{pos['dealId']}",
        json={"stopLevel": round(level * 0.9, 3), "profitLevel": round(level * 1.1, 3)},
    )
    rows = (await wire.json("GET", "/history/activity", params={"detailed": "true"}))["activities"]
    edit = next(r for r in rows if r["type"] == "EDIT_STOP_AND_LIMIT")
    d = edit["details"]
    assert (d["size"], d["direction"], d["level"], d["guaranteedStop"]) == (2, "BUY", level, False)
    await wire.json(
        "POST",
        "/workingorders",
        json={
            "epic": "SILVER",
            "direction": "BUY",
            "size": 1,
            "level": round(level * 0.9, 3),
            "type": "LIMIT",
        },
    )
    data = (await wire.json("GET", "/workingorders"))["workingOrders"][0]["workingOrderData"]
    assert data["leverage"] == pos["leverage"]
    await wire.json("PUT", f"/workingorders/{data['dealId']}", json={"level": round(level * 0.85, 3)})
    await wire.json("DELETE", f"/workingorders/{data['dealId']}")
    rows = (await wire.json("GET", "/history/activity", params={"detailed": "true"}))["activities"]
    kinds = {(r["type"], r["status"]) for r in rows}
    assert {
        ("WORKING_ORDER", "ACCEPTED"),
        ("WORKING_ORDER", "MODIFIED"),
        ("WORKING_ORDER", "CANCELLED"),
    } <= kinds
    for r in rows:  # every kind of row carries the deal's facts, as the recorded rows do
        assert {"size", "direction", "level", "guaranteedStop"} <= set(r["details"]), r
        assert on_grid(r["details"]["level"], Decimal("0.001")), r


async def test_activity_rows_other_than_positions_are_not_fills(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    from joe.brokers.capital.accounts import AccountsApi
    from joe.brokers.capital.mapping import fill_from_activity

    api = MarketsApi(client)
    bid = (await api.market("SILVER")).snapshot.bid
    assert bid is not None
    order = {"epic": "SILVER", "direction": "BUY", "size": 1, "level": round(bid * 0.9, 3), "type": "LIMIT"}
    await client.request("POST", "/workingorders", json_body=order)
    rows = await AccountsApi(client).activity(sim.clock() - timedelta(minutes=5), detailed=True)
    assert rows and all(r.type == "WORKING_ORDER" for r in rows)
    assert [fill_from_activity(r, "x") for r in rows] == [None] * len(rows)


async def test_universe_instruments_carry_the_tick_size(sim: CapitalSimulator, market_data) -> None:  # type: ignore[no-untyped-def]
    for inst in await market_data.universe():
        assert inst.tick_size == BY_EPIC[inst.symbol].tick, inst.symbol
