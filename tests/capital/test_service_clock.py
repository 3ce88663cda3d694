"""`MarketsApi.service_now_latest`: Capital.com's now for ageing the quotes it dates (`updateTimeUTC`) under a
rehearsal clock (joe.safety.live_book.venue_now). A slow `GET /time` must make quotes look older, never
fresher (fail closed): the bound is `server - before`, read against this host's clock after the answer.
Hostile review of bbea66b: reading the host clock before the request and taking `server - after` put the
venue's now a whole round trip (twice, for a stamp taken late) behind, so a 20 s old quote passed a 5 s
limit behind an 8 s answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import joe.brokers.capital.markets as markets_mod
from joe.brokers.capital import CapitalError
from joe.brokers.capital.markets import MarketsApi

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


class _Host:
    """This host's clock, moved only by the fake request (deterministic: no wall clock)."""

    now = T0


class _HostDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return _Host.now


class _SlowTime:
    """A `CapitalClient` whose `GET /time` takes `rtt` seconds and stamps its answer `stamp_at` of the way
    through (0: on arrival, 1: just before answering), on a venue clock `offset` from this host's."""

    def __init__(self, offset: timedelta, rtt: float, stamp_at: float, fail: bool = False) -> None:
        self.offset, self.rtt, self.stamp_at, self.fail = offset, rtt, stamp_at, fail

    async def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        assert (method, path) == ("GET", "/time")
        if self.fail:
            raise CapitalError("503 from /time")
        stamped = _Host.now + timedelta(seconds=self.rtt * self.stamp_at) + self.offset
        _Host.now += timedelta(seconds=self.rtt)
        return {"serverTime": int(stamped.timestamp() * 1000)}  # whole ms, floored, as the service sends


@settings(max_examples=200, deadline=None)
@given(
    offset_s=st.floats(-400_000, 400_000, allow_nan=False),
    rtt=st.floats(0, 30, allow_nan=False),
    stamp_at=st.floats(0, 1),
)
def test_the_venue_now_is_never_behind_the_venue_clock(offset_s: float, rtt: float, stamp_at: float) -> None:
    import asyncio

    offset = timedelta(seconds=offset_s)
    _Host.now = T0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(markets_mod, "datetime", _HostDatetime)
        got = asyncio.run(MarketsApi(_SlowTime(offset, rtt, stamp_at)).service_now_latest())  # type: ignore[arg-type]
    truth = _Host.now + offset  # the venue's clock when the answer is in
    assert got is not None
    assert got >= truth  # quotes can only look older: before, a round trip behind
    assert got <= truth + timedelta(seconds=rtt, milliseconds=2)  # and no more than the round trip ahead


async def test_an_unreadable_venue_clock_is_none_and_leaves_the_cached_offset() -> None:
    api = MarketsApi(_SlowTime(timedelta(0), 0.0, 0.0, fail=True))  # type: ignore[arg-type]
    api._clock_offset = timedelta(seconds=3)  # learnt earlier by server_now
    assert await api.service_now_latest() is None  # the wall clock judges (venue_now -> None)
    assert api._clock_offset == timedelta(seconds=3)
