"""Splits while the daemon watches a position: a held price never meets a post-split quote unadjusted.

The `PositionMonitor` holds levels Joe recorded before a split (stop, target, entry, trail distance,
best price). After a 4-for-1 split every quote is a quarter of them, so every long looks stopped out
(and a short's target looks reached): the bot-side backup stop would sell the whole position at market
for nothing. Two guards, both per instrument:

* **Suspected split** (`split_like`): a quote jumped from the previous quote of its instrument (or, with
  no quote yet, from the position's entry price) by a factor within `SPLIT_TOL` (log, 5%) of a real
  split ratio (`joe.data.splits.RATIOS`: 3-for-2 ... 50-for-1 and 1-for-2 ... 1-for-100) of at least
  `MIN_FACTOR` (3-for-2) either way. The instrument's positions are then *held*: no backup exit, no
  trailing modify, until `PositionMonitor.apply_split` adjusts them or the price comes back within
  `SPLIT_TOL` of the reference (a bad tick). The broker-side stop stays the protection: a real crash
  that looks like a split is still stopped out by the broker (DESIGN: broker-side stops are primary).
  Audited (``monitor.split_suspected``) and handed to `PositionMonitor.split_listeners` (the daemon
  alerts). 5-for-4 and 4-for-3 splits (a 20-25% jump) are not guarded: that size of gap is a real move
  too often to switch the backup stop off for it.
* **Known split** (`split_watched`): quantity × r, entry, stop, target, trail distance and step ÷ r
  (r = the price factor, 4 for a 4-for-1, 0.1 for a 1-for-10), as the paper book does
  (`joe.portfolio.corporate_actions`). Levels are exact (not rounded to the tick): the broker's own
  adjusted stop, once confirmed (`confirm_stop`), replaces the monitor's copy.

Limit: with no mark and an entry price far from the pre-split price (a long-held winner), a split on the
first quote the daemon sees is not recognised; the broker-side stop remains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from joe.data.splits import RATIOS, split_label
from joe.execution.protection import TrailingStop, WatchedPosition

MIN_FACTOR = 1.5  # the smallest split factor (either way) the monitor guards against: 3-for-2
SPLIT_TOL = 0.05  # log distance from a split ratio that still reads as that split (a ±5% day)
_GUARDED = tuple(float(r) for r in RATIOS if max(float(r), 1 / float(r)) >= MIN_FACTOR - 1e-9)
_LOG_GUARDED = [math.log(r) for r in _GUARDED]


@dataclass(frozen=True, slots=True)
class SplitSuspect:
    """A split-like jump on a watched instrument: the price factor `ratio` (reference ÷ price), the
    reference (previous mark or entry price) and the quote that jumped."""

    symbol: str
    ratio: float
    reference: float
    price: float
    positions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "ratio": self.ratio, "reference": self.reference, "price": self.price,
                "positions": list(self.positions)}  # fmt: skip

    @property
    def message(self) -> str:
        n = len(self.positions)
        return (
            f"{self.symbol}: price jumped from {self.reference:g} to {self.price:g}, a "
            f"{split_label(self.ratio)} split's factor: the bot-side backup stop and trailing of {n} "
            f"position(s) are suspended (their broker-side stops stay). Apply the split to the watched "
            f"positions, or - if it is a real move - the broker's stop decides"
        )


def suspects(symbol: str, refs: list[tuple[str, float]], price: float) -> list[SplitSuspect]:
    """One `SplitSuspect` per reference price in `refs` ((position id, reference)) from which `price`
    is a split-like jump (`split_like`); [] when none is."""
    by_ref: dict[float, list[str]] = {}
    for pid, ref in refs:
        by_ref.setdefault(ref, []).append(pid)
    out = []
    for ref, pids in by_ref.items():
        ratio = split_like(ref, price)
        if ratio is not None:
            out.append(SplitSuspect(symbol, ratio, ref, price, tuple(pids)))
    return out


def split_like(reference: float, price: float) -> float | None:
    """The split factor r (reference ÷ price ≈ r) of a jump from `reference` to `price`, or None when
    the jump is no guarded split ratio within `SPLIT_TOL` (module docstring). Non-positive or
    non-finite inputs give None."""
    if not (reference > 0 and price > 0 and math.isfinite(reference) and math.isfinite(price)):
        return None
    move = math.log(reference / price)
    if abs(move) < math.log(MIN_FACTOR) - SPLIT_TOL:
        return None
    k = min(range(len(_GUARDED)), key=lambda i: abs(_LOG_GUARDED[i] - move))
    return _GUARDED[k] if abs(_LOG_GUARDED[k] - move) <= SPLIT_TOL else None


def exact_ratio(value: float | Decimal | Fraction) -> Decimal:
    """A split factor as an exact Decimal (2, 1.5, 0.25); raises ValueError when not > 0."""
    fr = Fraction(value).limit_denominator(100)
    if fr <= 0:
        raise ValueError(f"a split ratio must be > 0, got {value}")
    return Decimal(fr.numerator) / Decimal(fr.denominator)


def split_watched(spec: WatchedPosition, ratio: Decimal) -> WatchedPosition:
    """`spec` in post-split units: quantity × ratio, every price level ÷ ratio."""

    def div(x: Decimal | None) -> Decimal | None:
        return None if x is None else x / ratio

    trailing = spec.trailing
    if trailing is not None:
        trailing = TrailingStop(trailing.distance / ratio, trailing.step / ratio)
    return replace(
        spec,
        quantity=spec.quantity * ratio,
        entry_price=spec.entry_price / ratio,
        stop=div(spec.stop),
        take_profit=div(spec.take_profit),
        trailing=trailing,
    )
