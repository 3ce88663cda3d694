"""PriceStream without a broker: batching per loop iteration, consumer isolation, staleness rules."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.core.events import NullAudit
from joe.execution.price_stream import PriceStream
from joe.execution.quote_sources import ReplaySource
from joe.execution.quotes import QuoteBatch


class Source:
    name = "fake"

    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.stream: PriceStream | None = None

    def bind(self, stream: PriceStream) -> None:
        self.stream = stream

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def subscribe(self, symbols: Sequence[str]) -> None:
        self.subscribed += symbols

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        self.subscribed = [s for s in self.subscribed if s not in symbols]


class Sink:
    def __init__(self) -> None:
        self.batches: list[QuoteBatch] = []

    def on_batch(self, batch: QuoteBatch) -> None:
        self.batches.append(batch)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_quotes_of_one_loop_iteration_arrive_as_one_batch() -> None:
    s = PriceStream(max_batch=3, clock_ns=lambda: 7)
    sink = Sink()
    s.consumers.append(sink)
    for i in range(5):
        s.push("AAA" if i % 2 else "BBB", 1.0 + i, 1.1 + i)
    assert [len(b) for b in sink.batches] == [3]  # max_batch reached: handed on at once
    await asyncio.sleep(0)
    assert [len(b) for b in sink.batches] == [3, 2]
    b = sink.batches[1]
    assert [s.instruments.symbol(i) for i in b.inst.tolist()] == ["AAA", "BBB"]
    assert b.ts.tolist() == [7, 7] and b.bid.tolist() == [4.0, 5.0]
    assert s.quotes == 5 and s.batches == 2


async def test_a_failing_consumer_does_not_starve_the_others() -> None:
    class Bad:
        def on_batch(self, batch: QuoteBatch) -> None:
            raise RuntimeError("bug")

    audit = NullAudit()
    s = PriceStream(audit=audit)
    sink = Sink()
    s.consumers += [Bad(), sink]
    s.push("AAA", 1.0, 1.1)
    s.flush()
    assert len(sink.batches) == 1 and s.consumer_errors == 1
    assert audit.records[0][0] == "stream.consumer_error"


async def test_stale_only_while_the_market_is_open_and_alerts_only_when_held() -> None:
    clock = Clock()
    open_ = {"AAA": True, "BBB": True, "CCC": False}
    alerts: list[str] = []
    audit = NullAudit()
    s = PriceStream(stale_after_s=10, monotonic=clock, is_open=lambda sym, now: open_[sym], audit=audit,
                    on_alert=alerts.append)  # fmt: skip
    s.add_source(Source())
    await s.watch(["AAA", "CCC"], held=True)
    await s.watch(["BBB"])
    s.push("AAA", 1.0, 1.1)
    s.push("BBB", 1.0, 1.1)
    s.flush()
    clock.t += 10
    s.check_staleness()
    assert s.stale == set()
    clock.t += 0.5
    s.check_staleness()
    assert s.stale == {"AAA", "BBB"}  # CCC is silent too, but its market is closed
    assert not s.entries_allowed("AAA") and not s.entries_allowed("BBB") and s.entries_allowed("CCC")
    assert not s.entries_allowed("ZZZ")  # not streamed: no entries either
    assert len(alerts) == 1 and "AAA" in alerts[0]  # BBB is only watched, not held
    s.push("AAA", 1.0, 1.1)
    s.flush()
    assert s.stale == {"BBB"} and s.entries_allowed("AAA")
    assert "quoting again" in alerts[-1]
    open_["CCC"] = True  # the market opens: CCC's clock starts at the open, not at its last quote
    clock.t += 5
    s.check_staleness()
    assert "CCC" not in s.stale
    clock.t += 10
    s.check_staleness()
    assert "CCC" in s.stale
    kinds = [r[0] for r in audit.records]
    assert kinds.count("stream.stale") == 4 and kinds.count("stream.fresh") == 1  # AAA went silent again


async def test_watch_subscribes_once_and_needs_a_known_source() -> None:
    s = PriceStream()
    src = Source()
    s.add_source(src)
    await s.watch(["AAA", "BBB"])
    await s.watch(["AAA"], held=True)
    assert src.subscribed == ["AAA", "BBB"] and s.held == {"AAA"}
    with pytest.raises(ValueError, match="no quote source named 'ibkr'"):
        await s.watch(["X"], source="ibkr")
    with pytest.raises(ValueError, match="already attached"):
        s.add_source(Source())
    await s.unwatch(["AAA"])
    assert src.subscribed == ["BBB"] and "AAA" not in s.held


async def test_replay_source_maps_its_instruments_and_pushes_everything() -> None:
    s = PriceStream()
    s.instruments.id("OTHER")  # ids in the stream differ from the file's
    sink = Sink()
    s.consumers.append(sink)
    src = ReplaySource(
        ["X", "Y"], np.array([1, 0, 1]), np.array([1, 2, 3]), np.ones(3), np.ones(3) * 2, chunk=2
    )
    s.add_source(src)
    await s.start()
    await asyncio.wait_for(src.done.wait(), 5)
    await s.stop()
    assert [len(b) for b in sink.batches] == [2, 1]
    syms = [s.instruments.symbol(i) for b in sink.batches for i in b.inst.tolist()]
    assert syms == ["Y", "X", "Y"]
    with pytest.raises(ValueError, match="only 1 symbols"):
        ReplaySource(["X"], np.array([1]), np.array([1]), np.ones(1), np.ones(1))


async def test_a_stale_instrument_is_subscribed_again_with_doubling_gaps_until_it_quotes() -> None:
    """A line the broker dropped silently (the connection lives): the stream subscribes it again."""

    class Logged(Source):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[str, tuple[str, ...]]] = []

        async def subscribe(self, symbols: Sequence[str]) -> None:
            self.calls.append(("sub", tuple(symbols)))
            await super().subscribe(symbols)

        async def unsubscribe(self, symbols: Sequence[str]) -> None:
            self.calls.append(("unsub", tuple(symbols)))
            await super().unsubscribe(symbols)

    clock = Clock()
    audit = NullAudit()
    s = PriceStream(stale_after_s=10, monotonic=clock, audit=audit)
    src = Logged()
    s.add_source(src)
    await s.watch(["AAA", "BBB"])
    src.calls.clear()
    s.push("AAA", 1.0, 1.1)
    s.push("BBB", 1.0, 1.1)
    s.flush()
    assert await s.resubscribe_stale() == []  # nothing stale, nothing touched
    clock.t += 11
    s.push("BBB", 1.0, 1.1)  # BBB keeps quoting, AAA went silent
    s.flush()
    s.check_staleness()
    assert s.stale == {"AAA"}
    assert await s.resubscribe_stale() == ["AAA"]
    assert src.calls == [("unsub", ("AAA",)), ("sub", ("AAA",))] and "AAA" in src.subscribed
    assert await s.resubscribe_stale() == []  # not again before the gap
    gaps = []
    for _ in range(7):  # still silent: again after 10 s, then 20, 40, ... capped
        before = clock.t
        while not await s.resubscribe_stale():
            clock.t += 1
        gaps.append(clock.t - before)
    assert gaps == [10, 20, 40, 80, 160, 300, 300]
    s.push("AAA", 1.0, 1.1)  # it quotes again: fresh, no more resubscriptions
    s.flush()
    assert s.stale == set()
    clock.t += 1000
    s.push("AAA", 1.0, 1.1)
    s.push("BBB", 1.0, 1.1)
    s.flush()
    s.check_staleness()
    assert await s.resubscribe_stale() == []
    kinds = [r[0] for r in audit.records]
    assert kinds.count("stream.resubscribed") == 8 and s.watched == {"AAA": "fake", "BBB": "fake"}


async def test_a_flapping_instrument_keeps_its_resubscription_gap() -> None:
    """A resubscription answered by one snapshot and then silence again must not churn every
    `stale_after_s`: the gap keeps doubling; it resets only after quoting for a whole gap."""
    clock = Clock()
    s = PriceStream(stale_after_s=10, monotonic=clock)
    src = Source()
    s.add_source(src)
    await s.watch(["AAA"])
    at: list[float] = []
    for _ in range(60):  # 60 s a step: AAA answers each resubscription with one quote, then nothing
        clock.t += 1
        s.check_staleness()
        if await s.resubscribe_stale():
            at.append(clock.t)
            s.push("AAA", 1.0, 1.1)  # the snapshot
            s.flush()
    assert [b - a for a, b in itertools.pairwise(at)] == [11, 20]  # then 40: past the 60 s
    for _ in range(200):  # now it quotes steadily: the backoff is forgotten
        clock.t += 1
        s.push("AAA", 1.0, 1.1)
        s.flush()
        s.check_staleness()
        await s.resubscribe_stale()
    clock.t += 11
    s.check_staleness()
    before = clock.t
    assert await s.resubscribe_stale() == ["AAA"] and clock.t == before  # at once again, gap reset


async def test_source_stats_give_each_broker_its_quotes_newest_age_and_stale_count() -> None:
    class Other(Source):
        name = "other"

    clock = Clock()
    s = PriceStream(stale_after_s=10, monotonic=clock)
    a, b = Source(), Other()
    s.add_source(a)
    s.add_source(b)
    assert s.source_stats() == {
        "fake": {"quotes": 0, "quote_age_s": None, "watched": 0, "stale": 0},
        "other": {"quotes": 0, "quote_age_s": None, "watched": 0, "stale": 0},
    }
    await s.watch(["AAA", "BBB"], source="fake")
    await s.watch(["CCC"], source="other")
    for sym in ("AAA", "AAA", "BBB"):  # one batch with a repeated instrument: each quote counts
        s.push(sym, 1.0, 1.1)
    s.flush()
    clock.t += 4
    s.push("CCC", 2.0, 2.1)
    s.flush()
    clock.t += 7
    stats = s.source_stats()
    assert stats["fake"] == {"quotes": 3, "quote_age_s": 11.0, "watched": 2, "stale": 0}
    assert stats["other"] == {"quotes": 1, "quote_age_s": 7.0, "watched": 1, "stale": 0}
    s.check_staleness()  # 11 s > 10 s: fake's two go stale, other's one is fresh
    assert s.source_stats()["fake"]["stale"] == 2 and s.source_stats()["other"]["stale"] == 0


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.tuples(st.lists(st.integers(0, 39), min_size=1, max_size=80), st.floats(-1.0, 3.0)),
        min_size=1,
        max_size=120,
    ),
    peek=st.integers(0, 119),
)
def test_last_seen_and_counts_are_those_of_every_batch_booked_at_once(
    batches: list[tuple[list[int], float]], peek: int
) -> None:
    """The stream books each batch's instruments into its per-instrument figures as it hands the batch on
    (a plain loop up to 32 quotes, a count per instrument above; ids beyond the figures' length grow
    them): whenever they are read (here also once midway), they are what booking every batch at its
    arrival gives - the last batch's time per instrument, each quote counted. The injected clock also
    steps back at times: the last batch still decides, not the latest time."""
    clock = Clock()
    s = PriceStream(stale_after_s=1e9, monotonic=clock)
    syms = [f"S{i}" for i in range(40)]
    for sym in syms:
        s.instruments.id(sym)
    seen: dict[str, float] = {}
    counts = dict.fromkeys(syms, 0)
    for k, (ids, dt) in enumerate(batches):
        clock.t += dt
        s.push_batch(QuoteBatch.of(ids, [0] * len(ids), [1.0] * len(ids), [1.1] * len(ids)))
        for i in ids:
            seen[syms[i]] = clock.t
            counts[syms[i]] += 1
        if k == peek:
            assert {x: s.last_seen(x) for x in syms} == {x: seen.get(x) for x in syms}
    assert {x: s.last_seen(x) for x in syms} == {x: seen.get(x) for x in syms}
    s.sources["fake"] = Source()
    s.watched = dict.fromkeys(syms, "fake")
    assert s.source_stats()["fake"]["quotes"] == sum(counts.values()) == s.quotes


@pytest.mark.parametrize("n", [1, 32, 33, 500])
def test_a_batch_books_every_quote_of_it_small_or_large(n: int) -> None:
    # Up to 32 quotes a batch is booked in a loop, above by a count per instrument: both count every
    # quote, repeats included, and stamp each instrument with the batch's time; an id past the figures'
    # length grows them.
    clock = Clock()
    s = PriceStream(stale_after_s=1e9, monotonic=clock)
    syms = [f"S{i}" for i in range(40)]
    for sym in syms:
        s.instruments.id(sym)
    ids = [(7 * k) % 40 if k % 3 else 39 for k in range(n)]
    s.push_batch(QuoteBatch.of(ids, [0] * n, [1.0] * n, [1.1] * n))
    s.sources["fake"] = Source()
    s.watched = {"S39": "fake"}
    assert s.source_stats()["fake"]["quotes"] == ids.count(39)
    assert {x: s.last_seen(x) for x in syms} == {x: (1000.0 if int(x[1:]) in ids else None) for x in syms}


def test_last_seen_is_the_last_batch_when_the_clock_went_back_inside_one_booking() -> None:
    # Two batches booked together, the clock stepping back between them: the next booking must not take
    # the per-instrument maximum (A's 1000 is later than anything since), the last batch decides.
    clock = Clock()
    s = PriceStream(stale_after_s=1e9, monotonic=clock)
    a, b = s.instruments.id("A"), s.instruments.id("B")
    s.push_batch(QuoteBatch.of([a], [0], [1.0], [1.1]))  # at 1000
    clock.t = 990.0
    s.push_batch(QuoteBatch.of([b], [0], [1.0], [1.1]))
    assert (s.last_seen("A"), s.last_seen("B")) == (1000.0, 990.0)  # both booked at once
    clock.t = 995.0
    s.push_batch(QuoteBatch.of([a], [0], [1.0], [1.1]))
    assert s.last_seen("A") == 995.0


def test_last_seen_is_the_last_batch_even_when_the_clock_went_back_between_bookings() -> None:
    clock = Clock()
    s = PriceStream(stale_after_s=1e9, monotonic=clock)
    s.push_batch(QuoteBatch.of([s.instruments.id("A")], [0], [1.0], [1.1]))
    assert s.last_seen("A") == 1000.0  # booked now
    clock.t = 990.0  # an injected clock stepped back
    s.push_batch(QuoteBatch.of([0, 0], [0, 0], [1.0, 1.0], [1.1, 1.1]))
    assert s.last_seen("A") == 990.0
    clock.t = 995.0
    s.push_batch(QuoteBatch.of([0], [0], [1.0], [1.1]))
    assert s.last_seen("A") == 995.0
