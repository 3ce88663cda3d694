"""Splits on held paper positions: the book follows the split the history was adjusted for.

When the data-quality stage adjusts a symbol's history for a confirmed split (`joe.data.quality`,
check ``split``: earlier prices ÷ ratio, volume × ratio), a paper position opened *before* the split
bar is still in pre-split units: its stop would fire at the halved price and book a fake loss. So,
before the bars since the last run are settled:

* **confirmed split** (`apply_splits`): each such position becomes quantity × ratio, entry, stop,
  target, trail distance, best price and mark ÷ ratio; the cost basis (quantity × entry) and the cash
  are unchanged. Written to the store and audited (``position.split_adjusted``), once per position and
  split (store key `APPLIED_KEY`), so a rerun on the same unadjusted file never applies it twice.
  Fractional results stay exact (a 3-for-2 on 61 shares is 91.5: a broker would pay the half in cash).
* **unconfirmed split, or any bar the quality stage rejected** (`held_cut`): the held symbol's bars
  from the rejected bar on are *not* settled - no stop or target fires on a price Joe cannot trust; the
  position keeps its last mark and the run warns about it, loudly, until the split is confirmed
  (``splits.csv``) or the file is fixed.

Live positions are the broker's, and this module does not change them. What Joe does on a split of a
live holding: a daily run sends no strategy exit for it (a symbol with an unconfirmed jump is excluded
from the run - no signal, no reversal; a confirmed one is analysed on adjusted history, where there
is no jump); the broker re-sizes the position, and the `Reconciler` sees the size Joe did not book as
an unexplained mismatch and halts new entries (fail closed; it never flattens) until it is resolved.
The daemon's bot-side backup stop (`joe.execution.position_monitor`) holds a position whose quotes jump
by a split's factor (no backup exit against a pre-split stop; the broker's stop stays) until the split
is applied to it (`PositionMonitor.apply_split`): `joe.execution.monitor_splits`. A backtest day applies
confirmed splits like a paper run (`joe.runtime.held_quality.follow_splits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from joe.core.events import AuditSink
from joe.portfolio.ledger import PaperLedger, PaperPosition
from joe.portfolio.replay import Mark

APPLIED_KEY = "paper.splits_applied"  # position id -> ["YYYY-MM-DD", ...] splits already applied


@dataclass(frozen=True, slots=True)
class HeldSplit:
    """A confirmed split of a symbol: the bar it takes effect (the first post-split bar) and the price
    factor (2.0 for a 2-for-1, 0.1 for a 1-for-10)."""

    symbol: str
    day: date
    ratio: float


def split_position(pos: PaperPosition, ratio: Decimal) -> PaperPosition:
    """`pos` in post-split units: quantity × ratio, every price level ÷ ratio (cost basis unchanged)."""

    def div(x: Decimal | None) -> Decimal | None:
        return None if x is None else x / ratio

    return replace(
        pos,
        quantity=pos.quantity * ratio,
        entry_price=pos.entry_price / ratio,
        stop_loss=div(pos.stop_loss),
        take_profit=div(pos.take_profit),
        trailing_distance=div(pos.trailing_distance),
        best_price=div(pos.best_price),
        mark=div(pos.mark),
    )


def _ratio(value: float) -> Decimal:
    """The split factor as an exact Decimal (2, 1.5, 0.1): real ratios are small fractions."""
    fr = Fraction(value).limit_denominator(100)
    return Decimal(fr.numerator) / Decimal(fr.denominator)


def apply_splits(
    ledger: PaperLedger,
    marks: dict[str, Mark],
    splits: Iterable[HeldSplit],
    store: Any,
    audit: AuditSink,
) -> list[str]:
    """Adjust every open position opened before a confirmed split of its symbol (module docstring).

    `store` needs ``get_state``/``set_state``/``update_position`` (the `Store`). Returns one line per
    adjustment for the run's warnings. Idempotent: a split already applied to a position is skipped.
    """
    by_symbol: dict[str, list[HeldSplit]] = {}
    for s in splits:
        by_symbol.setdefault(s.symbol, []).append(s)
    if not by_symbol:
        return []
    applied: dict[str, list[str]] = dict(store.get_state(APPLIED_KEY) or {})
    lines: list[str] = []
    for pid, pos in list(ledger.positions.items()):
        for split in sorted(by_symbol.get(pos.symbol, ()), key=lambda s: s.day):
            done = applied.setdefault(pid, [])
            if split.day.isoformat() in done or pos.opened_at.date() >= split.day:
                continue
            r = _ratio(split.ratio)
            new = split_position(pos, r)
            ledger.positions[pid] = new
            if pid in marks:
                marks[pid] = Mark(marks[pid].price / r, marks[pid].ts)
            store.update_position(
                int(pid),
                quantity=new.quantity,
                avg_price=new.entry_price,
                stop_loss=new.stop_loss,
                take_profit=new.take_profit,
                trailing_distance=new.trailing_distance,
                high_water=new.best_price,
            )
            done.append(split.day.isoformat())
            store.set_state(APPLIED_KEY, applied)
            audit.record(
                "position.split_adjusted",
                {
                    "symbol": pos.symbol,
                    "position_id": pid,
                    "split_date": split.day.isoformat(),
                    "ratio": str(r),
                    "quantity": {"from": pos.quantity, "to": new.quantity},
                    "entry_price": {"from": pos.entry_price, "to": new.entry_price},
                    "stop_loss": {"from": pos.stop_loss, "to": new.stop_loss},
                    "take_profit": {"from": pos.take_profit, "to": new.take_profit},
                },
                signal_id=pos.signal_id or None,
            )
            lines.append(
                f"{pos.symbol}: split ×{r} on {split.day} applied to the held position: quantity "
                f"{pos.quantity} → {new.quantity}, entry {pos.entry_price} → {new.entry_price}, stop "
                f"{pos.stop_loss} → {new.stop_loss} (cost basis unchanged)"
            )
            pos = new
    return lines


def held_cut(
    held: Iterable[str], rejected: Mapping[str, date], last_processed: datetime | None
) -> dict[str, date]:
    """Held symbols whose bars from a rejected bar on must not be settled: symbol -> that bar's date.

    `rejected`: symbol -> the first bar the quality stage refused to trust (an unconfirmed split,
    an extreme move, an outlier on the as-of bar...). Bars already processed are not replayed, so
    only a rejected bar after `last_processed` matters.
    """
    out: dict[str, date] = {}
    for sym in held:
        day = rejected.get(sym)
        if day is None:
            continue
        if last_processed is None or day > last_processed.date():
            out[sym] = day
    return out
