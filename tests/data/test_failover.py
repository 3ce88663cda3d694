"""Market-data failover rules (issue 19) on in-memory sources: which broker prices what, the price-basis
check, one audited failover per outage and its duration on recovery. The simulators' end-to-end runs
are in tests/runtime/test_failover_runs.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.base import BrokerError, BrokerUnavailable
from joe.core.events import NullAudit
from joe.core.models import Instrument, Quote
from joe.data.failover import BrokerHealth, FailoverMarketData, InstrumentMap, basis_check
from joe.store import open_store

T0 = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)


def bars(last: float, end: str = "2026-11-30", n: int = 5) -> pd.DataFrame:
    idx = pd.date_range(end=end, periods=n, freq="D", tz="UTC")
    close = [last * (1 + 0.001 * (i - n + 1)) for i in range(n)]
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=idx
    )


class Source:
    """A MarketData with fixed closes; `down` makes every call fail as a dropped connection does."""

    def __init__(self, name: str, closes: dict[str, float]) -> None:
        self.name = name
        self.closes = closes
        self.down = False
        self.calls: list[str] = []

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise BrokerUnavailable(f"{self.name} not connected")

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        self._check("universe")
        return [Instrument(s) for s in self.closes]

    async def history(
        self, symbol: str, timeframe: str = "1d", start: Any = None, end: Any = None
    ) -> pd.DataFrame:
        self._check(f"history {symbol}")
        if symbol not in self.closes:
            raise BrokerError(f"{self.name} does not know {symbol}")
        return bars(self.closes[symbol])

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        self._check("quotes")
        return {
            s: Quote(s, T0, Decimal(str(self.closes[s])) - 1, Decimal(str(self.closes[s])) + 1)
            for s in symbols
            if s in self.closes
        }

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Any]:
        return {}


class World:
    def __init__(self, tmp: Path) -> None:
        self.now = T0
        self.store = open_store(f"sqlite:///{tmp / 'joe.db'}", data_dir=tmp)
        self.audit = NullAudit()
        self.alerts: list[str] = []

        async def notify(title: str, body: str) -> None:
            self.alerts.append(title)

        self.health = BrokerHealth(self.store, self.audit, clock=lambda: self.now, notify=notify)
        self.ibkr = Source("ibkr", {"AAPL": 190.0, "MSFT": 410.0, "NVDA": 100.0, "IBM": 150.0})
        self.capital = Source("capital", {"AAPL": 190.5, "MSFT": 409.0, "NVDA": 800.0, "US500": 5000.0})
        # The ibkr's last cached closes (what a run before the outage left in the bar cache).
        self.refs = {s: (pd.Timestamp("2026-11-30", tz="UTC"), c) for s, c in self.ibkr.closes.items()}

    def md(self, primary_up: bool = True, mapping: dict[str, str] | None = None) -> FailoverMarketData:
        async def open_secondary() -> Any:
            return self.capital

        imap = InstrumentMap(mapping or {"AAPL": "AAPL", "MSFT": "MSFT", "NVDA": "NVDA"})
        return FailoverMarketData(
            "ibkr", self.ibkr if primary_up else None, "capital", open_secondary, imap, Decimal(1),
            self.refs.get, self.health,
        )  # fmt: skip

    def events(self, name: str) -> list[dict[str, Any]]:
        return [p for e, p, _ in self.audit.records if e == name]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_healthy_primary_prices_everything_and_the_secondary_is_never_opened(world: World) -> None:
    md = world.md()
    for s in ("AAPL", "IBM"):
        run(md.history(s))
    assert md.sources == {"AAPL": "ibkr", "IBM": "ibkr"} and world.capital.calls == []
    assert not md.failed_over and world.events("failover.started") == []


def test_primary_drops_mid_run_mapped_instruments_fail_over_others_get_no_price(world: World) -> None:
    md = world.md()
    run(md.history("IBM"))
    world.ibkr.down = True  # the connection drops mid-session
    assert run(md.history("AAPL"))["close"].iloc[-1] == pytest.approx(190.5)
    assert run(md.history("MSFT"))["close"].iloc[-1] == pytest.approx(409.0)
    with pytest.raises(BrokerUnavailable, match=r"not in brokers\.failover\.instruments"):
        run(md.history("IBM"))  # only the failed broker offers it: no price, so no entry
    with pytest.raises(BrokerUnavailable, match="price not used"):
        run(md.history("NVDA"))  # the CFD is 8x the cash price: never mistaken for it
    assert md.sources == {"IBM": "ibkr", "AAPL": "capital (AAPL)", "MSFT": "capital (MSFT)"}
    assert "price basis" in md.refused["NVDA"] and "700.00% apart" in md.refused["NVDA"]
    started = world.events("failover.started")
    assert len(started) == 1 and started[0]["broker"] == "ibkr" and started[0]["to"] == "capital"
    assert world.events("failover.basis_refused")[0]["symbol"] == "NVDA"
    assert world.alerts == ["Failover: ibkr down, prices from capital"]
    # After the drop the primary is not asked again in this run (no blind retries).
    assert world.ibkr.calls == ["history IBM", "history AAPL"]
    lines = md.lines()
    assert lines[0].startswith("FAILOVER: ibkr unavailable: prices from capital for 2 mapped instrument(s)")
    # Quotes: only symbols whose bars passed the basis check, renamed to the primary's symbols.
    quotes = run(md.quotes(["AAPL", "NVDA", "IBM"]))
    assert set(quotes) == {"AAPL"} and quotes["AAPL"].symbol == "AAPL"


def test_primary_that_never_connected_gives_the_mapped_universe(world: World) -> None:
    md = world.md(primary_up=False)
    assert [i.symbol for i in run(md.universe())] == ["AAPL", "MSFT", "NVDA"]
    assert md.failed_over and world.ibkr.calls == []


def test_reference_too_old_or_missing_refuses(world: World) -> None:
    world.refs["AAPL"] = (pd.Timestamp("2026-11-20", tz="UTC"), 190.0)
    del world.refs["MSFT"]
    md = world.md(primary_up=False)
    with pytest.raises(BrokerUnavailable, match="too old"):
        run(md.history("AAPL"))
    with pytest.raises(BrokerUnavailable, match="no ibkr price of MSFT"):
        run(md.history("MSFT"))
    assert md.sources == {}


def test_one_outage_one_record_and_its_duration_on_recovery(world: World) -> None:
    run(world.health.down("ibkr", "capital", "ConnectionRefusedError"))
    world.now += timedelta(minutes=5)
    run(world.health.down("ibkr", "capital", "again"))  # the same outage: not recorded twice
    assert len(world.events("failover.started")) == 1
    world.now += timedelta(minutes=7)
    assert run(world.health.up("ibkr")) == pytest.approx(720.0)
    rec = world.events("failover.recovered")
    assert rec == [{"broker": "ibkr", "down_since": T0.isoformat(), "down_s": 720.0,
                    "reason": "ConnectionRefusedError"}]  # fmt: skip
    assert run(world.health.up("ibkr")) is None  # not down: nothing to recover
    assert world.alerts[-1] == "Failover: ibkr back after 720 s"
    assert world.health.down_since("ibkr") is None


def test_outage_survives_a_restart(world: World, tmp_path: Path) -> None:
    """The outage lives in the store: a later run (another process) measures the whole of it."""
    run(world.health.down("capital", "ibkr", "SessionExpired"))
    later = BrokerHealth(world.store, world.audit, clock=lambda: T0 + timedelta(hours=2))
    assert later.down_since("capital") == T0
    assert run(later.up("capital")) == pytest.approx(7200.0)


def test_the_map_works_both_ways() -> None:
    m = InstrumentMap({"SPY": "US500", "AAPL": "AAPL"})
    assert m.other("ibkr", "SPY") == "US500" and m.other("capital", "US500") == "SPY"
    assert m.other("capital", "GOLD") is None and m.symbols("capital") == ["US500", "AAPL"]


@given(
    ref=st.floats(1, 10_000),
    ratio=st.floats(0.5, 2.0),
    tol=st.decimals(Decimal("0.1"), Decimal(10), places=2),
    age=st.integers(0, 10),
)
def test_basis_check_property(ref: float, ratio: float, tol: Decimal, age: int) -> None:
    """Used exactly when the reference is recent and the gap is within the tolerance."""
    day = pd.Timestamp("2026-11-20", tz="UTC")
    frame = bars(ref * ratio, end=str((day + pd.Timedelta(days=age)).date()))
    v = basis_check("X", "ibkr", "X", "capital", (day, ref), frame, tol)
    gap = abs(float(frame["close"].iloc[-1]) / ref - 1) * 100
    assert v.ok == (age <= 4 and gap <= float(tol))


def test_a_healthy_run_keeps_a_reference_for_every_mapped_instrument(world: World) -> None:
    """The next outage needs the failed broker's last price of each mapped instrument, even one this run's
    scan did not choose: a healthy run fetches them through the cache, without counting them as used."""
    md = world.md()
    run(md.history("AAPL"))
    run(md.refresh_references())
    assert world.ibkr.calls == ["history AAPL", "history MSFT", "history NVDA"]
    assert md.sources == {"AAPL": "ibkr"} and world.capital.calls == []


def test_concurrent_histories_open_the_other_broker_once(world: World) -> None:
    """Histories are fetched concurrently; IBKR refuses a second connection with the same clientId."""
    opened: list[int] = []

    async def open_secondary() -> Any:
        opened.append(1)
        await asyncio.sleep(0.01)
        return world.capital

    md = world.md(primary_up=False)
    md.open_secondary = open_secondary

    async def both() -> list[Any]:
        return list(await asyncio.gather(md.history("AAPL"), md.history("MSFT")))

    run(both())
    assert opened == [1] and set(md.sources) == {"AAPL", "MSFT"}
