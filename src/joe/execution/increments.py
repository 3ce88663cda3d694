"""Instrument increments: checking an intent against a broker's tick and size rules, and the pure
rounding helpers the risk layer uses to size within them.

Rules come from `ExecutionClient.instrument_rules` (IBKR `minTick` / `sizeIncrement`; Capital.com
`dealingRules.minDealSize` / `minSizeIncrement`). Sizes round DOWN to the step (never risk more
than sized); prices round to the nearest tick unless a direction is asked for.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal

from joe.brokers.base import InvalidOrder
from joe.core.models import ZERO, OrderIntent
from joe.core.reports import InstrumentRules


def _steps(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def round_size_down(quantity: Decimal, rules: InstrumentRules) -> Decimal:
    """`quantity` rounded down to a multiple of `size_increment` (and capped at `max_size`);
    ZERO when the result is below `min_size` (nothing tradable)."""
    if rules.size_increment > 0:
        quantity = _steps(quantity, rules.size_increment, ROUND_DOWN)
    if rules.max_size is not None and quantity > rules.max_size:
        quantity = (
            _steps(rules.max_size, rules.size_increment, ROUND_DOWN)
            if rules.size_increment > 0
            else rules.max_size
        )
    return quantity if quantity >= rules.min_size and quantity > 0 else ZERO


def round_price(price: Decimal, rules: InstrumentRules, direction: str = "nearest") -> Decimal:
    """`price` on the tick grid: "nearest" (half-even), "down" or "up" (e.g. a long's stop rounds
    down so it is never tighter than asked). Raises `ValueError` for another direction."""
    modes = {"nearest": ROUND_HALF_EVEN, "down": ROUND_DOWN, "up": ROUND_UP}
    if direction not in modes:
        raise ValueError(f"direction must be one of {sorted(modes)}, got {direction!r}")
    if rules.tick_size <= 0:
        return price
    return _steps(price, rules.tick_size, modes[direction])


def _on_grid(value: Decimal, step: Decimal) -> bool:
    return step <= 0 or (value % step) == 0


def check_intent(intent: OrderIntent, rules: InstrumentRules) -> None:
    """Refuse an intent whose size or prices do not conform to `rules`.

    Raises `InvalidOrder` naming the order, the field, the value and the rule (nothing is sent).
    """
    where = f"order {intent.client_order_id} ({intent.symbol})"
    q = intent.quantity
    if not isinstance(q, Decimal) or not q.is_finite():
        raise InvalidOrder(f"{where}: quantity must be a finite number, got {q!r}")
    if q < rules.min_size:
        raise InvalidOrder(f"{where}: quantity {q} is below the minimum size {rules.min_size}")
    if not _on_grid(q, rules.size_increment):
        raise InvalidOrder(
            f"{where}: quantity {q} is not a multiple of the size increment {rules.size_increment} "
            f"(round down to {round_size_down(q, rules)})"
        )
    if rules.max_size is not None and q > rules.max_size:
        raise InvalidOrder(f"{where}: quantity {q} is above the maximum size {rules.max_size}")
    for name in ("limit_price", "stop_price", "stop_loss", "take_profit"):
        price: Decimal | None = getattr(intent, name)
        if price is None:
            continue
        if not price.is_finite() or price <= 0:
            raise InvalidOrder(f"{where}: {name} {price} must be a finite price > 0")
        if not _on_grid(price, rules.tick_size):
            raise InvalidOrder(
                f"{where}: {name} {price} is not on the tick grid {rules.tick_size} "
                f"(nearest: {round_price(price, rules)})"
            )
