"""A host clock ahead of Capital.com's must not lose price history (review r18b F1).

The service refuses a `to` later than its own now (spec §6.5, `error.invalid.daterange`); the
client used to cap `to` at the host's clock, so a skew of a little over a second failed every
history request and the run traded on what was left of its universe.
"""

from __future__ import annotations

import datetime as dt

import pytest

from joe.brokers.capital import CapitalClient, CapitalMarketData, Credentials, Limits
from joe.brokers.capital.markets import MarketsApi
from joe.core.events import NullAudit
from joe.simulators.capital import CapitalSimulator

EPIC = "BTCUSD"  # trades every day: see _SkewedClock


class _SkewedClock:
    """The simulator's clock: the host's clock minus `behind` seconds (changeable mid-test).

    It follows the host's clock (the skew is the subject), so whatever weekday the suite runs on: the
    tests read BTCUSD, which trades every day (GOLD has no bars on a weekend, and its newest hour
    would then be Friday's)."""

    def __init__(self, behind: float) -> None:
        self.behind = behind

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.behind)


async def _open(clock: _SkewedClock) -> tuple[CapitalSimulator, CapitalClient]:
    sim = CapitalSimulator(seed=7, clock=clock)
    await sim.start()
    login = sim.login
    client = CapitalClient(
        sim.url,
        Credentials(login.api_key, login.identifier, login.password, False),
        audit=NullAudit(),
        limits=Limits(),
    )
    await client.open()
    return sim, client


@pytest.mark.parametrize("behind", [0.0, 1.5, 30.0, 3600.0, -5.0])
async def test_history_survives_a_host_clock_ahead_of_the_service(behind: float) -> None:
    clock = _SkewedClock(behind)
    sim, client = await _open(clock)
    try:
        md = CapitalMarketData(client, audit=NullAudit())
        daily = await md.history(EPIC, "1d")
        hourly = await md.history(EPIC, "1h")
        assert len(daily) > 300 and len(hourly) > 300
        # The newest bar is the service's current one: nothing at its end was lost to the skew.
        service_hour = clock().replace(minute=0, second=0, microsecond=0)
        assert hourly.index[-1].to_pydatetime() >= service_hour - dt.timedelta(hours=1)
    finally:
        await client.close()
        await sim.stop()


async def test_a_skew_that_grows_after_the_clock_was_read_is_recovered_once() -> None:
    clock = _SkewedClock(0.0)
    sim, client = await _open(clock)
    try:
        api = MarketsApi(client)
        await api.server_now()  # the offset is learnt with the clocks together...
        clock.behind = 20.0  # ...then the service's clock falls 20 s behind
        bars = await api.prices(EPIC, "MINUTE", count=50)
        assert bars, "the refused last page was asked again with the service's now"
        newest = dt.datetime.fromisoformat(bars[-1].snapshotTimeUTC).replace(tzinfo=dt.UTC)
        assert newest <= clock()
    finally:
        await client.close()
        await sim.stop()
