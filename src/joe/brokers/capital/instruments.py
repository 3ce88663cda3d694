"""Capital.com instrument rules (`GET /markets/{epic}` → `dealingRules`) and the conformance check
every order passes before it is sent.

Source of the rules: spec §6.4 — `minDealSize`, `maxDealSize`, `minSizeIncrement` (the size grid;
never `minStepDistance`, which is about prices), and the price tick: `tickSize` where the market
states it, else `10^-decimalPlacesFactor`, else `minStepDistance` in POINTS.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from joe.brokers.base import InvalidOrder
from joe.core.models import OrderIntent
from joe.core.reports import InstrumentRules


def _num(x: Any) -> Decimal | None:
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        return None
    try:
        d = Decimal(str(x))
    except ArithmeticError:
        return None
    return d if d.is_finite() and d > 0 else None


def _rule(rules: dict[str, Any], name: str) -> Decimal | None:
    r = rules.get(name)
    if isinstance(r, dict) and str(r.get("unit", "POINTS")).upper() == "POINTS":
        return _num(r.get("value"))
    return None


def rules_from_market(epic: str, body: dict[str, Any]) -> InstrumentRules:
    """`GET /markets/{epic}` body → InstrumentRules; a body without sizes raises `InvalidOrder`."""
    dealing = body.get("dealingRules") or {}
    instrument = body.get("instrument") or {}
    snapshot = body.get("snapshot") or {}
    min_size = _rule(dealing, "minDealSize")
    if min_size is None:
        raise InvalidOrder(f"capital: market {epic} states no minDealSize; cannot check an order for it")
    step = _rule(dealing, "minSizeIncrement") or min_size
    tick = _num(instrument.get("tickSize")) or _num(snapshot.get("tickSize")) or _num(dealing.get("tickSize"))
    if tick is None:
        places = snapshot.get("decimalPlacesFactor")
        if isinstance(places, int) and not isinstance(places, bool) and 0 <= places <= 12:
            tick = Decimal(1).scaleb(-places)
    tick = tick or _rule(dealing, "minStepDistance") or Decimal("0.01")
    return InstrumentRules(epic, tick, min_size, step, _rule(dealing, "maxDealSize"))


def _on_grid(x: Decimal, step: Decimal) -> bool:
    return step > 0 and x % step == 0


def check_intent(intent: OrderIntent, rules: InstrumentRules) -> None:
    """Refuse (`InvalidOrder`, naming the field, the value and the rule) what the broker would refuse.

    Sizes: ≥ minDealSize, ≤ maxDealSize, a multiple of minSizeIncrement. Prices (limit, stop, stop
    loss, take profit): a multiple of the tick. Rounding is the risk layer's job (round the size
    down to the step); here nothing is changed.
    """
    q, cid, sym = intent.quantity, intent.client_order_id, intent.symbol
    fix = (q // rules.size_increment) * rules.size_increment
    if q < rules.min_size:
        raise InvalidOrder(
            f"capital: {cid} quantity {q} {sym} is below minDealSize {rules.min_size}; size at least that"
        )
    if rules.max_size is not None and q > rules.max_size:
        raise InvalidOrder(f"capital: {cid} quantity {q} {sym} is above maxDealSize {rules.max_size}")
    if not _on_grid(q, rules.size_increment):
        raise InvalidOrder(
            f"capital: {cid} quantity {q} {sym} is not a multiple of minSizeIncrement "
            f"{rules.size_increment}; round it down (to {fix})"
        )
    # a trailing stop's distance is sent as `stopDistance`: on the grid too (the server refuses it)
    for name in ("limit_price", "stop_price", "stop_loss", "take_profit", "trailing_distance"):
        px = getattr(intent, name)
        if px is not None and not _on_grid(px, rules.tick_size):
            raise InvalidOrder(
                f"capital: {cid} {name} {px} {sym} is not on the tick grid {rules.tick_size}; round it"
            )
