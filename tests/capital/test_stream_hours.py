"""The Capital.com quote source reads each epic's own opening hours from `/markets` (simulator), so a
weekend-closed CFD is not stale on Saturday while a crypto CFD is."""

from __future__ import annotations

from datetime import UTC, datetime

from joe.brokers.capital import CapitalClient, CapitalStream
from joe.brokers.capital.endpoints import normalise_stream_url
from joe.core.events import NullAudit
from joe.data.calendars import MarketHours
from joe.data.opening_hours import OpeningHours
from joe.execution.price_stream import PriceStream
from joe.execution.quote_sources import CapitalQuoteSource
from joe.simulators.capital import CapitalSimulator

SATURDAY_NOON = int(datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp() * 1e9)
TUESDAY_NOON = int(datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp() * 1e9)


async def test_watched_epics_get_their_own_hours(sim: CapitalSimulator, client: CapitalClient) -> None:
    hours = MarketHours("24/5")
    cs = CapitalStream(client, normalise_stream_url(client.session.streaming_host), audit=NullAudit())
    ps = PriceStream(is_open=hours.is_open)
    ps.add_source(CapitalQuoteSource(cs, hours))
    await ps.start()
    try:
        await ps.watch(["GOLD", "BTCUSD"])
        assert isinstance(hours.calendar("GOLD"), OpeningHours)
        assert not hours.is_open("GOLD", SATURDAY_NOON) and hours.is_open("GOLD", TUESDAY_NOON)
        assert hours.is_open("BTCUSD", SATURDAY_NOON)  # crypto trades at weekends
        assert hours.calendar("EURUSD") is hours.default  # not watched: the default calendar
    finally:
        await ps.stop()
