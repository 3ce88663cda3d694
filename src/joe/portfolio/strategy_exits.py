"""Strategy exits for positions Joe holds at a broker (live), decided once per run.

Stops and targets stay with the broker (they are working orders there). On top of them the strategy
asks to leave a position when, in this run:

* **the signal reversed**: an approved signal on the same instrument points the other way. The held
  position is exited reduce-only and the reversed entry is NOT sent in the same run (an entry
  against an open position would net it away or flip it: never reverse a position in one step);
* **the instrument left the universe**: it is not among the instruments the run's universe holds
  (`pipeline.universe_size` of the source's list, the scan), so nothing analyses it any more.

Only Joe's own positions (those with a signal id) are considered: external positions are recorded
and never touched. The exits go through `OrderManager.exit`, which caps the size at the position
(reduce-only, never more than held), cancels the bracket's stop and target first, and returns the
working exit instead of sending a second one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from joe.core.models import Position, Signal


@dataclass(frozen=True, slots=True)
class StrategyExit:
    """One held position the strategy wants closed, and why (in words, for the report and the audit)."""

    signal_id: str
    symbol: str
    reason: str


def strategy_exits(
    positions: Sequence[Position], approved: Sequence[Signal], universe: Collection[str]
) -> list[StrategyExit]:
    """The exits the strategy asks for (see the module docstring); `universe` empty: not judged."""
    by_symbol: dict[str, Signal] = {}
    for s in approved:
        by_symbol.setdefault(s.symbol, s)
    out: list[StrategyExit] = []
    for p in positions:
        if p.signal_id is None or p.quantity == 0:
            continue
        rev = by_symbol.get(p.symbol)
        if rev is not None and rev.direction is not p.direction:
            why = (
                f"signal reversed: {rev.direction.value} signal {rev.signal_id} "
                f"against the {p.direction.value} position"
            )
            out.append(StrategyExit(p.signal_id, p.symbol, why))
        elif universe and p.symbol not in universe:
            out.append(StrategyExit(p.signal_id, p.symbol, "instrument left the universe"))
    return out


def held_against(positions: Sequence[Position], s: Signal) -> Position | None:
    """The held position an entry of `s` would reduce or flip (opposite direction), if any."""
    return next(
        (p for p in positions if p.symbol == s.symbol and p.quantity != 0 and p.direction is not s.direction),
        None,
    )
