"""Every protection form a working order accepts is shown the same way in every view (issue 18,
second review: a `stopAmount` / `profitAmount` was accepted but missing from `/workingorders` and the
confirm until the fill).

Table-driven: each form (level, distance, amount; guaranteed; trailing) of each leg, on a BUY and a
SELL limit, must appear in the create confirm, `GET /workingorders` (signed offsets from
`orderLevel`, as recorded: stop 17 / profit 23 on a BUY at 20 → `-3` / `3`), the amend confirm and
order after moving the level (the legs move with it), the `WORKING_ORDER` activity row, and once
filled, in `GET /positions`, the position's activity row and its edit. All views must name the same
levels: the order level plus the leg's offset (a distance, or the amount divided by the size, spec
§5.1), and after the fill, the fill level plus that offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from joe.simulators.capital import CapitalSimulator

from .test_wire_shapes import Wire, open_wire

SIZE = 2
STOP, PROFIT = D(20), D(30)  # offsets every form below asks for (amounts: offset x SIZE)
# name → (body fields for a BUY, stop asked?, profit asked?, guaranteed, trailing); a SELL mirrors
# the level forms around its own order level.
FORMS: list[tuple[str, dict[str, Any], bool, bool, bool, bool]] = [
    ("stopLevel", {"stopLevel": "L-stop"}, True, False, False, False),
    ("stopDistance", {"stopDistance": 20}, True, False, False, False),
    ("stopAmount", {"stopAmount": 40}, True, False, False, False),
    ("profitLevel", {"profitLevel": "L+profit"}, False, True, False, False),
    ("profitDistance", {"profitDistance": 30}, False, True, False, False),
    ("profitAmount", {"profitAmount": 60}, False, True, False, False),
    ("both amounts", {"stopAmount": 40, "profitAmount": 60}, True, True, False, False),
    ("level + amount", {"stopLevel": "L-stop", "profitAmount": 60}, True, True, False, False),
    ("guaranteed level", {"guaranteedStop": True, "stopLevel": "L-stop"}, True, False, True, False),
    ("guaranteed distance", {"guaranteedStop": True, "stopDistance": 20}, True, False, True, False),
    (
        "guaranteed amount",
        {"guaranteedStop": True, "stopAmount": 40, "profitDistance": 30},
        True,
        True,
        True,
        False,
    ),
    ("trailing", {"trailingStop": True, "stopDistance": 20}, True, False, False, True),
    (
        "trailing + profit amount",
        {"trailingStop": True, "stopDistance": 20, "profitAmount": 60},
        True,
        True,
        False,
        True,
    ),
]


@pytest.fixture
async def wire(sim: CapitalSimulator) -> AsyncIterator[Wire]:
    http, w = await open_wire(sim)
    yield w
    await http.aclose()


def body_for(fields: dict[str, Any], direction: str, level: D) -> dict[str, Any]:
    s = 1 if direction == "BUY" else -1
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if v == "L-stop":
            v = float(level - s * STOP)
        elif v == "L+profit":
            v = float(level + s * PROFIT)
        out[k] = v
    return out


def legs(view: dict[str, Any], ref: D | None = None) -> tuple[D | None, D | None, bool, bool]:
    """(stop level, profit level, guaranteed, trailing) a view shows; offsets are read from `ref`."""

    def num(k: str) -> D | None:
        return None if view.get(k) is None else D(repr(view[k]))

    if ref is not None:  # GET /workingorders: signed offsets from the order level
        stop, profit = num("stopDistance"), num("profitDistance")
        return (
            None if stop is None else ref + stop,
            None if profit is None else ref + profit,
            view.get("guaranteedStop") is True,
            view.get("trailingStop") is True,
        )
    return (
        num("stopLevel"),
        num("profitLevel"),
        view.get("guaranteedStop") is True,
        view.get("trailingStop") is True,
    )


async def activity(wire: Wire, deal_id: str, typ: str) -> dict[str, Any]:
    rows = (await wire.json("GET", "/history/activity", params={"detailed": "true", "dealId": deal_id}))[
        "activities"
    ]
    got = [r for r in rows if r["type"] == typ and r["dealId"] == deal_id]
    assert got, (deal_id, typ, rows)
    return dict(got[0]["details"])


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)  # prices move only when the test moves them
@pytest.mark.parametrize("direction", ["BUY", "SELL"])
async def test_every_protection_form_in_every_view(sim: CapitalSimulator, wire: Wire, direction: str) -> None:
    failures: list[str] = []
    for form in FORMS:
        failures += await views_of(sim, wire, direction, form)
    assert not failures, "\n".join(failures)


async def views_of(
    sim: CapitalSimulator,
    wire: Wire,
    direction: str,
    form: tuple[str, dict[str, Any], bool, bool, bool, bool],
) -> list[str]:
    """What each view shows of one form, against what it should (as "view shows X, want Y")."""
    name, fields, has_stop, has_profit, guaranteed, trailing = form
    s = 1 if direction == "BUY" else -1
    failures: list[str] = []

    def check(view: str, got: tuple[D | None, D | None, bool, bool], at: D) -> None:
        want = (
            at - s * STOP if has_stop else None,
            at + s * PROFIT if has_profit else None,
            guaranteed,
            trailing,
        )
        if got != want:
            failures.append(f"{direction} {name}: {view} shows {got}, want {want}")

    sim.set_mid("GOLD", 2000.0)
    level = D(2000) - s * 10  # a limit 10 away on its own side of the market
    order = {"epic": "GOLD", "direction": direction, "size": SIZE, "level": float(level), "type": "LIMIT"}
    ref = (await wire.json("POST", "/workingorders", json=order | body_for(fields, direction, level)))[
        "dealReference"
    ]
    confirm = await wire.json("GET", f"/confirms/{ref}")
    deal = confirm["affectedDeals"][0]["dealId"]
    check("create confirm", legs(confirm), level)
    rows = (await wire.json("GET", "/workingorders"))["workingOrders"]
    data = next(w["workingOrderData"] for w in rows if w["workingOrderData"]["dealId"] == deal)
    check("GET /workingorders", legs(data, D(repr(data["orderLevel"]))), level)
    check("WORKING_ORDER activity", legs(await activity(wire, deal, "WORKING_ORDER")), level)

    moved = level - s * 5  # the legs are offsets: they move with the level
    amend = (await wire.json("PUT", f"/workingorders/{deal}", json={"level": float(moved)}))["dealReference"]
    check("amend confirm", legs(await wire.json("GET", f"/confirms/{amend}")), moved)
    rows = (await wire.json("GET", "/workingorders"))["workingOrders"]
    data = next(w["workingOrderData"] for w in rows if w["workingOrderData"]["dealId"] == deal)
    check("GET /workingorders after amend", legs(data, D(repr(data["orderLevel"]))), moved)

    sim.set_mid("GOLD", float(moved - s * 3))  # through the limit: it fills
    positions = (await wire.json("GET", "/positions"))["positions"]
    pos = [p["position"] for p in positions if p["position"].get("workingOrderId") == deal]
    if not pos:
        return [*failures, f"{direction} {name}: no position from order {deal}"]
    fill = D(repr(pos[0]["level"]))
    check("GET /positions", legs(pos[0]), fill)
    if trailing and D(repr(pos[0].get("stopDistance", 0))) != STOP:
        failures.append(f"{direction} {name}: trailing position stopDistance {pos[0].get('stopDistance')}")
    check("POSITION activity", legs(await activity(wire, pos[0]["dealId"], "POSITION")), fill)
    await wire.json("DELETE", f"/positions/{pos[0]['dealId']}")
    return failures


async def position_views_of(
    sim: CapitalSimulator,
    wire: Wire,
    direction: str,
    form: tuple[str, dict[str, Any], bool, bool, bool, bool],
) -> list[str]:
    """The same form on a market deal (`POST /positions`) and on its edit (`PUT /positions`): the
    confirm, the position and the activity rows name the legs around the deal's level."""
    name, fields, has_stop, has_profit, guaranteed, trailing = form
    s = 1 if direction == "BUY" else -1
    failures: list[str] = []

    def check(view: str, got: tuple[D | None, D | None, bool, bool], at: D) -> None:
        want = (
            at - s * STOP if has_stop else None,
            at + s * PROFIT if has_profit else None,
            guaranteed,
            trailing,
        )
        if got != want:
            failures.append(f"{direction} {name}: {view} shows {got}, want {want}")

    sim.set_mid("GOLD", 2000.0)
    quote = (await wire.json("GET", "/markets/GOLD"))["snapshot"]
    at = D(repr(quote["offer"] if direction == "BUY" else quote["bid"]))  # where a market deal fills
    deal_body = {"epic": "GOLD", "direction": direction, "size": SIZE} | body_for(fields, direction, at)
    ref = (await wire.json("POST", "/positions", json=deal_body))["dealReference"]
    confirm = await wire.json("GET", f"/confirms/{ref}")
    if confirm.get("dealStatus") != "ACCEPTED":
        return [f"{direction} {name}: POST /positions {confirm.get('reason')}"]
    deal = confirm["affectedDeals"][0]["dealId"]
    fill = D(repr(confirm["level"]))
    check("POST /positions confirm", legs(confirm), fill)
    rows = (await wire.json("GET", "/positions"))["positions"]
    pos = next(p["position"] for p in rows if p["position"]["dealId"] == deal)
    check("GET /positions", legs(pos), fill)
    check("POSITION activity", legs(await activity(wire, deal, "POSITION")), fill)
    # PUT /positions with the same form, around the current touch the simulator measures from
    quote = (await wire.json("GET", "/markets/GOLD"))["snapshot"]
    touch = D(repr(quote["bid"] if direction == "BUY" else quote["offer"]))
    edit = (await wire.json("PUT", f"/positions/{deal}", json=body_for(fields, direction, touch)))[
        "dealReference"
    ]
    check("PUT /positions confirm", legs(await wire.json("GET", f"/confirms/{edit}")), touch)
    rows = (await wire.json("GET", "/positions"))["positions"]
    pos = next(p["position"] for p in rows if p["position"]["dealId"] == deal)
    check("GET /positions after PUT", legs(pos), touch)
    check("EDIT_STOP_AND_LIMIT activity", legs(await activity(wire, deal, "EDIT_STOP_AND_LIMIT")), touch)
    await wire.json("DELETE", f"/positions/{deal}")
    return failures


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
@pytest.mark.parametrize("direction", ["BUY", "SELL"])
async def test_every_protection_form_on_a_deal_and_its_edit(
    sim: CapitalSimulator, wire: Wire, direction: str
) -> None:
    failures: list[str] = []
    for form in FORMS:
        failures += await position_views_of(sim, wire, direction, form)
    assert not failures, "\n".join(failures)
