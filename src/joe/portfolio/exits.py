"""Stop-loss, take-profit and trailing-stop evaluation on each new price (pure functions).

A bar is checked conservatively: a gap through a level exits at the open; if the stop and the
target are both inside one bar, the stop is assumed to have hit first. The trail ratchets only
after the exit check, from the bar's extreme, so a bar never uses its own future to move a stop.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import NamedTuple

from joe.portfolio.ledger import PaperPosition


class PriceBar(NamedTuple):
    """The prices needed to evaluate exits; a single quote is a bar with all four equal."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal

    @classmethod
    def point(cls, price: Decimal) -> PriceBar:
        return cls(price, price, price, price)


class ExitDecision(NamedTuple):
    price: Decimal
    reason: str


def check_exit(pos: PaperPosition, bar: PriceBar) -> ExitDecision | None:
    """The exit this bar triggers for `pos`, if any."""
    stop, target = pos.stop_loss, pos.take_profit
    trail = pos.trailing_distance is not None
    stop_reason = "trailing stop" if trail else "stop loss"
    if pos.quantity > 0:
        if stop is not None and bar.open <= stop:
            return ExitDecision(bar.open, f"{stop_reason} (gap)")
        if stop is not None and bar.low <= stop:
            return ExitDecision(stop, stop_reason)
        if target is not None and bar.open >= target:
            return ExitDecision(bar.open, "take profit (gap)")
        if target is not None and bar.high >= target:
            return ExitDecision(target, "take profit")
    else:
        if stop is not None and bar.open >= stop:
            return ExitDecision(bar.open, f"{stop_reason} (gap)")
        if stop is not None and bar.high >= stop:
            return ExitDecision(stop, stop_reason)
        if target is not None and bar.open <= target:
            return ExitDecision(bar.open, "take profit (gap)")
        if target is not None and bar.low <= target:
            return ExitDecision(target, "take profit")
    return None


def ratchet(pos: PaperPosition, bar: PriceBar) -> PaperPosition:
    """Update the best price and, for a trailing position, tighten (never loosen) the stop."""
    if pos.quantity > 0:
        best = max(pos.best_price or bar.high, bar.high)
    else:
        best = min(pos.best_price or bar.low, bar.low)
    stop = pos.stop_loss
    if pos.trailing_distance is not None:
        candidate = best - pos.trailing_distance if pos.quantity > 0 else best + pos.trailing_distance
        if stop is None or (pos.quantity > 0 and candidate > stop) or (pos.quantity < 0 and candidate < stop):
            stop = candidate
    return replace(pos, best_price=best, stop_loss=stop, mark=bar.close)
