"""Strategy exits for positions Joe holds at a broker (live), decided once per run.

Stops and targets stay with the broker (they are working orders there). On top of them the strategy
asks to leave a position when, in this run:

* **the signal reversed**: the strategies' call on the held instrument this run points the other way
  (`StrategyEngine.calls` on the held symbols: whether or not the risk stage would approve it as an
  entry, which it never does on a held symbol under `risk.max_positions_per_symbol: 1`, and whatever
  its rank among the run's entries). The held position is exited reduce-only and the reversed entry
  is NOT sent in the same run (an entry against an open position would net it away or flip it: never
  reverse a position in one step);
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

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.regime import Regime
from joe.analysis.strategies.engine import StrategyEngine
from joe.core.models import Position, Signal


@dataclass(frozen=True, slots=True)
class StrategyExit:
    """One held position the strategy wants closed, and why (in words, for the report and the audit)."""

    signal_id: str
    symbol: str
    reason: str


def strategy_exits(
    positions: Sequence[Position], calls: Sequence[Signal], universe: Collection[str]
) -> list[StrategyExit]:
    """The exits the strategy asks for (see the module docstring). `calls`: the strategies' signals this
    run (at least their call on each held symbol; the first per symbol counts); `universe` empty: not
    judged. Positions without a signal id (external) are never named."""
    by_symbol: dict[str, Signal] = {}
    for s in calls:
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


def held_calls(
    engine: StrategyEngine,
    panel: Panel,
    positions: Sequence[Position],
    regime: Regime,
    t: int,
    features: Features | None = None,
) -> list[Signal]:
    """The strategies' call at row `t` on each held symbol the panel has (`StrategyEngine.calls`)."""
    held = sorted({p.symbol for p in positions if p.quantity != 0})
    if not held:
        return []
    calls = engine.calls(panel, held, regime, t, features or Features(panel))
    return [calls[s] for s in held if s in calls]


def held_against(positions: Sequence[Position], s: Signal) -> Position | None:
    """The held position an entry of `s` would reduce or flip (opposite direction), if any."""
    return next(
        (p for p in positions if p.symbol == s.symbol and p.quantity != 0 and p.direction is not s.direction),
        None,
    )
