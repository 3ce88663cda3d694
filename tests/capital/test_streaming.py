"""Streaming: sharding under the 40-instrument cap, drops → reconnect + resubscribe, staleness,
session errors, garbled frames, OHLC pairs, keep-alive pings. Timings are scaled down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st

from idle_clock import IdleClock
from joe.brokers.capital import CapitalClient, CapitalStream
from joe.brokers.capital.endpoints import normalise_stream_url
from joe.brokers.capital.streaming import StreamBar, parse_bar_payload, parse_message, parse_quote_payload
from joe.core.events import NullAudit
from joe.simulators.capital import CapitalSimulator
from joe.simulators.capital import stream as sim_stream
from joe.simulators.common import SimClock
from market_clock import sim_clock

from .conftest import make_client


async def wait_for(cond: Callable[[], bool], timeout: float = 120.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def make_stream(client: CapitalClient, **kw: Any) -> CapitalStream:
    url = normalise_stream_url(client.session.streaming_host)
    kw.setdefault("audit", NullAudit())
    return CapitalStream(client, url, **kw)


async def test_sharding_respects_the_instrument_cap(sim: CapitalSimulator, client: CapitalClient) -> None:
    epics = list(sim.exchange.prices)
    stream = make_stream(client, max_epics=10)
    await stream.subscribe(epics)
    await stream.start()
    try:
        await wait_for(lambda: set(stream.latest) == set(epics))
        assert stream.connections == 3 and stream.stats.connects == 3
        assert all(len(c.epics) <= 10 for c in sim.stream.conns)
        assert set().union(*(c.epics for c in sim.stream.conns)) == set(epics)
        q = stream.latest["GOLD"].to_quote()
        assert q.ask > q.bid
    finally:
        await stream.stop()


async def test_twenty_drops_reconnect_resubscribe_and_flag_staleness(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    transitions: list[tuple[str, bool]] = []
    epics = ["GOLD", "US500", "EURUSD"]
    stream = make_stream(
        client,
        stale_after_s=0.08,
        backoff_base_s=0.3,
        backoff_max_s=0.3,
        on_stale=lambda e, s: transitions.append((e, s)),
    )
    await stream.subscribe(epics)
    await stream.start()
    try:

        def flowing(seen: int) -> Callable[[], bool]:
            return lambda: stream.stats.quotes > seen + 3

        def dropped(k: int) -> Callable[[], bool]:
            return lambda: stream.stats.drops == k + 1

        def went_stale(k: int) -> Callable[[], bool]:
            return lambda: all(transitions.count((e, True)) >= k + 1 for e in epics)

        def back(k: int) -> Callable[[], bool]:
            return lambda: stream.stats.connects == k + 2 and not stream.stale

        for k in range(20):
            await wait_for(flowing(stream.stats.quotes))
            sim.faults.arm("ws_drop", 1)
            await wait_for(dropped(k))
            await wait_for(went_stale(k))
            await wait_for(back(k))
        await wait_for(flowing(stream.stats.quotes))
        assert sim.stream.connects == 21 and stream.stats.connects == 21
        assert stream.stats.subscribes == 21  # one resubscription per reconnect (plus the first)
        assert all(set(c.epics) == set(epics) for c in sim.stream.conns)
        for e in epics:
            raised, cleared = transitions.count((e, True)), transitions.count((e, False))
            assert raised >= 20 and raised == cleared
        assert not stream.stale
    finally:
        await stream.stop()


async def test_stale_quotes_are_flagged_then_cleared(sim: CapitalSimulator, client: CapitalClient) -> None:
    transitions: list[tuple[str, bool]] = []
    stream = make_stream(client, stale_after_s=0.1, on_stale=lambda e, s: transitions.append((e, s)))
    await stream.subscribe(["GOLD", "SILVER"])
    await stream.start()
    try:
        await wait_for(lambda: {"GOLD", "SILVER"} <= set(stream.latest))
        sim.faults.arm("stale_quotes", 1, epics=["GOLD"], seconds=0.5)
        await wait_for(lambda: "GOLD" in stream.stale)
        assert "SILVER" not in stream.stale
        await wait_for(lambda: ("GOLD", False) in transitions)
        assert stream.stats.connects == 1
    finally:
        await stream.stop()


async def test_session_error_relogs_and_resubscribes(sim: CapitalSimulator, client: CapitalClient) -> None:
    stream = make_stream(client, ping_interval_s=0.05)
    await stream.subscribe(["GOLD"])
    await stream.start()
    try:
        await wait_for(lambda: "GOLD" in stream.latest)
        sim.gate.invalidate_all()
        await wait_for(lambda: stream.stats.relogins == 1)
        assert client.logins == 2
        await wait_for(lambda: stream.stats.subscribes == 2)
        assert stream.stats.connects == 1
    finally:
        await stream.stop()


async def test_garbled_frames_are_counted_not_fatal(sim: CapitalSimulator, client: CapitalClient) -> None:
    stream = make_stream(client)
    await stream.subscribe(["GOLD"])
    await stream.start()
    try:
        await wait_for(lambda: "GOLD" in stream.latest)
        sim.faults.arm("ws_garble", 5)
        await wait_for(lambda: stream.stats.garbled >= 5)
        n = stream.stats.quotes
        await wait_for(lambda: stream.stats.quotes > n + 5)
        assert stream.stats.connects == 1
    finally:
        await stream.stop()


async def test_ohlc_bars_arrive_as_bid_ask_pairs_stamped_at_the_bar_start() -> None:
    clock = SimClock.frozen(
        datetime(2026, 11, 30, 15, 39, 5, 467000, tzinfo=UTC)
    )  # mid-minute, as in the issue
    async with CapitalSimulator(seed=5, tick_s=0.02, clock=clock) as sim:
        client = make_client(sim)
        await client.open()
        bars: list[StreamBar] = []
        stream = make_stream(client, on_bar=bars.append)
        await stream.subscribe_ohlc(["SILVER"], ["MINUTE", "MINUTE_5"])
        await stream.start()
        try:
            await wait_for(lambda: bool(sim.stream.conns) and bool(sim.stream.conns[0].ohlc))
            for _ in range(6):
                await asyncio.sleep(0.1)
                clock.advance(60)
            await wait_for(lambda: sum(b.resolution == "MINUTE_5" for b in bars) >= 2)
            assert {b.price_type for b in bars[:2]} == {"bid", "ask"}
            assert all(b.epic == "SILVER" and b.bar_type == "classic" for b in bars)
            assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars)
            for b in bars:  # documented: t is the bar start, a multiple of the resolution
                step = 60 if b.resolution == "MINUTE" else 300
                assert b.start.tzinfo is UTC and int(b.start.timestamp()) % step == 0
                for px in (b.open, b.high, b.low, b.close):  # SILVER's grid, no float noise
                    assert px % Decimal("0.001") == 0, px
            first = min(b.start for b in bars if b.resolution == "MINUTE")
            assert first == datetime(2026, 11, 30, 15, 39, tzinfo=UTC)
            # The candles are the bars GET /prices serves for the same minutes.
            wire = sim.history.prices("SILVER", {"resolution": "MINUTE", "max": "20"})["prices"]
            by_start = {datetime.fromisoformat(p["snapshotTimeUTC"]).replace(tzinfo=UTC): p for p in wire}
            for b in (b for b in bars if b.resolution == "MINUTE"):
                p = by_start[b.start]
                assert (b.open, b.high, b.low, b.close) == tuple(
                    Decimal(repr(p[k][b.price_type]))
                    for k in ("openPrice", "highPrice", "lowPrice", "closePrice")
                )
        finally:
            await stream.stop()
            await client.close()


@given(
    st.dictionaries(
        st.sampled_from(["epic", "resolution", "priceType", "t", "o", "h", "l", "c", "type"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)),
    )
)
def test_bar_payload_parser_never_raises(payload: dict[str, Any]) -> None:
    bar = parse_bar_payload(payload)
    assert bar is None or (bar.price_type in ("bid", "ask") and bar.start.tzinfo is UTC)


def test_bar_payload_parses_an_event_of_the_documented_shape() -> None:
    bar = parse_bar_payload(
        {
            "resolution": "MINUTE",
            "epic": "OIL_CRUDE",
            "type": "classic",
            "priceType": "bid",
            "t": 1671714000000,
            "h": 76.37,
            "l": 76.337,
            "o": 76.352,
            "c": 76.363,
        }
    )
    assert bar is not None and bar.start == datetime(2022, 12, 22, 13, 0, tzinfo=UTC)
    assert (bar.open, bar.high, bar.low, bar.close) == tuple(
        Decimal(x) for x in ("76.352", "76.37", "76.337", "76.363")
    )


async def test_pings_keep_the_socket_and_account_switch_drops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    async with CapitalSimulator(seed=5, tick_s=0.02, ws_idle_s=0.3, clock=sim_clock()) as sim:
        client = make_client(sim)
        await client.open()
        stream = make_stream(client, ping_interval_s=0.1, backoff_base_s=0.05)
        await stream.subscribe(["GOLD"])
        await stream.start()
        try:
            with monkeypatch.context() as m:  # the simulator's idle clock moves with the pings, not the wall
                idle = IdleClock(m, sim_stream)
                await wait_for(lambda: bool(sim.stream.conns))
                await idle.run_past(0.3, lambda: all(c.last_ping == idle.now for c in sim.stream.conns))
            assert stream.stats.connects == 1  # pings kept it past the idle limit
            await client.switch_account("12345678901234568")
            await wait_for(lambda: stream.stats.connects == 2)
            await wait_for(lambda: bool(sim.stream.conns) and sim.stream.conns[0].epics == {"GOLD"})
        finally:
            await stream.stop()
            await client.close()


async def test_simulator_rejects_more_than_40_epics_per_request(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    cst, xst = client.tokens
    async with websockets.connect(sim.stream_url) as ws:
        epics = [f"E{i}" for i in range(41)]
        await ws.send(
            json.dumps(
                {
                    "destination": "marketData.subscribe",
                    "correlationId": 7,
                    "cst": cst,
                    "securityToken": xst,
                    "payload": {"epics": epics},
                }
            )
        )
        reply = json.loads(await ws.recv())
        assert reply["status"] == "ERROR" and reply["correlationId"] == "7"
        assert reply["payload"]["errorCode"]
        await ws.send(json.dumps({"destination": "ping", "cst": "bad", "securityToken": "bad"}))
        reply = json.loads(await ws.recv())
        assert reply["payload"]["errorCode"] == "error.invalid.session.token"


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_parse_message_never_raises(raw: str | bytes) -> None:
    msg = parse_message(raw)
    assert msg is None or isinstance(msg, dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(["epic", "bid", "ofr", "timestamp", "bidQty", "ofrQty", "x"]), json_values, max_size=7
    )
)
def test_parse_quote_payload_total(payload: dict[str, Any]) -> None:
    q = parse_quote_payload(payload)
    if q is not None:
        assert isinstance(q.epic, str) and isinstance(q.bid, float) and isinstance(q.ask, float)


def test_parse_quote_payload_valid() -> None:
    q = parse_quote_payload(
        {
            "epic": "GOLD",
            "product": "CFD",
            "bid": 1.5,
            "bidQty": 10,
            "ofr": 1.6,
            "ofrQty": 5,
            "timestamp": 1700000000000,
        }
    )
    assert q is not None and (q.epic, q.bid, q.ask, q.ts_ms) == ("GOLD", 1.5, 1.6, 1700000000000)
    assert parse_quote_payload({"epic": "GOLD", "bid": True, "ofr": 1.0, "timestamp": 1}) is None


pytestmark = pytest.mark.timeout(60)


async def test_consumer_callback_bugs_do_not_kill_the_stream(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    def boom(q: Any) -> None:
        raise RuntimeError("consumer bug")

    stream = make_stream(client, on_quote=boom)
    await stream.subscribe(["GOLD"])
    await stream.start()
    try:
        await wait_for(lambda: stream.stats.callback_errors >= 5)
        assert stream.stats.connects == 1 and "GOLD" in stream.latest
    finally:
        await stream.stop()


async def test_heikin_ashi_candles_are_computed_from_the_classic_bars() -> None:
    """`type: "heikin-ashi"` candles (spec §7.3) are heikin-ashi of the classic bars, not copies:
    close = (o+h+l+c)/4 of the classic bar, open = the mean of the previous candle's open and close,
    high/low the extremes of the bar and those two, all on the grid (second review of issue 18)."""
    clock = SimClock.frozen(datetime(2026, 11, 30, 15, 39, 5, 467000, tzinfo=UTC))
    tick = Decimal("0.001")  # SILVER

    def grid(x: Decimal) -> Decimal:
        return (x / tick).to_integral_value() * tick

    async with CapitalSimulator(seed=5, tick_s=0.02, clock=clock) as sim:
        client = make_client(sim)
        await client.open()
        classic: list[StreamBar] = []
        ha: list[StreamBar] = []
        s1 = make_stream(client, on_bar=classic.append)
        s2 = make_stream(client, on_bar=ha.append)
        await s1.subscribe_ohlc(["SILVER"], ["MINUTE"])
        await s2.subscribe_ohlc(["SILVER"], ["MINUTE"], bar_type="heikin-ashi")
        await s1.start()
        await s2.start()
        try:
            await wait_for(lambda: len(sim.stream.conns) == 2 and all(c.ohlc for c in sim.stream.conns))
            for _ in range(6):
                await asyncio.sleep(0.1)
                clock.advance(60)
            await wait_for(lambda: len(ha) >= 8 and len(classic) >= 8)
            assert all(b.bar_type == "heikin-ashi" for b in ha)
            by_key = {(b.start, b.price_type): b for b in classic}
            differs = 0
            for side in ("bid", "ask"):
                candles = sorted((b for b in ha if b.price_type == side), key=lambda b: b.start)
                for prev, b in zip([None, *candles], candles, strict=False):
                    c = by_key[(b.start, side)]
                    assert b.close == grid((c.open + c.high + c.low + c.close) / 4), (b, c)
                    if prev is not None and b.start - prev.start == timedelta(minutes=1):
                        assert b.open == grid((prev.open + prev.close) / 2), (prev, b)
                    assert b.high == max(c.high, b.open, b.close) and b.low == min(c.low, b.open, b.close)
                    for px in (b.open, b.high, b.low, b.close):
                        assert px % tick == 0, px
                    differs += (b.open, b.high, b.low, b.close) != (c.open, c.high, c.low, c.close)
            assert differs > 0  # not the classic bars again
        finally:
            await s1.stop()
            await s2.stop()
            await client.close()


async def test_an_unexpected_error_in_the_connection_loop_is_a_drop_not_a_dead_stream(
    sim: CapitalSimulator, client: CapitalClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relogin that fails with something other than a CapitalError used to end the shard's task:
    its epics went silent for good, with nothing to bring them back. Now it is a drop: reconnect,
    resubscribe."""
    calls = 0
    real = client.relogin

    async def odd_relogin(generation: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a library surprise")
        await real(generation)

    monkeypatch.setattr(client, "relogin", odd_relogin)
    stream = make_stream(client, ping_interval_s=0.05, backoff_base_s=0.05, backoff_max_s=0.05)
    await stream.subscribe(["GOLD"])
    await stream.start()
    try:
        await wait_for(lambda: "GOLD" in stream.latest)
        sim.gate.invalidate_all()
        await wait_for(lambda: stream.stats.unexpected == 1 and stream.stats.connects >= 2)
        seen = stream.stats.quotes
        await wait_for(lambda: stream.stats.quotes > seen + 3)  # quotes flow again after the drop
        assert calls >= 2 and stream.stats.drops >= 1
    finally:
        await stream.stop()
