"""The data-quality stage's vocabulary: its thresholds (`QualityConfig`), what it finds about one series
(`Finding`), the run's summary (`QualityReport`) and the repaired arrays it hands on (`QualityResult`).

The checks themselves are in `joe.data.quality`, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

FIELDS = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")

# Error checks that name a bar whose prices cannot be trusted (a held position is not settled on it).
BAR_REJECTS = frozenset(
    {"unconfirmed_split", "extreme_move", "last_bar_outlier", "non_finite", "non_positive", "volume_missing"}
)

# locate(symbol, bar timestamp) -> (file name or None, 1-based line in that file or None)
Locator = Callable[[str, pd.Timestamp], tuple[str | None, int | None]]


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the quality checks (see the module docstring)."""

    outlier_k: float = 10.0
    outlier_min_move: float = 0.10
    extreme_ratio: float = 5.0
    # A jump undone by the next bar within 3 × this (log) is a bad tick; split rules: joe.data.splits.
    split_tolerance: float = 0.03
    stale_sessions: int = 3
    close_only_share: float = 0.95
    # Scoring needs a 50-bar average (`joe.analysis.scoring._readings`): fewer bars are never scored.
    min_scored_bars: int = 50
    max_rows_listed: int = 5


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one symbol's data. `severity` is "error" (excluded) or "warning" (flagged)."""

    symbol: str
    severity: str
    check: str
    message: str
    file: str | None = None
    row: int | None = None
    date: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "severity": self.severity,
            "check": self.check,
            "message": self.message,
            "file": self.file,
            "row": self.row,
            "date": self.date,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Finding:
        return cls(
            str(d["symbol"]),
            str(d["severity"]),
            str(d["check"]),
            str(d["message"]),
            d.get("file"),
            d.get("row"),
            d.get("date"),
        )

    def line(self) -> str:
        """One readable line: symbol, where, what."""
        where = self.file or ""
        if self.row is not None:
            where += f" row {self.row}" if where else f"row {self.row}"
        if self.date and not where:
            where = self.date
        elif self.date:
            where += f" ({self.date})"
        return f"{self.symbol} [{self.severity}] {self.check}: {self.message}" + (
            f" — {where}" if where else ""
        )


@dataclass
class QualityReport:
    """All findings of a run's data, with the symbols checked."""

    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    # Splits the history was adjusted for: (symbol, ISO date of the first post-split bar, price factor).
    splits: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def excluded(self) -> list[str]:
        """Symbols with at least one error (left out of the run)."""
        return sorted({f.symbol for f in self.findings if f.severity == "error"})

    @property
    def flagged(self) -> list[str]:
        """Symbols kept with at least one warning."""
        bad = set(self.excluded)
        return sorted({f.symbol for f in self.findings if f.severity == "warning" and f.symbol not in bad})

    def extend(self, other: QualityReport | Sequence[Finding]) -> None:
        if isinstance(other, QualityReport):
            self.findings.extend(other.findings)
            self.checked += other.checked
            self.splits.extend(other.splits)
        else:
            self.findings.extend(other)

    def rejected_bars(self) -> dict[str, str]:
        """Symbol -> ISO date of the first bar an error finding refused to trust (`BAR_REJECTS`)."""
        out: dict[str, str] = {}
        for f in self.findings:
            if f.severity == "error" and f.check in BAR_REJECTS and f.date is not None:
                out[f.symbol] = min(out.get(f.symbol, f.date), f.date)
        return out

    def for_symbol(self, symbol: str) -> list[Finding]:
        return [f for f in self.findings if f.symbol == symbol]

    def summary(self) -> str:
        """One line for the console: counts and the kinds found."""
        if not self.findings:
            return f"data quality: {self.checked} series checked, no findings"
        kinds: dict[str, int] = {}
        for f in self.findings:
            kinds[f.check] = kinds.get(f.check, 0) + 1
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        return (
            f"data quality: {self.checked} series checked, {len(self.excluded)} excluded (errors), "
            f"{len(self.flagged)} flagged (warnings): {detail}"
        )


@dataclass
class QualityResult:
    """Repaired arrays, which columns to keep, and the report."""

    fields: dict[str, np.ndarray]
    keep: np.ndarray
    report: QualityReport
    adjusted: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
