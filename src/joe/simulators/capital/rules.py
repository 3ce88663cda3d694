"""Request validation for the simulator: API errors, numbers, sizes and stop/profit brackets (spec §5.1)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from joe.simulators.capital.catalog import MarketSpec


class ApiError(Exception):
    """An error answer `{"errorCode": code}` with an HTTP status."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


def dec(value: Any, code: str = "error.invalid.request") -> Decimal:
    """A JSON number as Decimal; bools, strings and junk are rejected with `code`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, code)
    try:
        out = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ApiError(400, code) from None
    if not out.is_finite():
        raise ApiError(400, code)
    return out


def opt_dec(body: dict[str, Any], key: str) -> Decimal | None:
    value = body.get(key)
    return None if value is None else dec(value, f"error.invalid.{key.lower()}")


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"error.invalid.{key.lower()}")
    return value


def direction_of(body: dict[str, Any]) -> str:
    d = body.get("direction")
    if d not in ("BUY", "SELL"):
        raise ApiError(400, "error.invalid.direction")
    return str(d)


def check_size(spec: MarketSpec, body: dict[str, Any]) -> Decimal:
    if "size" not in body:
        raise ApiError(400, "error.invalid.size")
    size = dec(body["size"], "error.invalid.size")
    if size < spec.min_size:
        raise ApiError(400, "error.invalid.size.minvalue")
    if size > spec.max_size:
        raise ApiError(400, "error.invalid.size.maxvalue")
    if size % spec.size_increment != 0:
        raise ApiError(400, "error.invalid.size")
    return size


def q(spec: MarketSpec, x: Decimal) -> Decimal:
    """Round a price to the market's tick."""
    return (x / spec.tick).to_integral_value(ROUND_HALF_UP) * spec.tick


def on_tick(spec: MarketSpec, value: Decimal | None, code: str) -> Decimal | None:
    """`value` unchanged when it is a multiple of the market's tick (`minStepDistance`), else a 400
    `code` (e.g. `error.invalid.stoplevel`).

    The simulator refuses an off-grid price or distance the client sent rather than rounding it:
    the Capital.com docs state no rounding rule (spec §10 quirk 8: "prices on minStepDistance"), and
    a refusal is the answer that cannot hide a client that forgot to round. Levels the server derives
    itself (from `stopAmount` / `profitAmount`) are rounded to the grid instead (`q`).
    """
    if value is not None and value % spec.tick != 0:
        raise ApiError(400, code)
    return value


@dataclass
class Bracket:
    """Resolved stop/profit legs of a request."""

    stop_level: Decimal | None = None
    profit_level: Decimal | None = None
    trailing: bool = False
    stop_distance: Decimal | None = None
    guaranteed: bool = False

    def shifted(self, delta: Decimal) -> Bracket:
        """The same legs around a reference moved by `delta` (a working order's legs are offsets
        from its level: moving the level or filling away from it moves every leg with it)."""
        return replace(
            self,
            stop_level=None if self.stop_level is None else self.stop_level + delta,
            profit_level=None if self.profit_level is None else self.profit_level + delta,
        )

    def levels_json(self) -> dict[str, Any]:
        """The legs as confirms and activity rows send them: `stopLevel` (a trailing stop's current
        level too) and `profitLevel`; a leg not set is left out (the recorded confirm has neither)."""
        out: dict[str, Any] = {}
        if self.stop_level is not None:
            out["stopLevel"] = float(self.stop_level)
        if self.profit_level is not None:
            out["profitLevel"] = float(self.profit_level)
        return out

    def offsets_json(self, level: Decimal) -> dict[str, Any]:
        """The legs as `GET /workingorders` sends them: signed offsets from the order `level`
        (spec §5.7, the recorded BUY SILVER limit at 20 with stop 17 → `stopDistance: -3`)."""
        out: dict[str, Any] = {}
        if self.stop_level is not None:
            out["stopDistance"] = float(self.stop_level - level)
        if self.profit_level is not None:
            out["profitDistance"] = float(self.profit_level - level)
        return out


def parse_bracket(
    spec: MarketSpec, body: dict[str, Any], *, direction: str, ref: Decimal, size: Decimal, hedging: bool
) -> Bracket:
    """Resolve level/distance/amount alternatives into levels around `ref` and validate the bounds.

    Precedence when several alternatives are sent (undocumented upstream): level, then distance,
    then amount. Distance limits are `minStopOrProfitDistance` / `maxStopOrProfitDistance` (%).
    """
    guaranteed = flag(body, "guaranteedStop")
    trailing = flag(body, "trailingStop")
    stop_level = on_tick(spec, opt_dec(body, "stopLevel"), "error.invalid.stoplevel")
    stop_distance = on_tick(spec, opt_dec(body, "stopDistance"), "error.invalid.stopdistance")
    stop_amount = opt_dec(body, "stopAmount")
    profit_level = on_tick(spec, opt_dec(body, "profitLevel"), "error.invalid.profitlevel")
    profit_distance = on_tick(spec, opt_dec(body, "profitDistance"), "error.invalid.profitdistance")
    profit_amount = opt_dec(body, "profitAmount")
    for key, x in (
        ("stopdistance", stop_distance),
        ("profitdistance", profit_distance),
        ("stopamount", stop_amount),
        ("profitamount", profit_amount),
    ):
        if x is not None and x <= 0:  # a distance or amount is a size, never negative
            raise ApiError(400, f"error.invalid.{key}")
    if guaranteed and trailing:
        raise ApiError(400, "error.invalid.request.guaranteedstop.trailingstop")
    if trailing and stop_distance is None:
        raise ApiError(400, "error.invalid.trailingstop.stopdistance")
    if guaranteed and stop_level is None and stop_distance is None and stop_amount is None:
        raise ApiError(400, "error.invalid.guaranteedstop.stop")
    if guaranteed and hedging:
        raise ApiError(400, "error.invalid.guaranteedstop.hedgingmode")
    sign = 1 if direction == "BUY" else -1
    if trailing:
        stop_level = None
    if stop_level is None and stop_distance is not None:
        stop_level = ref - sign * stop_distance
    elif stop_level is None and stop_amount is not None:
        stop_level = ref - sign * stop_amount / size
    if profit_level is None and profit_distance is not None:
        profit_level = ref + sign * profit_distance
    elif profit_level is None and profit_amount is not None:
        profit_level = ref + sign * profit_amount / size
    lo_d = ref * spec.min_stop_pct / 100
    hi_d = ref * spec.max_stop_pct / 100
    if stop_level is not None:
        stop_level = q(spec, stop_level)
        near, far = ref - sign * lo_d, ref - sign * hi_d
        if sign * (stop_level - near) > 0:  # too close (or wrong side)
            kind = "maxvalue" if sign > 0 else "minvalue"
            raise ApiError(400, f"error.invalid.stoploss.{kind}: {q(spec, near)}")
        if sign * (stop_level - far) < 0:
            kind = "minvalue" if sign > 0 else "maxvalue"
            raise ApiError(400, f"error.invalid.stoploss.{kind}: {q(spec, far)}")
    if profit_level is not None:
        profit_level = q(spec, profit_level)
        near, far = ref + sign * lo_d, ref + sign * hi_d
        if sign * (profit_level - near) < 0:
            kind = "minvalue" if sign > 0 else "maxvalue"
            raise ApiError(400, f"error.invalid.takeprofit.{kind}: {q(spec, near)}")
        if sign * (profit_level - far) > 0:
            kind = "maxvalue" if sign > 0 else "minvalue"
            raise ApiError(400, f"error.invalid.takeprofit.{kind}: {q(spec, far)}")
    if trailing:
        assert stop_distance is not None
        if stop_distance < lo_d:
            raise ApiError(400, f"error.invalid.stoploss.mindistance: {q(spec, lo_d)}")
        stop_level = q(spec, ref - sign * stop_distance)
    return Bracket(stop_level, profit_level, trailing, stop_distance if trailing else None, guaranteed)


# Leverage choices per asset group, as the recorded `GET /accounts/preferences` lists them.
LEVERAGE_AVAILABLE: dict[str, tuple[int, ...]] = {
    "SHARES": (1, 2, 3, 5),
    "CURRENCIES": (1, 10, 20, 30),
    "INDICES": (1, 10, 20),
    "CRYPTOCURRENCIES": (1, 2),
    "COMMODITIES": (1, 5, 10, 20),
}


def check_preferences(body: Any) -> tuple[dict[str, int], bool | None]:
    """`PUT /accounts/preferences` body → (leverages to set, hedging mode or None), all checked
    before anything changes (spec §4.3). A group the account does not have, or a value that is not
    one of the group's `available` integers (a bool, a string, 600 as recorded), is the recorded
    400 `error.invalid.leverage.value`; a `hedgingMode` that is not a boolean is 400
    `error.invalid.hedgingMode`; a body that is not an object, `error.invalid.request`."""
    if not isinstance(body, dict):
        raise ApiError(400, "error.invalid.request")
    raw = body.get("leverages")
    if raw is not None and not isinstance(raw, dict):
        raise ApiError(400, "error.invalid.leverage.value")
    leverages: dict[str, int] = {}
    for group, value in (raw or {}).items():
        ok = LEVERAGE_AVAILABLE.get(group, ())
        if isinstance(value, bool) or not isinstance(value, int) or value not in ok:
            raise ApiError(400, "error.invalid.leverage.value")
        leverages[group] = value
    hedging = body.get("hedgingMode")
    if hedging is not None and not isinstance(hedging, bool):
        raise ApiError(400, "error.invalid.hedgingMode")
    return leverages, hedging
