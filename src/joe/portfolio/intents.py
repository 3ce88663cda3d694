"""Approved signals → bracket intents on the instrument's increments (shared by live and shadow).

One signal becomes one linked group: a market entry, a broker-side reduce-only STOP at the signal's
stop and a reduce-only LIMIT take-profit at its target. Sizes round DOWN to the size increment
(never more risk than sized); a long's stop rounds down and its target up, a short's the other way
(never tighter than asked). Client order ids derive from (signal id, leg): the same signal on a
rerun is the same order (`joe.core.ids.client_order_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from joe.core.ids import client_order_id
from joe.core.models import Direction, OrderIntent, OrderLeg, OrderType, Side, Signal
from joe.core.reports import InstrumentRules
from joe.execution.increments import round_price, round_size_down


@dataclass(frozen=True, slots=True)
class SizeCap:
    """A cap on one entry: a fraction of the sized quantity and a maximum notional (rollout)."""

    fraction: Decimal = Decimal(1)
    max_notional: Decimal | None = None

    def apply(self, quantity: Decimal, price: Decimal) -> Decimal:
        q = quantity * self.fraction
        if self.max_notional is not None and price > 0:
            q = min(q, self.max_notional / price)
        return q


class NotTradable(ValueError):
    """The signal cannot be turned into a conforming bracket (size rounds to zero, no quantity)."""


def bracket_for(signal: Signal, rules: InstrumentRules, cap: SizeCap | None = None) -> list[OrderIntent]:
    """The entry, stop and target intents of `signal` on `rules`' grid.

    Raises `NotTradable` when the signal has no size or its size rounds below the minimum.
    """
    if signal.quantity is None or signal.quantity <= 0:
        raise NotTradable(f"{signal.symbol}: signal {signal.signal_id} has no size")
    raw = abs(signal.quantity)
    if cap is not None:
        raw = cap.apply(raw, signal.entry)
    qty = round_size_down(raw, rules)
    if qty <= 0:
        raise NotTradable(
            f"{signal.symbol}: size {raw} rounds below the minimum {rules.min_size} "
            f"(increment {rules.size_increment})"
        )
    long = signal.direction is Direction.LONG
    side = Side.BUY if long else Side.SELL
    stop = round_price(signal.stop_loss, rules, "down" if long else "up")
    target = round_price(signal.take_profit, rules, "up" if long else "down")
    if stop <= 0 or target <= 0:
        raise NotTradable(
            f"{signal.symbol}: stop {signal.stop_loss} / target {signal.take_profit} fall off the tick grid "
            f"{rules.tick_size} (rounded to {stop} / {target})"
        )
    sid = signal.signal_id
    return [
        OrderIntent(
            client_order_id(sid, OrderLeg.ENTRY.value), sid, OrderLeg.ENTRY, signal.symbol, side, qty,
            stop_loss=stop, take_profit=target,
        ),
        OrderIntent(
            client_order_id(sid, OrderLeg.STOP_LOSS.value), sid, OrderLeg.STOP_LOSS, signal.symbol,
            side.opposite, qty, order_type=OrderType.STOP, stop_price=stop, reduce_only=True,
        ),
        OrderIntent(
            client_order_id(sid, OrderLeg.TAKE_PROFIT.value), sid, OrderLeg.TAKE_PROFIT, signal.symbol,
            side.opposite, qty, order_type=OrderType.LIMIT, limit_price=target, reduce_only=True,
        ),
    ]  # fmt: skip
