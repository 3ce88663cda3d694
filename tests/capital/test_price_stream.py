"""PriceStream over Capital.com's WebSocket, against the simulator: quotes reach the PositionMonitor
from several shards; a WebSocket drop and the 10-minute idle rule (scaled down) end with the
subscriptions live again; a silent epic goes stale while the others quote."""

from __future__ import annotations

from typing import Any

import pytest

from idle_clock import IdleClock
from joe.brokers.capital import CapitalClient, CapitalStream
from joe.brokers.capital.endpoints import normalise_stream_url
from joe.core.events import NullAudit
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.execution.protection import ExitRequest, StopModify
from joe.execution.quote_sources import CapitalQuoteSource
from joe.simulators.capital import CapitalSimulator
from joe.simulators.capital import stream as sim_stream
from market_clock import sim_clock

from .conftest import make_client
from .test_streaming import wait_for


class NoExits:
    def request_exit(self, request: ExitRequest) -> None: ...

    def request_stop_modify(self, request: StopModify) -> None: ...


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def rig(
    client: CapitalClient, stream_kw: dict[str, Any] | None = None, **kw: Any
) -> tuple[PriceStream, CapitalStream]:
    cs = CapitalStream(client, normalise_stream_url(client.session.streaming_host), audit=NullAudit(),
                       **(stream_kw or {}))  # fmt: skip
    ps = PriceStream(**kw)
    ps.consumers.append(PositionMonitor(ps.instruments, NoExits()))
    ps.add_source(CapitalQuoteSource(cs))
    return ps, cs


def monitor(ps: PriceStream) -> PositionMonitor:
    m = ps.consumers[0]
    assert isinstance(m, PositionMonitor)
    return m


async def test_every_epic_reaches_the_monitor_across_shards(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    epics = list(sim.exchange.prices)
    ps, cs = rig(client, {"max_epics": 8})
    await ps.start()
    try:
        await ps.watch(epics)
        await wait_for(lambda: all(monitor(ps).mark(e) is not None for e in epics))
        assert cs.connections == 3 and all(len(c.epics) <= 8 for c in sim.stream.conns)
        assert ps.batches <= ps.quotes
    finally:
        await ps.stop()


async def test_websocket_drop_reconnects_and_quotes_flow_again(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    ps, cs = rig(client, {"backoff_base_s": 0.05, "backoff_max_s": 0.05})
    await ps.start()
    try:
        await ps.watch(["GOLD", "EURUSD"], held=True)
        await wait_for(lambda: ps.quotes > 5)
        sim.faults.arm("ws_drop", 1)
        await wait_for(lambda: cs.stats.drops == 1)
        n = ps.quotes
        await wait_for(lambda: cs.stats.connects == 2 and ps.quotes > n + 5)
        assert {e for c in sim.stream.conns for e in c.epics} == {"GOLD", "EURUSD"}
    finally:
        await ps.stop()


async def test_ten_minute_idle_rule_pings_keep_it_and_a_drop_is_healed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The simulator closes a socket that sent nothing for ws_idle_s (600 s at Capital.com; 0.3 s here).
    async with CapitalSimulator(seed=5, tick_s=0.02, ws_idle_s=0.3, clock=sim_clock()) as sim:
        client = make_client(sim)
        await client.open()
        try:
            ps, cs = rig(client, {"ping_interval_s": 0.1})
            await ps.start()
            await ps.watch(["GOLD"])
            with monkeypatch.context() as m:  # the simulator's idle clock moves with the pings, not the wall
                idle = IdleClock(m, sim_stream)
                await wait_for(lambda: bool(sim.stream.conns))
                await idle.run_past(0.3, lambda: all(c.last_ping == idle.now for c in sim.stream.conns))
            n = ps.quotes
            await wait_for(lambda: ps.quotes > n + 5)
            assert cs.stats.drops == 0 and cs.stats.connects == 1  # pinged well inside the limit
            await ps.stop()
            # without pings inside the limit the socket is closed, and the stream heals itself
            ps2, cs2 = rig(client, {"ping_interval_s": 30, "backoff_base_s": 0.05, "backoff_max_s": 0.05})
            await ps2.start()
            await ps2.watch(["GOLD"])
            await wait_for(lambda: cs2.stats.drops >= 1)
            n = ps2.quotes
            await wait_for(lambda: cs2.stats.connects >= 2 and ps2.quotes > n + 3)
            await ps2.stop()
        finally:
            await client.close()
    # the production default pings well inside Capital.com's 10 minutes
    assert 0 < CapitalStream(client, "ws://x", audit=NullAudit()).ping_interval_s < 600


async def test_a_silent_epic_goes_stale_while_the_others_quote(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    clock = Clock()
    alerts: list[str] = []
    ps, _cs = rig(client, stale_after_s=30, monotonic=clock, on_alert=alerts.append)
    await ps.start()
    try:
        await ps.watch(["GOLD", "SILVER"], held=True)
        await wait_for(lambda: ps.last_seen("GOLD") is not None and ps.last_seen("SILVER") is not None)
        sim.faults.arm("stale_quotes", 1, epics=["GOLD"], seconds=30)
        await wait_for(lambda: sim.stream.stale_until.get("GOLD", 0) > 0)
        clock.t += 31
        await wait_for(lambda: ps.last_seen("SILVER") == clock.t)  # SILVER still quotes
        ps.check_staleness()
        assert ps.stale == {"GOLD"}
        assert not ps.entries_allowed("GOLD") and ps.entries_allowed("SILVER")
        assert len(alerts) == 1 and "GOLD" in alerts[0]
    finally:
        await ps.stop()
