"""The fill model shared by the simulators: when and at what price a simulated order executes.

Market orders take the touch (buy at ask, sell at bid). Limits fill when the touch crosses the
limit, at the limit or better. Stops trigger when the touch reaches the stop and then fill like a
market (stop-limit: like a limit). Trailing stops ratchet their stop with the favourable price and
never loosen. `max_fill_qty` lets a simulator produce partial fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class SimOrderType(StrEnum):
    MARKET = "MKT"
    LIMIT = "LMT"
    STOP = "STP"
    STOP_LIMIT = "STP LMT"
    TRAIL = "TRAIL"


@dataclass
class SimOrder:
    """A simulated working order. `side` is "BUY" or "SELL"."""

    order_id: str
    symbol: str
    side: str
    quantity: Decimal
    order_type: SimOrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_amount: Decimal | None = None
    trail_percent: Decimal | None = None
    filled: Decimal = Decimal(0)
    triggered: bool = False
    parent_id: str | None = None
    oca_group: str | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def is_buy(self) -> bool:
        return self.side.upper() == "BUY"


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """A fill the model decided on: quantity and price."""

    quantity: Decimal
    price: Decimal


class FillModel:
    """Decides fills for `SimOrder`s against a bid/ask. Stateless apart from the trailing stops it updates."""

    def __init__(self, max_fill_qty: Decimal | None = None) -> None:
        self.max_fill_qty = max_fill_qty

    def _qty(self, order: SimOrder) -> Decimal:
        if self.max_fill_qty is None:
            return order.remaining
        return min(order.remaining, self.max_fill_qty)

    def update_trailing(self, order: SimOrder, bid: Decimal, ask: Decimal) -> None:
        """Ratchet a trailing stop toward the market; it never moves against the position."""
        if order.order_type is not SimOrderType.TRAIL:
            return
        ref = bid if not order.is_buy else ask  # a sell-stop protects a long: trail the bid
        if order.trail_amount is not None:
            dist = order.trail_amount
        elif order.trail_percent is not None:
            dist = ref * order.trail_percent / 100
        else:
            return
        if order.is_buy:
            candidate = ref + dist
            if order.stop_price is None or candidate < order.stop_price:
                order.stop_price = candidate
        else:
            candidate = ref - dist
            if order.stop_price is None or candidate > order.stop_price:
                order.stop_price = candidate

    def check(self, order: SimOrder, bid: Decimal, ask: Decimal) -> TriggerResult | None:
        """Return the fill for `order` at this quote, or None if it does not execute now."""
        if order.remaining <= 0:
            return None
        self.update_trailing(order, bid, ask)
        touch = ask if order.is_buy else bid
        t = order.order_type
        if t is SimOrderType.MARKET:
            return TriggerResult(self._qty(order), touch)
        if t is SimOrderType.LIMIT:
            assert order.limit_price is not None
            if (order.is_buy and ask <= order.limit_price) or (not order.is_buy and bid >= order.limit_price):
                better = min(ask, order.limit_price) if order.is_buy else max(bid, order.limit_price)
                return TriggerResult(self._qty(order), better)
            return None
        # Stops (plain, stop-limit, trailing): buy-stops trigger on ask >= stop, sell-stops on bid <= stop.
        if not order.triggered:
            if order.stop_price is None:
                return None
            hit = ask >= order.stop_price if order.is_buy else bid <= order.stop_price
            if not hit:
                return None
            order.triggered = True
        if t is SimOrderType.STOP_LIMIT:
            assert order.limit_price is not None
            ok = ask <= order.limit_price if order.is_buy else bid >= order.limit_price
            return TriggerResult(self._qty(order), order.limit_price) if ok else None
        return TriggerResult(self._qty(order), touch)
