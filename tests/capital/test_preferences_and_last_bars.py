"""Second review of issue 18, minor points: `PUT /accounts/preferences` refuses what the real API
refuses (recorded: `{"leverages": {"INDICES": 600}}` → 400 `error.invalid.leverage.value`, spec §4.3)
and changes nothing then; and every epic's newest `GET /prices` bar, at every resolution, is the
bar that contains the current time (NATURALGAS was reported lagging the others).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.capital.bars import RESOLUTION_SECONDS, bar_start
from joe.simulators.capital.catalog import CATALOG
from joe.simulators.common import SimClock

from .conftest import SCALE
from .test_wire_shapes import Wire, open_wire

BAD: list[tuple[Any, str]] = [
    ({"leverages": {"INDICES": 600}}, "error.invalid.leverage.value"),  # the recorded case
    ({"leverages": {"X": 1}}, "error.invalid.leverage.value"),  # the reviewer's: no such group
    ({"leverages": {"SHARES": 7}}, "error.invalid.leverage.value"),  # not in SHARES' available
    ({"leverages": {"SHARES": 30}}, "error.invalid.leverage.value"),  # another group's value
    ({"leverages": {"SHARES": 0}}, "error.invalid.leverage.value"),
    ({"leverages": {"SHARES": -5}}, "error.invalid.leverage.value"),
    ({"leverages": {"SHARES": 2.5}}, "error.invalid.leverage.value"),
    ({"leverages": {"SHARES": "2"}}, "error.invalid.leverage.value"),
    ({"leverages": {"SHARES": True}}, "error.invalid.leverage.value"),
    ({"leverages": {"SHARES": None}}, "error.invalid.leverage.value"),
    ({"leverages": {"SHARES": 2, "NOPE": 2}}, "error.invalid.leverage.value"),  # all or nothing
    ({"leverages": [2]}, "error.invalid.leverage.value"),
    ({"leverages": "SHARES=2"}, "error.invalid.leverage.value"),
    ({"hedgingMode": "true"}, "error.invalid.hedgingMode"),
    ({"hedgingMode": 1, "leverages": {"SHARES": 2}}, "error.invalid.hedgingMode"),
    ([{"leverages": {"SHARES": 2}}], "error.invalid.request"),
]


@pytest.fixture
async def wire(sim: CapitalSimulator) -> AsyncIterator[Wire]:
    http, w = await open_wire(sim)
    yield w
    await http.aclose()


@pytest.mark.parametrize(("body", "code"), BAD)
async def test_bad_preferences_are_refused_and_change_nothing(wire: Wire, body: Any, code: str) -> None:
    before = await wire.json("GET", "/accounts/preferences")
    resp = await wire.call("PUT", "/accounts/preferences", json=body)
    assert (resp.status_code, resp.json()) == (400, {"errorCode": code})
    assert await wire.json("GET", "/accounts/preferences") == before


async def test_good_preferences_are_applied_within_each_groups_available(wire: Wire) -> None:
    prefs = await wire.json("GET", "/accounts/preferences")
    change = {g: v["available"][0] for g, v in prefs["leverages"].items()}
    assert all(len(v["available"]) > 1 for v in prefs["leverages"].values())
    assert (
        await wire.json("PUT", "/accounts/preferences", json={"leverages": change, "hedgingMode": True})
    ) == {"status": "SUCCESS"}
    after = await wire.json("GET", "/accounts/preferences")
    assert after["hedgingMode"] is True
    assert {g: v["current"] for g, v in after["leverages"].items()} == change


async def test_every_epics_last_bar_is_the_current_one_at_every_resolution() -> None:
    clock = SimClock.frozen(datetime(2026, 11, 30, 20, 55, 58, tzinfo=UTC))  # just before a minute turns
    sim = CapitalSimulator(seed=1, limits=SimLimits().scaled(SCALE), tick_s=0.02, clock=clock)
    await sim.start()
    http, wire = await open_wire(sim)
    try:
        stale: list[str] = []
        for i, spec in enumerate(CATALOG):  # the clock moves while the epics are read, as in the probe
            clock.advance(0.7 if i % 3 else 1.3)
            for res in RESOLUTION_SECONDS:
                bars = (await wire.json("GET", f"/prices/{spec.epic}", params={"resolution": res, "max": 3}))[
                    "prices"
                ]
                want = bar_start(clock(), res).strftime("%Y-%m-%dT%H:%M:%S")
                if bars[-1]["snapshotTimeUTC"] != want:
                    stale.append(f"{spec.epic} {res}: last {bars[-1]['snapshotTimeUTC']}, now's bar {want}")
        assert stale == []
    finally:
        await http.aclose()
        await sim.stop()
