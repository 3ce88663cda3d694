"""No simulator answer carries an off-grid price (issue 18, review point 1).

An order `level` / `stopLevel` / `profitLevel` / distance off the instrument's tick grid is refused
with `error.invalid.<field>` (the simulator's documented choice, see `rules.on_tick`), and whatever
random orders do, every price in every answer (confirms, positions, working orders, activity,
market summaries and details, price history) is a multiple of its instrument's tick. A working
order's `stopDistance` / `profitDistance` is the recorded signed offset from `orderLevel` (the
recorded BUY limit has `stopDistance: -3, profitDistance: 3`): on the grid, and its sign puts the
leg on the protective side (a BUY's stop below, its target above; a SELL's the other way).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.simulators.capital import CapitalSimulator
from joe.simulators.capital.catalog import BY_EPIC
from joe.simulators.capital.exchange import Exchange
from joe.simulators.capital.rules import ApiError
from joe.simulators.capital.views import (
    HistoryStore,
    market_details,
    market_summary,
    order_json,
    position_json,
)
from joe.simulators.common import SimClock

from .test_wire_shapes import open_wire

PRICE_KEYS = frozenset(
    {"level", "stopLevel", "profitLevel", "orderLevel", "bid", "offer", "high", "low", "netChange"}
)
DISTANCE_KEYS = frozenset({"stopDistance", "profitDistance"})
BAR_KEYS = frozenset({"openPrice", "closePrice", "highPrice", "lowPrice"})
EPICS = ["GOLD", "SILVER", "EURUSD", "US500", "COPPER", "USDJPY"]


def prices_in(obj: Any, epic: str | None = None) -> Iterator[tuple[str, str, Any]]:
    """(epic, key, value) of every price or distance field in a JSON answer, at any depth."""
    if isinstance(obj, list):
        for x in obj:
            yield from prices_in(x, epic)
        return
    if not isinstance(obj, dict):
        return
    epic = obj.get("epic", epic) if isinstance(obj.get("epic"), str) else epic
    sign = {"BUY": 1, "SELL": -1}.get(obj.get("direction", ""), 0)
    for k, v in obj.items():
        if k in PRICE_KEYS and v is not None and epic is not None:
            yield epic, k, v
        elif k in DISTANCE_KEYS and v is not None and epic is not None:
            # the leg's side as the recording signs it: stop = -sign, profit = +sign
            yield epic, f"{k}:{sign * (-1 if k == 'stopDistance' else 1)}", v
        elif k in BAR_KEYS and isinstance(v, dict) and epic is not None:
            for side, x in v.items():
                yield epic, f"{k}.{side}", x
        else:
            yield from prices_in(v, epic)


def assert_on_grid(answer: Any, epic: str | None = None) -> int:
    n = 0
    for e, key, value in prices_in(answer, epic):
        tick = BY_EPIC[e].tick
        assert isinstance(value, int | float) and not isinstance(value, bool), (e, key, value)
        assert Decimal(repr(value)) % tick == 0, f"{e} {key}={value!r} is off the {tick} grid"
        if ":" in key:
            want = int(key.split(":")[1])
            assert want != 0 and value * want > 0, f"{e} {key}={value!r} is on the wrong side"
        n += 1
    return n


def test_the_walker_finds_off_grid_and_negative_values() -> None:
    """The checker itself fails on the reviewer's examples (so the property cannot pass vacuously)."""
    for bad in (
        {"epic": "GOLD", "level": 1900.123456},
        {"workingOrderData": {"epic": "GOLD", "orderLevel": 1900.12, "stopDistance": -5.001}},
        {
            "workingOrderData": {
                "epic": "GOLD",
                "direction": "SELL",
                "orderLevel": 1900.1,
                "stopDistance": -5.0,
            }
        },
        {"prices": [{"openPrice": {"bid": 24.464499999999997, "ask": 24.47}}]},
    ):
        with pytest.raises(AssertionError):
            assert_on_grid(bad, "SILVER" if "prices" in bad else None)


def exchange() -> tuple[Exchange, HistoryStore]:
    ex = Exchange(5, now=SimClock.frozen(datetime(2026, 11, 30, 15, 39, 5, tzinfo=UTC)))
    return ex, HistoryStore(ex)


def every_answer(ex: Exchange, hist: HistoryStore, epics: set[str]) -> list[tuple[Any, str | None]]:
    acc = next(a for a in ex.accounts.values() if a.preferred)
    out: list[tuple[Any, str | None]] = [(c, None) for c in ex.confirms.values()]
    out += [(position_json(ex, p, acc.currency, hist), None) for p in acc.positions]
    out += [(order_json(ex, o, acc.currency, hist), None) for o in acc.orders]
    out += [(row, None) for row in acc.activity]
    for epic in epics:
        out.append((market_summary(ex, epic, hist), None))
        out.append((market_details(ex, epic, hist), epic))
        out.append((hist.prices(epic, {"max": "30"}), epic))
    return out


order_st = st.fixed_dictionaries(
    {
        "epic": st.sampled_from(EPICS),
        "direction": st.sampled_from(["BUY", "SELL"]),
        "kind": st.sampled_from(["MARKET", "LIMIT", "STOP"]),
        "ticks_away": st.integers(min_value=-3000, max_value=3000),
        "stop": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(["Level", "Distance", "Amount"]), st.integers(1, 4000)),
        ),
        "profit": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(["Level", "Distance", "Amount"]), st.integers(1, 4000)),
        ),
        "trailing": st.booleans(),
        "noise": st.sampled_from([None, 0.123456, 0.5, 1e-7]),  # a fraction of a tick (None: none)
        "noisy_field": st.sampled_from(
            ["level", "stopLevel", "profitLevel", "stopDistance", "profitDistance"]
        ),
        "steps": st.integers(0, 30),
        "amend": st.one_of(st.none(), st.integers(1, 3000)),
    }
)


def body_for(ex: Exchange, o: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A request body built from random tick counts; returns it and the field made off-grid (if any)."""
    spec = BY_EPIC[o["epic"]]
    bid, ask = ex.quote(o["epic"])
    sign = 1 if o["direction"] == "BUY" else -1
    ref = ask if o["direction"] == "BUY" else bid
    level = ref + o["ticks_away"] * spec.tick
    body: dict[str, Any] = {"epic": o["epic"], "direction": o["direction"], "size": float(spec.min_size)}
    if o["kind"] != "MARKET":
        body.update(type=o["kind"], level=float(level))
        ref = level
    for leg, side in (("stop", -1), ("profit", 1)):
        if o[leg] is None:
            continue
        how, n = o[leg]
        dist = n * spec.tick
        if how == "Level":
            body[leg + "Level"] = float(ref + side * sign * dist)
        elif how == "Distance":
            body[leg + "Distance"] = float(dist)
        else:
            body[leg + "Amount"] = float(dist * spec.min_size * Decimal("1.37"))
    if o["trailing"] and "stopDistance" in body:
        body["trailingStop"] = True
    noisy = None
    field = o["noisy_field"]
    if o["noise"] is not None and field in body:
        body[field] = float(Decimal(repr(body[field])) + Decimal(repr(o["noise"])) * spec.tick)
        noisy = field
    return body, noisy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders=st.lists(order_st, min_size=1, max_size=6))
def test_no_answer_carries_an_off_grid_price_or_a_negative_distance(orders: list[dict[str, Any]]) -> None:
    ex, hist = exchange()
    acc = next(a for a in ex.accounts.values() if a.preferred)
    for o in orders:
        body, noisy = body_for(ex, o)
        try:
            if o["kind"] == "MARKET":
                ex.open_position(acc, body)
            else:
                ex.create_order(acc, body)
        except ApiError as exc:
            if noisy is not None:
                assert (exc.status, exc.code) == (400, f"error.invalid.{noisy.lower()}"), exc.code
            continue
        assert noisy is None, f"off-grid {noisy}={body[noisy]} was accepted"
        if o["amend"] is not None and acc.orders:
            wo = acc.orders[-1]
            tick = BY_EPIC[wo.epic].tick
            try:
                ex.amend_order(acc, wo.deal_id, {"level": float(wo.level + o["amend"] * tick)})
            except ApiError:
                pass
        if o["amend"] is not None and acc.positions:  # PUT /positions: a new stop, maybe off the grid
            p = acc.positions[-1]
            spec = BY_EPIC[p.epic]
            away = -1 if p.direction == "BUY" else 1
            stop = p.level + away * o["amend"] * spec.tick
            noise = Decimal(repr(o["noise"])) * spec.tick if o["noise"] is not None else Decimal(0)
            try:
                ex.amend_position(acc, p.deal_id, {"stopLevel": float(stop + noise)})
                assert noise == 0, f"off-grid stopLevel {stop + noise} was accepted by PUT /positions"
            except ApiError as exc:
                assert noise == 0 or exc.code == "error.invalid.stoplevel", exc.code
        for _ in range(o["steps"]):  # prices move: stops, targets and working orders may fire
            for epic, proc in ex.prices.items():
                proc.step()
                hist.observe(epic)
                ex.on_price(epic)
    checked = sum(
        assert_on_grid(answer, epic) for answer, epic in every_answer(ex, hist, {o["epic"] for o in orders})
    )
    assert checked > 0


@pytest.mark.parametrize(
    ("path", "extra", "code"),
    [
        ("/workingorders", {"type": "LIMIT", "level": 1900.123456}, "error.invalid.level"),
        (
            "/workingorders",
            {"type": "LIMIT", "level": 1900.0, "stopLevel": 1850.005},
            "error.invalid.stoplevel",
        ),
        (
            "/workingorders",
            {"type": "LIMIT", "level": 1900.0, "profitLevel": 1990.999},
            "error.invalid.profitlevel",
        ),
        (
            "/workingorders",
            {"type": "LIMIT", "level": 1900.0, "stopDistance": 12.3456},
            "error.invalid.stopdistance",
        ),
        (
            "/workingorders",
            {"type": "LIMIT", "level": 1900.0, "stopDistance": -12.0},
            "error.invalid.stopdistance",
        ),
        ("/positions", {"profitDistance": 30.001}, "error.invalid.profitdistance"),
        ("/positions", {"stopLevel": 1500.0001}, "error.invalid.stoplevel"),
        ("/positions", {"trailingStop": True, "stopDistance": 20.005}, "error.invalid.stopdistance"),
    ],
)
async def test_off_grid_requests_are_refused_on_the_wire(
    sim: CapitalSimulator, path: str, extra: dict[str, Any], code: str
) -> None:
    sim.set_mid("GOLD", 2000.0)
    http, wire = await open_wire(sim)
    try:
        resp = await wire.call("POST", path, json={"epic": "GOLD", "direction": "BUY", "size": 1, **extra})
        assert (resp.status_code, resp.json()) == (400, {"errorCode": code})
        assert (await wire.json("GET", "/workingorders"))["workingOrders"] == []
        assert (await wire.json("GET", "/positions"))["positions"] == []
    finally:
        await http.aclose()


async def test_working_order_offsets_are_signed_as_recorded(sim: CapitalSimulator) -> None:
    """A BUY limit's stop sits below its level (negative offset, as recorded) and a SELL limit's above,
    whether the leg was sent as a level or as a distance."""
    sim.set_mid("GOLD", 2000.0)
    http, wire = await open_wire(sim)
    try:
        for direction, level, stop, profit in (
            ("BUY", 1900.0, 1850.0, 1990.0),
            ("SELL", 2100.0, 2150.0, 2010.0),
        ):
            body = {"epic": "GOLD", "direction": direction, "size": 1, "type": "LIMIT", "level": level}
            await wire.json("POST", "/workingorders", json={**body, "stopLevel": stop, "profitLevel": profit})
            await wire.json(
                "POST", "/workingorders", json={**body, "stopDistance": 50.0, "profitDistance": 90.0}
            )
        rows = (await wire.json("GET", "/workingorders"))["workingOrders"]
        got = [
            (
                r["workingOrderData"]["direction"],
                r["workingOrderData"]["stopDistance"],
                r["workingOrderData"]["profitDistance"],
            )
            for r in rows
        ]
        assert got == [("BUY", -50.0, 90.0)] * 2 + [("SELL", 50.0, -90.0)] * 2
        assert_on_grid(rows)
    finally:
        await http.aclose()


@pytest.mark.parametrize(
    "field", ["limit_price", "stop_price", "stop_loss", "take_profit", "trailing_distance"]
)
def test_joes_capital_client_refuses_an_off_grid_price_before_sending(field: str) -> None:
    """Nothing off the grid reaches the wire: the client names the field, the value and the grid
    (`trailing_distance`, sent as `stopDistance`, was the unchecked case)."""
    from joe.brokers.base import InvalidOrder
    from joe.brokers.capital.instruments import check_intent
    from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
    from joe.core.reports import InstrumentRules

    rules = InstrumentRules("GOLD", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"), None)
    kind = {"limit_price": OrderType.LIMIT, "stop_price": OrderType.STOP}.get(field, OrderType.MARKET)
    base: dict[str, Any] = {"limit_price": Decimal("1900.10")} if kind is OrderType.LIMIT else {}
    if kind is OrderType.STOP:
        base = {"stop_price": Decimal("2100.10")}
    ok = OrderIntent("c1", "s1", OrderLeg.ENTRY, "GOLD", Side.BUY, Decimal(1), kind, **base)
    check_intent(ok, rules)
    off = {
        "limit_price": Decimal("1900.123456"),
        "stop_price": Decimal("2100.005"),
        "stop_loss": Decimal("1850.001"),
        "take_profit": Decimal("2050.0001"),
        "trailing_distance": Decimal("12.345"),
    }[field]
    bad = OrderIntent("c1", "s1", OrderLeg.ENTRY, "GOLD", Side.BUY, Decimal(1), kind, **{**base, field: off})
    with pytest.raises(InvalidOrder, match=f"{field} {off} GOLD is not on the tick grid 0.01"):
        check_intent(bad, rules)
