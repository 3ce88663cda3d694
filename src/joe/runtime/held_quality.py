"""What the data-quality stage found, applied to the paper book's held positions before settling.

A confirmed split the history was adjusted for is applied to positions opened before it, and a held
symbol's bars from a bar the stage refused to trust on (an unconfirmed split, an extreme move, an
outlier on the as-of bar...) are not settled: no stop fires on a split-jump (`joe.portfolio.
corporate_actions`). Each is said in the run's warnings.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from joe.core.events import AuditSink
from joe.data.quality import QualityReport
from joe.portfolio import PaperPortfolio
from joe.portfolio.corporate_actions import HeldSplit, apply_splits, held_cut


def follow_splits(pf: PaperPortfolio, quality: QualityReport, store: Any, audit: AuditSink) -> list[str]:
    """Adjust held positions opened before a confirmed split of their symbol (the split the history
    was adjusted for); returns the warnings to show. A backtest day calls this alone: its held bars
    come from the quality-checked panel, where a rejected symbol has no bars to settle on."""
    splits = [HeldSplit(sym, date.fromisoformat(day), ratio) for sym, day, ratio in quality.splits]
    return apply_splits(pf.ledger, pf.marks, splits, store, audit)


def follow_data_quality(
    pf: PaperPortfolio,
    held_history: dict[str, pd.DataFrame],
    quality: QualityReport,
    store: Any,
    audit: AuditSink,
) -> list[str]:
    """Adjust held positions for confirmed splits and cut `held_history` (in place) before rejected
    bars; returns the warnings to show."""
    lines = follow_splits(pf, quality, store, audit)
    held = {p.symbol for p in pf.ledger.positions.values()}
    rejected = {sym: date.fromisoformat(day) for sym, day in quality.rejected_bars().items()}
    for sym, day in held_cut(held, rejected, pf.last_bar_ts()).items():
        frame = held_history.get(sym)
        if frame is not None:
            held_history[sym] = frame.loc[frame.index < pd.Timestamp(day, tz="UTC")]
        why = next(
            (f.check for f in quality.for_symbol(sym) if f.severity == "error" and f.date == day.isoformat()),
            "rejected bar",
        )
        lines.append(
            f"HELD {sym}: its bar of {day} was rejected by the data-quality stage ({why}); the position is "
            f"NOT settled on it or after it (no stop or target fires on a price Joe cannot trust) and keeps "
            f"its last mark - confirm the split in splits.csv or fix the file"
        )
        audit.record("position.settle_held", {"symbol": sym, "from": day.isoformat(), "check": why})
    return lines
