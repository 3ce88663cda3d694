"""The daemon's quote-stream failover (`FailoverQuotes`, issue 19) on fake sources and a fake clock:
a silent primary's mapped instruments take the secondary's quotes under their own symbol, within the
price-basis tolerance only (never handed to the position monitor: no exit or stop move on them); no
entry while failed over, nor after recovery until the returning broker is reconciled; audited with
durations; the primary's first quote switches back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.core.events import NullAudit
from joe.data.failover import HEALTH_KEY, BrokerHealth, InstrumentMap
from joe.execution.price_stream import PriceStream, QuoteSink
from joe.execution.quote_failover import FailoverQuotes
from joe.execution.quotes import QuoteBatch
from joe.store import open_store

T0 = pd.Timestamp("2026-12-01T15:00:00Z").to_pydatetime()


class Source:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sink: QuoteSink | None = None
        self.subscribed: list[str] = []
        self.calls: list[str] = []

    def bind(self, stream: QuoteSink) -> None:
        self.sink = stream

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")

    async def subscribe(self, symbols: Sequence[str]) -> None:
        self.calls.append(f"sub {','.join(symbols)}")
        self.subscribed += [s for s in symbols if s not in self.subscribed]

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        self.calls.append(f"unsub {','.join(symbols)}")
        self.subscribed = [s for s in self.subscribed if s not in symbols]

    def quote(self, symbol: str, mid: float) -> None:
        assert self.sink is not None
        self.sink.push(symbol, mid - 0.05, mid + 0.05)


class Sink:
    def __init__(self) -> None:
        self.quotes: list[tuple[int, float]] = []

    def on_batch(self, batch: QuoteBatch) -> None:
        pairs = zip(batch.inst, batch.bid, batch.ask, strict=True)
        self.quotes += [(int(i), float(b + a) / 2) for i, b, a in pairs]


class World:
    def __init__(self, tmp: Path, *, open_market: bool = True, secondary_fails: bool = False) -> None:
        self.t = 1000.0
        self.now = T0
        self.audit = NullAudit()
        self.store = open_store(f"sqlite:///{tmp / 'joe.db'}", data_dir=tmp)
        self.health = BrokerHealth(self.store, self.audit, clock=lambda: self.now)
        self.open = open_market
        self.stream = PriceStream(stale_after_s=10, audit=self.audit, monotonic=lambda: self.t,
                                  is_open=lambda _s, _ns: self.open, clock_ns=lambda: 1)  # fmt: skip
        self.sink = Sink()
        self.stream.consumers.append(self.sink)
        self.primary = Source("ibkr")
        self.secondary = Source("capital")
        self.opened = 0
        self.closed = 0
        self.secondary_fails = secondary_fails
        self.reconciles: list[str] = []
        self.reconcile_fails = False

        async def open_secondary() -> Any:
            if self.secondary_fails:
                raise ConnectionRefusedError("capital down too")
            self.opened += 1

            async def close() -> None:
                self.closed += 1

            return self.secondary, close

        async def on_recovered() -> None:
            self.reconciles.append("reconcile")
            if self.reconcile_fails:
                raise TimeoutError("broker still not answering")

        self.fo = FailoverQuotes(
            self.primary, "capital", open_secondary,
            InstrumentMap({"AAPL": "AAPL_CFD", "NVDA": "NVDA_CFD"}), Decimal("1"), self.health,
            silent_after_s=10, monotonic=lambda: self.t, on_recovered=on_recovered,
        )  # fmt: skip
        self.stream.add_source(self.fo)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [p for e, p, _ in self.audit.records if e == name]

    def mids(self, symbol: str) -> list[float]:
        i = self.stream.instruments.get(symbol)
        return [m for k, m in self.sink.quotes if k == i]

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        self.now += pd.Timedelta(seconds=seconds)
        await self.fo.check()
        await settle()


async def settle() -> None:
    """Let the tasks a quote spawned (unsubscribing at the secondary, the recovery) run."""
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    w = World(tmp_path)
    await w.stream.start()
    await w.stream.watch(["AAPL", "NVDA", "ONLY"], held=True)
    for s, mid in (("AAPL", 190.0), ("NVDA", 100.0), ("ONLY", 50.0)):
        w.primary.quote(s, mid)
    w.stream.flush()
    yield w
    await w.stream.stop()
    w.store.close()


async def test_a_silent_primary_fails_over_mapped_instruments_within_the_basis_and_switches_back(
    world: World,
) -> None:
    w = world
    assert w.stream.entries_allowed("AAPL") and w.stream.price_sources()["AAPL"] == "ibkr"
    await w.advance(9)
    assert w.opened == 0 and not w.fo.borrowed  # not silent long enough
    await w.advance(2)
    # AAPL and NVDA are mapped: the secondary is opened once and carries their CFDs; ONLY is not.
    assert w.opened == 1 and sorted(w.secondary.subscribed) == ["AAPL_CFD", "NVDA_CFD"]
    assert sorted(w.fo.borrowed) == ["AAPL", "NVDA"] and "ONLY" not in w.fo.borrowed
    started = w.events("failover.started")
    assert [(s["broker"], s["to"]) for s in started] == [("ibkr", "capital")]
    assert {b["symbol"] for b in w.events("failover.quotes_borrowed")} == {"AAPL", "NVDA"}
    assert w.store.get_state(HEALTH_KEY)["ibkr"]["down_since"] == T0.replace(second=11).isoformat()
    # No entry goes to a broker whose stream is down, on any failed-over instrument.
    assert not w.stream.entries_allowed("AAPL") and "prices from capital" in w.stream.no_entry["AAPL"]

    w.secondary.quote("AAPL_CFD", 191.0)  # 0.53% from the primary's last mid: used, as AAPL
    w.secondary.quote("NVDA_CFD", 800.0)  # 700% apart: a CFD on another basis, never used
    w.secondary.quote("NVDA_CFD", 801.0)
    quotes = w.stream.quotes
    w.stream.flush()
    # AAPL's borrowed quote keeps it fresh (NVDA's refused one does not reach the stream at all), but the
    # consumers (the PositionMonitor: backup exits, trailing) act on the holding broker's prices only.
    assert w.stream.quotes == quotes + 1 and w.stream.last_seen("AAPL") == w.t
    assert w.mids("AAPL") == [pytest.approx(190.0)] and w.mids("NVDA") == [pytest.approx(100.0)]
    refused = w.events("failover.basis_refused")
    assert [r["symbol"] for r in refused] == ["NVDA"] and "700.00% apart" in refused[0]["detail"]
    assert w.stream.price_sources() == {"AAPL": "capital (AAPL_CFD)", "NVDA": "ibkr", "ONLY": "ibkr"}

    # The primary quotes AAPL again: AAPL returns; the outage lasts while NVDA is still borrowed.
    await w.advance(20)
    w.primary.quote("AAPL", 190.5)
    w.stream.flush()
    await settle()
    assert "AAPL" not in w.fo.borrowed and w.events("failover.recovered") == []
    assert w.stream.price_sources()["AAPL"] == "ibkr" and "AAPL_CFD" not in w.secondary.subscribed
    assert not w.stream.entries_allowed("AAPL")  # back, but its broker is not reconciled yet
    assert w.mids("AAPL")[-1] == pytest.approx(190.5)
    w.secondary.quote("AAPL_CFD", 191.0)  # no longer borrowed: ignored
    w.stream.flush()
    assert w.mids("AAPL")[-1] == pytest.approx(190.5)

    w.primary.quote("NVDA", 100.2)
    w.stream.flush()
    await settle()
    recovered = w.events("failover.recovered")
    assert len(recovered) == 1 and recovered[0]["down_s"] == pytest.approx(20.0)
    returned = {r["symbol"]: r["borrowed_s"] for r in w.events("failover.quotes_returned")}
    assert returned == {"AAPL": pytest.approx(20.0), "NVDA": pytest.approx(20.0)}
    assert w.reconciles == ["reconcile"]  # reconciled before it takes entries again
    assert w.stream.entries_allowed("AAPL") and w.stream.entries_allowed("NVDA")
    assert w.closed == 1 and w.store.get_state(HEALTH_KEY) == {}
    assert w.fo.state()["borrowed"] == {}


async def test_no_entries_until_the_returning_broker_is_reconciled(world: World) -> None:
    w = world
    await w.advance(11)
    w.reconcile_fails = True
    for s in ("AAPL", "NVDA"):
        w.primary.quote(s, 190.0 if s == "AAPL" else 100.0)
    w.stream.flush()
    await settle()
    assert w.events("failover.recovery_pending") and not w.stream.entries_allowed("AAPL")
    assert w.stream.no_entry["AAPL"].endswith("not reconciled yet") and not w.fo.borrowed
    await w.advance(1)  # still failing: still no entries
    assert not w.stream.entries_allowed("NVDA")
    tried = len(w.reconciles)
    w.reconcile_fails = False
    await w.advance(1)
    assert len(w.reconciles) == tried + 1
    assert w.stream.entries_allowed("AAPL") and w.stream.entries_allowed("NVDA")
    assert len(w.events("failover.recovered")) == 1  # one outage, one recovery record


async def test_closed_market_is_not_an_outage_and_a_dead_secondary_borrows_nothing(tmp_path: Path) -> None:
    w = World(tmp_path, open_market=False, secondary_fails=True)
    await w.stream.start()
    await w.stream.watch(["AAPL"])
    w.primary.quote("AAPL", 190.0)
    await w.advance(60)
    assert not w.events("failover.secondary_unavailable") and not w.fo.borrowed
    w.open = True
    await w.advance(11)
    assert w.events("failover.secondary_unavailable") and not w.fo.borrowed
    assert w.events("failover.started") == []  # nothing failed over: no outage to end later
    await w.stream.stop()
    w.store.close()


async def test_a_new_primary_connection_keeps_the_failover_and_carries_every_symbol(world: World) -> None:
    w = world
    await w.advance(11)
    fresh = Source("ibkr")
    await w.fo.replace_primary(fresh)
    assert "stop" in w.primary.calls and sorted(fresh.subscribed) == ["AAPL", "NVDA", "ONLY"]
    assert sorted(w.fo.borrowed) == ["AAPL", "NVDA"]
    fresh.quote("AAPL", 190.1)
    fresh.quote("NVDA", 100.1)
    w.stream.flush()
    await settle()
    assert not w.fo.borrowed and w.stream.entries_allowed("AAPL")


async def no_secondary() -> Any:
    raise AssertionError("not opened by a basis check")


@settings(max_examples=60, deadline=None)
@given(ref=st.floats(1, 10_000), move_pct=st.floats(-50, 50), tol=st.integers(0, 20))
def test_the_basis_check_takes_a_quote_exactly_within_the_tolerance(
    ref: float, move_pct: float, tol: int
) -> None:
    def make() -> FailoverQuotes:
        imap = InstrumentMap({"X": "Y"})
        health = BrokerHealth(None, NullAudit())
        primary, tolerance = Source("ibkr"), Decimal(tol)
        return FailoverQuotes(primary, "capital", no_secondary, imap, tolerance, health, silent_after_s=1)

    fo = make()
    fo._mid["X"] = ref
    mid = ref * (1 + move_pct / 100)
    ok, detail = fo.basis("X", "Y", mid)
    gap = abs(mid / ref - 1) * 100
    if abs(gap - tol) > 1e-6:
        assert ok == (gap < tol), detail
    assert f"tolerance {tol}%" in detail
    assert make().basis("X", "Y", mid)[0] is False  # no primary price at all: never used


async def test_a_scheduled_run_takes_no_entry_on_failed_over_or_stale_instruments(
    tmp_path: Path,
) -> None:
    """The daemon's entry gate with failover: its scheduled run (`joe run --once --no-entry ...`) gets
    every instrument whose broker is not healthy for it: failed over (AAPL, NVDA) or silent with no
    mapping (ONLY: stale); the heartbeat says where each price comes from and why no entry."""
    from joe.data.calendars import calendar_for
    from joe.execution.position_monitor import PositionMonitor
    from joe.runtime.daemon import HEARTBEAT_KEY, Daemon, DaemonTimings
    from joe.runtime.schedule import Anchor, Schedule, ScheduledRun, ScheduleRule
    from runtime.test_daemon import NoExits, State

    w = World(tmp_path)
    base = pd.Timestamp("2026-11-27T14:44:58.5Z").to_pydatetime()
    t0 = [0.0]

    def clock() -> Any:
        return base + pd.Timedelta(seconds=asyncio.get_running_loop().time() - t0[0])

    runs: list[tuple[str, ...]] = []

    async def on_run(run: ScheduledRun) -> None:
        runs.append(run.no_entries)

    state = State()
    d = Daemon(audit=w.audit, state=state, stream=w.stream, monitor=PositionMonitor(w.stream.instruments,
               NoExits()), mode="live", timings=DaemonTimings(heartbeat_s=0.05, tick_s=0.05),
               schedule=Schedule(calendar_for("XNYS"), [ScheduleRule("after_open", Anchor.OPEN, 15)]),
               on_run=on_run, clock=clock, watch=["AAPL", "NVDA", "ONLY"])  # fmt: skip
    t0[0] = asyncio.get_running_loop().time()
    task = asyncio.create_task(d.run())
    while len(w.stream.watched) < 3:
        await asyncio.sleep(0.01)
    for s, mid in (("AAPL", 190.0), ("NVDA", 100.0), ("ONLY", 50.0)):
        w.primary.quote(s, mid)
    w.stream.flush()
    assert all(d.entries_allowed(s) for s in ("AAPL", "NVDA", "ONLY"))
    await w.advance(11)  # the primary is silent: AAPL and NVDA fail over, ONLY (unmapped) goes stale
    w.stream.check_staleness()
    w.secondary.quote("AAPL_CFD", 190.2)
    w.stream.flush()
    assert not any(d.entries_allowed(s) for s in ("AAPL", "NVDA", "ONLY"))
    for _ in range(2000):  # bounded: a run that never comes fails here instead of hanging the suite
        if runs:
            break
        await asyncio.sleep(0.01)
    assert runs, "the daemon never ran the pipeline (20 s)"
    d.request_stop("test")
    await asyncio.wait_for(task, 5)
    assert runs == [("AAPL", "NVDA", "ONLY")]
    beat = state.kv[HEARTBEAT_KEY]
    assert beat["price_sources"] == {"AAPL": "capital (AAPL_CFD)", "NVDA": "ibkr", "ONLY": "ibkr"}
    assert sorted(beat["no_entry"]) == ["AAPL", "NVDA"] and beat["stale"] == ["NVDA", "ONLY"]
    from joe.cli.status_cmd import daemon_price_lines  # what `joe status` prints of it

    assert daemon_price_lines(beat) == [
        "daemon quotes from: capital (AAPL_CFD): AAPL; ibkr: NVDA, ONLY",
        "daemon: no entry on AAPL: ibkr not quoting: prices from capital (AAPL_CFD)",
        "daemon: no entry on NVDA: ibkr not quoting: prices from capital (NVDA_CFD)",
    ]
    w.store.close()
