"""ReplaySource's latency figures (bench/w2_quote_path.py): a quote's latency runs from its arrival to
the end of the batch that carried it — its wait behind the other quotes of its batch and any backlog
included — never the batch's time divided by its size. A fake clock: each reading advances it a
little, the consumer advances it by its handling time per quote."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.execution.price_stream import PriceStream
from joe.execution.quotes import QuoteBatch
from joe.execution.replay_source import ReplaySource


class Clock:
    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        t = self.now
        self.now += self.step
        return t


class SlowConsumer:
    """Takes `per_quote` seconds of the fake clock per quote; records (first quote, size, end time)."""

    def __init__(self, clock: Clock, per_quote: float) -> None:
        self.clock, self.per_quote = clock, per_quote
        self.seen = 0
        self.batches: list[tuple[int, int, float]] = []

    def on_batch(self, batch: QuoteBatch) -> None:
        self.clock.now += self.per_quote * len(batch)
        self.batches.append((self.seen, len(batch), self.clock.now))
        self.seen += len(batch)


async def replay(n: int, *, chunk: int, rate: float | None, per_quote: float, step: float):
    clock = Clock(step)
    stream = PriceStream(max_batch=chunk)
    consumer = SlowConsumer(clock, per_quote)
    stream.consumers.append(consumer)
    src = ReplaySource(["X"], np.zeros(n, dtype=np.int32), np.arange(n), np.ones(n), np.ones(n) * 2,
                       chunk=chunk, record_latency=True, rate=rate, clock=clock)  # fmt: skip
    stream.add_source(src)
    await stream.start()
    await asyncio.wait_for(src.done.wait(), 10)
    await stream.stop()
    assert src.quote_latencies is not None
    return src, consumer


async def test_unpaced_every_quote_of_a_chunk_waits_for_the_whole_chunk() -> None:
    src, consumer = await replay(10, chunk=4, rate=None, per_quote=0.001, step=0.0)
    assert src.batch_sizes == [4, 4, 2] == [b[1] for b in consumer.batches]
    # the first quote of a 4-quote chunk is done only when all 4 are: 4 ms, not 4 ms / 4
    assert src.quote_latencies == pytest.approx([0.004] * 8 + [0.002] * 2)


async def test_paced_latency_counts_the_wait_in_the_batch_and_the_backlog() -> None:
    # 10 quotes/s offered, each takes 0.25 s: Joe falls behind and the backlog shows in the latency.
    src, _consumer = await replay(6, chunk=100, rate=10.0, per_quote=0.25, step=0.0)
    # t=0: quote 0 has arrived, handled by 0.25. t=0.25: quotes 1, 2 (arrived 0.1, 0.2), handled by
    # 0.75. t=0.75: quotes 3, 4, 5 (0.3 .. 0.5), handled by 1.5.
    assert src.batch_sizes == [1, 2, 3]
    assert src.quote_latencies == pytest.approx([0.25, 0.65, 0.55, 1.2, 1.1, 1.0])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    chunk=st.integers(1, 16),
    rate=st.floats(20.0, 1000.0),
    per_quote=st.floats(0.0, 0.05),
    step=st.floats(0.001, 0.05),
)
def test_paced_latency_is_arrival_to_the_end_of_its_batch(
    n: int, chunk: int, rate: float, per_quote: float, step: float
) -> None:
    src, consumer = asyncio.run(replay(n, chunk=chunk, rate=rate, per_quote=per_quote, step=step))
    assert src.batch_sizes == [b[1] for b in consumer.batches]
    assert sum(src.batch_sizes) == n and max(src.batch_sizes) <= chunk
    lat = src.quote_latencies
    assert lat is not None
    for first, size, end in consumer.batches:
        # the source reads the clock right after the batch: `end` (the reading itself adds `step` after)
        arrivals = np.arange(first, first + size) / rate
        assert lat[first : first + size] == pytest.approx(end - arrivals)
        # nothing is handed on before it arrived: the batch's last quote had arrived when it started
        assert arrivals[-1] <= end - per_quote * size + 1e-9
        assert (lat[first : first + size] >= per_quote * size - 1e-9).all()


def test_bad_rate_and_chunk_are_refused() -> None:
    one = np.ones(1)
    with pytest.raises(ValueError, match="rate must be > 0"):
        ReplaySource(["X"], np.zeros(1), one, one, one, rate=0)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        ReplaySource(["X"], np.zeros(1), one, one, one, chunk=0)


async def test_a_replay_whose_sink_fails_sets_done_and_keeps_the_error() -> None:
    # A replay stopped by an exception must not leave its caller waiting on `done` for ever (the W2
    # benchmark waits on it): `done` is set and `error` holds what stopped it.
    class Broken(PriceStream):
        def push_batch(self, batch: QuoteBatch) -> None:
            raise OSError("sink gone")

    stream = Broken(max_batch=4)
    src = ReplaySource(["X"], np.zeros(8, dtype=np.int32), np.arange(8), np.ones(8), np.ones(8) * 2, chunk=4)
    stream.add_source(src)
    await stream.start()
    await asyncio.wait_for(src.done.wait(), 10)
    assert isinstance(src.error, OSError)
    await stream.stop()


async def test_a_replay_started_unbound_sets_done_and_keeps_the_error() -> None:
    # Started before `bind` (no PriceStream to push into): the replay cannot run, and says so through
    # `done` and `error` like any other failure, rather than leaving a waiter on `done` for ever.
    src = ReplaySource(["X"], np.zeros(8, dtype=np.int32), np.arange(8), np.ones(8), np.ones(8) * 2, chunk=4)
    await src.start()
    await asyncio.wait_for(src.done.wait(), 10)
    assert isinstance(src.error, RuntimeError) and "bind" in str(src.error)
    await src.stop()


@pytest.mark.parametrize("rate", [None, 1e6])
async def test_the_replay_holds_the_loop_for_at_most_a_slice_not_for_one_chunk(rate: float | None) -> None:
    # Each 1-quote chunk takes 0.4 ms of the fake clock; with a 1 ms slice another task gets the loop after
    # every third chunk (the one that takes the slice past 1 ms), not after every chunk and never later.
    clock = Clock(0.0)
    stream = PriceStream(max_batch=1)
    consumer = SlowConsumer(clock, 0.0004)
    stream.consumers.append(consumer)
    n = 30
    src = ReplaySource(["X"], np.zeros(n, dtype=np.int32), np.arange(n), np.ones(n), np.ones(n) * 2,
                       chunk=1, rate=rate, clock=clock, slice_s=0.001)  # fmt: skip
    stream.add_source(src)
    seen: list[int] = []  # quotes handed on each time the other task ran

    async def other() -> None:
        while not src.done.is_set():
            seen.append(consumer.seen)
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await stream.start()
    await asyncio.wait_for(src.done.wait(), 10)
    await task
    await stream.stop()
    assert consumer.seen == n
    steps = np.diff([0, *seen]).tolist()
    assert max(steps) == 3 and all(s in (0, 3) for s in steps[:-1]), steps


def test_a_negative_slice_is_refused() -> None:
    one = np.ones(1)
    with pytest.raises(ValueError, match="slice_s must be >= 0"):
        ReplaySource(["X"], np.zeros(1), one, one, one, slice_s=-1)
