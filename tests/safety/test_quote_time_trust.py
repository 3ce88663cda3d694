"""A quote without a trustworthy time is not fresh (review r1119 finding 6).

* Capital.com market data without `updateTimeUTC` (or with garbage) is UNDATED: unknown age → stale_quote,
  never stamped with our own clock;
* a quote dated beyond `MAX_FUTURE_SKEW_S` in the future is refused (a negative age was "fresh" forever);
* the same for a streamed `timestamp` (ts_ms): 0, negative, out of range, or in the future;
* the REST snapshot's `updateTime` (the account's zone) is turned into UTC with the session's
  `timezoneOffset`, end to end at the Capital.com simulator on a frozen clock (its state is the truth).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.capital import CapitalClient, CapitalMarketData, Credentials, Limits
from joe.brokers.capital.mapping import quote_from_market, snapshot_utc
from joe.brokers.capital.models import MarketSummary
from joe.brokers.capital.streaming import StreamQuote
from joe.config.schema import RiskConfig
from joe.core.events import NullAudit
from joe.core.models import UNDATED, Quote
from joe.safety.live_book import live_book
from joe.safety.risk_gate import Denial, GateBook, ProposedOrder, RiskGate
from joe.safety.rules.order import MAX_FUTURE_SKEW_S, StaleQuote
from joe.simulators.capital import CapitalSimulator
from joe.simulators.common import SimClock

NOW = datetime(2026, 12, 1, 15, 0, 0, tzinfo=UTC)


def _judge(q: Quote, wall: datetime = NOW) -> Denial | None:
    daily = GateBook(now=NOW, equity=Decimal(100000), positions=[], quotes={})
    book = live_book(daily, now=NOW, quotes={q.symbol: q}, wall_now=wall)
    gate = RiskGate(RiskConfig(), NullAudit(), rules=[StaleQuote()])
    return gate.check(ProposedOrder("s", q.symbol, Decimal(1), q.mid), book)


def _summary(update: str | None) -> MarketSummary:
    return MarketSummary(epic="AAPL", instrumentName="Apple", instrumentType="SHARES",
                         marketStatus="TRADEABLE", bid=199.9, offer=200.1, updateTimeUTC=update)  # fmt: skip


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


@pytest.mark.parametrize("update", [None, "", "garbage", "2026-13-45T99:00:00"])
def test_a_capital_quote_without_a_readable_time_is_stale(update: str | None) -> None:
    q = quote_from_market(_summary(update))
    assert q is not None and q.ts == UNDATED
    denial = _judge(q)
    assert denial is not None and denial.rule == "stale_quote" and "no time" in denial.message


@given(ahead_s=st.floats(min_value=-4.9, max_value=6 * 3600))
def test_a_capital_quote_is_fresh_only_within_its_age_and_the_skew(ahead_s: float) -> None:
    q = quote_from_market(_summary(_utc(NOW + timedelta(seconds=ahead_s))))
    assert q is not None
    denial = _judge(q)
    ahead = (q.ts - NOW).total_seconds()  # after the millisecond rounding of the wire text
    if ahead > MAX_FUTURE_SKEW_S:
        assert denial is not None and "in the future" in denial.message
    else:
        assert denial is None  # within the skew, and younger than risk.max_quote_age_s (5 s)


@pytest.mark.parametrize("ts_ms", [0, -1, -(10**12), 10**20])
def test_a_streamed_quote_without_a_usable_time_is_stale(ts_ms: int) -> None:
    q = StreamQuote("AAPL", 199.9, 200.1, None, None, ts_ms).to_quote()
    assert q.ts == UNDATED
    assert (d := _judge(q)) is not None and "no time" in d.message


def test_a_streamed_quote_from_the_future_is_refused_and_a_current_one_is_not() -> None:
    ahead = StreamQuote("AAPL", 199.9, 200.1, None, None, int((NOW + timedelta(hours=6)).timestamp() * 1000))
    assert (d := _judge(ahead.to_quote())) is not None and "in the future" in d.message
    now = StreamQuote("AAPL", 199.9, 200.1, None, None, int((NOW - timedelta(seconds=1)).timestamp() * 1000))
    assert _judge(now.to_quote()) is None


@given(
    t=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    tz=st.integers(min_value=-12, max_value=14),
)
def test_snapshot_update_time_in_the_account_zone_becomes_utc(t: datetime, tz: int) -> None:
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)
    local = (t + timedelta(hours=tz)).isoformat(timespec="milliseconds")
    assert snapshot_utc(local, tz) == t.isoformat(timespec="milliseconds")


@pytest.mark.parametrize(("update", "tz"), [(None, 2), ("2026-12-01T17:00:00.000", None), ("x", 2),
                                            ("2026-12-01T17:00:00", True)])  # fmt: skip
def test_snapshot_without_time_or_zone_gives_no_time(update: str | None, tz: object) -> None:
    assert snapshot_utc(update, tz) is None


@pytest.mark.parametrize(("service_ahead_h", "fresh"), [(0.0, True), (6.0, False)])
async def test_rest_quotes_from_the_simulator_carry_the_services_time_in_utc(
    service_ahead_h: float, fresh: bool
) -> None:
    """The simulator's account zone is UTC+2: a snapshot time taken as UTC would be 2 h in the future."""
    service_now = NOW + timedelta(hours=service_ahead_h)
    sim = CapitalSimulator(seed=7, clock=SimClock.frozen(service_now))
    await sim.start()
    login = sim.login
    client = CapitalClient(sim.url, Credentials(login.api_key, login.identifier, login.password, False),
                           audit=NullAudit(), limits=Limits())  # fmt: skip
    try:
        await client.open()
        md = CapitalMarketData(client, audit=NullAudit())
        (q,) = (await md.quotes(["GOLD"])).values()
        snap = (await client.request("GET", "/markets/GOLD"))["snapshot"]
        assert q.ts == service_now.replace(microsecond=service_now.microsecond // 1000 * 1000)
        assert snap["updateTime"] != _utc(q.ts)  # the wire's text is in the account's zone
        assert (_judge(q, wall=NOW) is None) is fresh
    finally:
        await client.close()
        await sim.stop()
