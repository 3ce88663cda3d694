"""Issue 14, point 3: the local bar cache (fetch only what is new, re-fetch corrections, survive restarts)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from joe.brokers.base import HISTORY_COLUMNS
from joe.brokers.ibkr import IBKRMarketData
from joe.core.events import NullAudit
from joe.core.models import Instrument, Quote
from joe.data import DataError
from joe.data.cache import (
    BarCache,
    CachedHistory,
    ContractIdCache,
    contract_id_cache,
    load_cached_panel,
    open_cache_source,
    open_cached_history,
)
from joe.data.collectors import HistoryCollector
from joe.simulators.common import SimClock
from joe.simulators.ibkr import IBKRSimulator


class FakeBroker:
    """An in-memory broker history: records every request; bars can be corrected or added."""

    name = "fake"

    def __init__(self, n: int = 300) -> None:
        idx = pd.bdate_range("2024-01-01", periods=n, tz="UTC", name="ts")
        close = 100 + np.arange(n, dtype=float)
        self.bars = pd.DataFrame(
            {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1e6}, index=idx
        )
        self.calls: list[tuple[str, datetime | None, datetime | None]] = []

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        return [Instrument(symbol="AAA")]

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        return {}

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, object]:  # type: ignore[override]
        return {}

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        self.calls.append((symbol, start, end))
        out = self.bars
        if start is not None:
            out = out.loc[out.index >= pd.Timestamp(start)]
        if end is not None:
            out = out.loc[out.index <= pd.Timestamp(end)]
        return out.copy()

    def add_bar(self, close: float) -> None:
        ts = self.bars.index[-1] + pd.offsets.BDay(1)
        self.bars.loc[ts] = [close, close + 1, close - 1, close, 1e6]


async def test_second_run_fetches_only_the_last_bars_and_takes_corrections(tmp_path: Path) -> None:
    broker = FakeBroker()
    first = open_cached_history(broker, tmp_path)  # type: ignore[arg-type]
    got = await first.history("AAA")
    assert len(got) == 300 and broker.calls == [("AAA", None, None)]

    broker.bars.iloc[-1, 3] = 123.45  # the broker corrects the last bar...
    broker.add_bar(500.0)  # ...and a new one arrives
    second = open_cached_history(broker, tmp_path)  # a restart: a new object, the same folder
    got = await second.history("AAA")
    (_, start, _) = broker.calls[-1]
    assert start == broker.bars.index[-4].to_pydatetime()  # the 3 last cached bars are re-fetched
    assert len(got) == 301 and got["close"].iloc[-2] == 123.45 and got["close"].iloc[-1] == 500.0
    assert list(got.columns) == list(HISTORY_COLUMNS)
    pd.testing.assert_frame_equal(got, broker.bars, check_freq=False)


async def test_a_withdrawn_recent_bar_disappears_but_an_empty_answer_keeps_the_cache(tmp_path: Path) -> None:
    broker = FakeBroker(50)
    cache = CachedHistory(broker, BarCache(tmp_path))  # type: ignore[arg-type]
    await cache.history("AAA")
    broker.bars = broker.bars.drop(broker.bars.index[-2])
    assert len(await cache.history("AAA")) == 49
    broker.bars = broker.bars.iloc[:0]
    assert len(await cache.history("AAA")) == 49


async def test_an_answer_shorter_than_asked_keeps_the_cached_bars_before_it(tmp_path: Path) -> None:
    """The refetch asks from the 3rd last cached bar; an answer that starts one bar later (the broker
    counted the duration in its own days) says nothing about that bar: it stays. A bar missing inside
    the answer is withdrawn and goes."""
    broker = FakeBroker(50)
    cache = CachedHistory(broker, BarCache(tmp_path))  # type: ignore[arg-type]
    await cache.history("AAA")
    full = broker.bars
    broker.bars = full.drop(full.index[-3])  # the answer to "from index[-3]" starts at index[-2]
    got = await cache.history("AAA")
    assert broker.calls[-1][1] == full.index[-3].to_pydatetime()
    pd.testing.assert_frame_equal(got, full, check_freq=False)  # nothing lost
    broker.bars = full.drop(full.index[-2])
    assert full.index[-2] not in (await cache.history("AAA")).index  # withdrawn between fresh bars


async def test_a_window_in_the_past_is_served_without_a_request(tmp_path: Path) -> None:
    broker = FakeBroker(100)
    cache = open_cached_history(broker, tmp_path)  # type: ignore[arg-type]
    await cache.history("AAA")
    n = len(broker.calls)
    idx = broker.bars.index
    got = await cache.history("AAA", "1d", idx[10].to_pydatetime(), idx[40].to_pydatetime())
    assert len(got) == 31 and len(broker.calls) == n  # the backtest replays from disk
    earlier = await cache.history("AAA", "1d", datetime(2023, 1, 2, tzinfo=UTC))
    assert len(broker.calls) == n + 1 and len(earlier) == 100  # asked for more than cached: one full request


async def test_an_unreadable_cache_file_is_fetched_again(tmp_path: Path) -> None:
    broker = FakeBroker(20)
    cache = open_cached_history(broker, tmp_path)  # type: ignore[arg-type]
    await cache.history("AAA")
    cache.cache.path("fake", "AAA", "1d").write_bytes(b"torn write")
    assert len(await cache.history("AAA")) == 20 and broker.calls[-1][1] is None


def test_cache_paths_are_safe_for_odd_symbols(tmp_path: Path) -> None:
    c = BarCache(tmp_path)
    p = c.path("ibkr", "BRK/B", "1d")
    assert p.parent == tmp_path / "ibkr" / "1d" and "/" not in p.name and p.name.endswith(".parquet")
    assert c.path("ibkr", "../../etc", "1d").resolve().is_relative_to(tmp_path.resolve())


# -- against the IBKR simulator ----------------------------------------------------------------------

N_INSTRUMENTS = 500


def _duration_days(d: str) -> int:
    n, unit = d.split()
    return int(n) * {"D": 1, "W": 7, "M": 31, "Y": 366}[unit]


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_second_run_same_day_sends_one_small_request_per_instrument(tmp_path: Path) -> None:
    """With IBKR's pacing, a second run on the same day against 500 instruments: <= 1 small request each."""
    symbols = [f"S{i:03d}" for i in range(N_INSTRUMENTS)]
    # The clock of both runs is pinned at 00:40 UTC on a Wednesday, the hour this test once failed at
    # (run 2's re-fetch of its last 3 bars got 2: one bar lost): not the wall clock's hour.
    clock = SimClock.frozen(datetime(2026, 12, 2, 0, 40, tzinfo=UTC))
    sim = IBKRSimulator(server_version=178, seed=7, universe=tuple(symbols), clock=clock)
    await sim.start()
    try:
        for run, client_id in ((1, 41), (2, 42)):  # two processes: a fresh client and cache object each
            md = IBKRMarketData(
                "127.0.0.1", sim.port, client_id, "", "paper", NullAudit(), connect_timeout=5.0, clock=clock
            )
            await md.connect()
            try:
                before = len(sim.client_messages(20))
                details_before = len(sim.client_messages(REQ_CONTRACT_DETAILS))
                cached = open_cached_history(md, tmp_path, source_key="ibkr")
                got = await HistoryCollector(cached, concurrency=16).collect_symbols(symbols)
                assert not got.errors and len(got.frames) == N_INSTRUMENTS
                assert all(len(f) >= 300 for f in got.frames.values())
                requests = sim.client_messages(20)[before:]
                details = len(sim.client_messages(REQ_CONTRACT_DETAILS)) - details_before
            finally:
                await md.close()
            if run == 1:
                first_frames = got.frames
                assert len(requests) == N_INSTRUMENTS
        per_symbol: dict[str, int] = {}
        for m in requests:
            sym = m.fields[3]  # contract symbol (reqHistoricalData: id, reqId, conId, symbol, ...)
            per_symbol[sym] = per_symbol.get(sym, 0) + 1
        assert len(requests) == N_INSTRUMENTS and set(per_symbol.values()) == {1}
        assert details == 0  # run 2: every conId from the contract-id cache
        durations = {m.fields[17] for m in requests}
        assert all(re.fullmatch(r"\d+ D", d) and _duration_days(d) <= 7 for d in durations), durations
        for s in symbols[:20]:  # the cached history is the same bars (corrections aside)
            a, b = first_frames[s], got.frames[s]
            assert len(b) >= len(a) and (a.index[:-3] == b.index[: len(a) - 3]).all()
    finally:
        await sim.stop()


# -- the cache read back without a broker (joe backtest --source cache) --------------------------------


async def test_the_cache_reads_back_as_a_source_and_a_panel_without_requests(tmp_path: Path) -> None:
    broker = FakeBroker(60)
    cached = open_cached_history(broker, tmp_path, source_key="ibkr")
    for sym in ("AAA", "BRK/B", "NESTLÉ", ".."):
        await cached.history(sym)
    n = len(broker.calls)
    src = open_cache_source(tmp_path)  # the only cached source is picked
    assert src.name == "cache:ibkr" and len(broker.calls) == n
    assert {i.symbol for i in src.universe_now("all")} == {"AAA", "BRK/B", "NESTLÉ", ".."}
    pd.testing.assert_frame_equal(src.history_now("BRK/B"), broker.bars, check_freq=False)
    as_of = broker.bars.index[29].date()
    panel = load_cached_panel(tmp_path, "ibkr", symbols=["AAA", "NESTLÉ"], as_of=as_of)
    assert panel.symbols == ["AAA", "NESTLÉ"] and len(panel.dates) == 30  # nothing after the as-of date
    assert panel.close[-1, 0] == broker.bars["close"].iloc[29]


def test_reading_an_empty_or_ambiguous_cache_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds nothing"):
        open_cache_source(tmp_path)
    with pytest.raises(DataError, match=r"no cached 1d bars for source 'ibkr'.*joe run --once --broker ibkr"):
        open_cache_source(tmp_path, "ibkr")
    frame = FakeBroker(5).bars
    for source in ("ibkr", "capital"):
        BarCache(tmp_path / "cache" / "bars").save(source, "AAA", "1d", frame)
    with pytest.raises(DataError, match=r"several sources \(capital, ibkr\); name one"):
        open_cache_source(tmp_path)
    assert len(load_cached_panel(tmp_path, "capital").dates) == 5


# -- contract ids: run 2 sends no contract-details request for known instruments ------------------------

REQ_CONTRACT_DETAILS, REQ_HISTORICAL_DATA = 9, 20


async def _ibkr_run(sim: IBKRSimulator, data_dir: Path, symbols: list[str], client_id: int, **kw: object):  # type: ignore[no-untyped-def]
    md = IBKRMarketData("127.0.0.1", sim.port, client_id, "", "paper", NullAudit(), connect_timeout=5.0)
    await md.connect()
    try:
        cached = open_cached_history(md, data_dir, source_key="ibkr")
        if "ids" in kw:
            md.use_contract_ids(kw["ids"])  # type: ignore[arg-type]
        before = (
            len(sim.client_messages(REQ_CONTRACT_DETAILS)),
            len(sim.client_messages(REQ_HISTORICAL_DATA)),
        )
        got = await HistoryCollector(cached, concurrency=8).collect_symbols(symbols)
        details = len(sim.client_messages(REQ_CONTRACT_DETAILS)) - before[0]
        history = len(sim.client_messages(REQ_HISTORICAL_DATA)) - before[1]
        return got, details, history
    finally:
        await md.close()


@pytest.mark.timeout(300)
async def test_second_ibkr_run_sends_no_contract_details_for_known_instruments(tmp_path: Path) -> None:
    symbols = [f"C{i:02d}" for i in range(20)]
    sim = IBKRSimulator(server_version=178, seed=3, universe=tuple(symbols))
    await sim.start()
    try:
        got, details, history = await _ibkr_run(sim, tmp_path, symbols, 51)
        assert not got.errors and (details, history) == (20, 20)
        ids = contract_id_cache(tmp_path, "ibkr")
        assert all(ids.get(s) is not None for s in symbols)
        got, details, history = await _ibkr_run(sim, tmp_path, symbols, 52)  # a restart: new process state
        assert not got.errors and (details, history) == (0, 20)  # the conIds came from the cache
        # An id TWS rejects is forgotten and looked up once more (here TWS no longer knows the symbol).
        sim.unknown_symbols.add("C07")
        got, details, _ = await _ibkr_run(sim, tmp_path, symbols, 53)
        assert set(got.errors) == {"C07"} and details == 1
        assert contract_id_cache(tmp_path, "ibkr").get("C07") is None
        assert contract_id_cache(tmp_path, "ibkr").get("C08") is not None
        # Refresh rule: ids older than 7 days are looked up again.
        later = ContractIdCache(ids.path, now=lambda: datetime.now(UTC) + timedelta(days=8))
        _, details, _ = await _ibkr_run(sim, tmp_path, symbols, 54, ids=later)
        assert details == 20
    finally:
        await sim.stop()


def test_contract_id_cache_survives_restarts_and_distrusts_a_damaged_file(tmp_path: Path) -> None:
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    now = [t0]
    ids = ContractIdCache(tmp_path / "ids.json", now=lambda: now[0])
    ids.put("brk b", 72063691, primary_exchange="NYSE")
    again = ContractIdCache(tmp_path / "ids.json", now=lambda: now[0])
    assert again.get("BRK B") == {
        "con_id": 72063691,
        "primary_exchange": "NYSE",
        "fetched_at": t0.isoformat(),
    }
    assert again.get("BRK B", currency="EUR") is None  # the key is symbol, exchange and currency
    now[0] = t0 + timedelta(days=7, seconds=1)
    assert again.get("BRK B") is None  # too old: looked up again
    (tmp_path / "ids.json").write_text("{torn")
    assert ContractIdCache(tmp_path / "ids.json").get("BRK B") is None
