"""IBKR instrument increments (`minTick`, `minSize`, `sizeIncrement` from reqContractDetails) and the
check every price and size passes before it is sent.

TWS refuses a price off the tick grid with error 110 ("The price does not conform to the minimum price
variation for this contract"); Joe refuses it first, with the field and the rule in the message, so a
non-conforming order never reaches the broker (issue 9, "Instrument increments").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from joe.brokers.base import InvalidOrder
from joe.brokers.ibkr.translate import UNSET_DOUBLE, decimal
from joe.core.models import OrderIntent
from joe.core.reports import InstrumentRules

ONE = Decimal(1)


def _positive(x: Any, default: Decimal) -> Decimal:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return default
    if not 0 < f < UNSET_DOUBLE:
        return default
    return decimal(f)


def rules_from_details(symbol: str, details: Any) -> InstrumentRules:
    """`InstrumentRules` from an ib_async `ContractDetails`. Server versions < 164 send no minSize /
    sizeIncrement; whole units (1) are assumed then, as for every stock."""
    tick = _positive(details.minTick, Decimal(0))
    if tick <= 0:
        raise InvalidOrder(f"IBKR contract details for {symbol} carry no minTick ({details.minTick!r})")
    return InstrumentRules(
        symbol=symbol, tick_size=tick, min_size=_positive(getattr(details, "minSize", 0), ONE),
        size_increment=_positive(getattr(details, "sizeIncrement", 0), ONE),
    )  # fmt: skip


def on_grid(value: Decimal, step: Decimal) -> bool:
    """True when `value` is a whole multiple of `step` (exact Decimal arithmetic)."""
    return step > 0 and (value / step) == (value / step).to_integral_value()


def check_price(rules: InstrumentRules, field: str, value: Decimal | None, coid: str) -> None:
    """Raise `InvalidOrder` unless `value` is positive and on the instrument's tick grid."""
    if value is None:
        return
    if not value.is_finite() or value <= 0:
        raise InvalidOrder(f"order {coid}: {field}={value} must be a positive price")
    if not on_grid(value, rules.tick_size):
        raise InvalidOrder(
            f"order {coid}: {field}={value} is not a multiple of {rules.symbol}'s minTick {rules.tick_size} "
            f"(IBKR error 110); round it to the tick first"
        )


def check_size(rules: InstrumentRules, value: Decimal, coid: str) -> None:
    """Raise `InvalidOrder` unless `value` >= minSize and a multiple of the size increment."""
    if not value.is_finite() or value < rules.min_size:
        raise InvalidOrder(
            f"order {coid}: quantity={value} is below {rules.symbol}'s minSize {rules.min_size}"
        )
    if not on_grid(value, rules.size_increment):
        raise InvalidOrder(
            f"order {coid}: quantity={value} is not a multiple of {rules.symbol}'s size increment "
            f"{rules.size_increment}; round it down to the increment first"
        )


def check_intent(rules: InstrumentRules, intent: OrderIntent) -> None:
    """Every price and the size of `intent` conform to `rules`, or `InvalidOrder` names the field."""
    coid = intent.client_order_id
    check_size(rules, intent.quantity, coid)
    for name in ("limit_price", "stop_price", "trailing_distance", "stop_loss", "take_profit"):
        check_price(rules, name, getattr(intent, name), coid)
