"""The Capital.com simulator's clock moves forward over `POST /_sim/clock` (never back: 400), its daily
bars go on into the new session, and a position's stop keeps working across the move."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from joe.brokers.capital import CapitalMarketData
from joe.simulators.capital import CapitalSimulator

ACC = "12345678901234567"
TUESDAY = "2026-01-06T15:00:00+00:00"  # the frozen clock starts Monday 2026-01-05 12:00 UTC


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
async def test_the_clock_moves_forward_only_and_the_day_goes_on(sim: CapitalSimulator) -> None:
    ex, acc = sim.exchange, sim.exchange.accounts[ACC]
    sim.paused = True  # no price step between the scripted prices and the assertions
    monday = sim.clock()
    sim.set_mid("AAPL", 200.0)
    ref = ex.open_position(acc, {"epic": "AAPL", "direction": "BUY", "size": 1, "stopLevel": 190})
    assert ex.get_confirm(ref)["dealStatus"] == "ACCEPTED"
    async with httpx.AsyncClient(base_url=sim.url) as h:
        for body, why in [
            ({"to": "2026-01-05T11:00:00Z"}, "never goes back"),
            ({"advance_s": -5}, "must be >= 0"),
            ({}, "exactly one"),
        ]:
            r = await h.post("/_sim/clock", json=body)
            assert r.status_code == 400 and why in r.json()["error"], r.text
        assert sim.clock() == monday
        r = await h.post("/_sim/clock", json={"to": TUESDAY})
        assert r.status_code == 200 and r.json()["now"] == TUESDAY
        assert (await h.get("/_sim/clock")).json()["now"] == TUESDAY
    days = [b.start for b in sim.history.bars("AAPL", "DAY")]
    assert days[-2:] == [datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)]
    assert len(days) == len(set(days)) and days == sorted(days)
    monday_bar = sim.history.bars("AAPL", "DAY")[-2]
    assert float((monday_bar.bid.c + monday_bar.ask.c) / 2) == pytest.approx(200.0, rel=1e-3)
    # The position and its stop are still there on Tuesday; the price gaps through it: closed once.
    assert [p.bracket.stop_level for p in acc.positions if p.epic == "AAPL"] == [190]
    sim.set_mid("AAPL", 180.0)
    assert [p for p in acc.positions if p.epic == "AAPL"] == []


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
async def test_history_ends_at_the_brokers_clock_not_a_local_one_behind_it(
    sim: CapitalSimulator, market_data: CapitalMarketData
) -> None:
    """Before: `history()` without `end` anchored its window at the local wall clock, so a broker whose
    clock differs (the simulator moved to the next session; any skew) served a window that was not
    the newest `lookback_bars`: ahead of us its newest bars were cut off, behind us the window was
    short. Now the window ends at the service's clock (`GET /time`) and spans the lookback."""
    sim.paused = True
    sim.move_clock(datetime(2026, 1, 6, 15, 0, tzinfo=UTC))  # the next day for the simulator
    frame = await market_data.history("AAPL")
    assert frame.index[-1].to_pydatetime() == datetime(2026, 1, 6, tzinfo=UTC)
    assert len(frame) >= market_data.lookback_bars
