"""The facts a run hands to reporting: plain frozen dataclasses the pipeline fills.

Reporting never reaches back into the pipeline, the store or a broker; everything a report,
an AI summary or an alert says comes from a `ReportContext`. Every list/frame field defaults
to empty so a minimal context (run id, mode, dates, regime) is enough to render a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import pandas as pd

from joe.core.models import Direction, Fill, Signal

#: How `SignalFacts.execution` starts when the portfolio opened a position on the signal.
OPENED_PREFIX = "opened "
#: Columns of `ReportContext.regime_history` (index: dates).
REGIME_HISTORY_COLUMNS = ("spx_close", "vix_close", "label")
#: Columns of `SignalFacts.price_history` (index: bar timestamps), as in the broker history frames.
PRICE_HISTORY_COLUMNS = ("open", "high", "low", "close")
#: Columns of `ReportContext.equity_curve`.
EQUITY_CURVE_COLUMNS = ("ts", "equity", "cash")


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass(frozen=True, slots=True)
class RegimeFacts:
    """The detected market regime and the numbers behind it (e.g. vix level, trend slope)."""

    label: str
    confidence: float
    stressed: bool = False
    evidence: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegimeInputFacts:
    """One regime input (S&P 500, VIX): the series used, its last bar and how old it is at as-of."""

    name: str
    symbol: str | None
    last_date: date | None
    age_days: int | None
    stale: bool
    proxy: bool = False
    age_sessions: int | None = None  # NYSE sessions missed (the staleness rule); None: not known


@dataclass(frozen=True, slots=True)
class DataFindingFacts:
    """One data-quality finding: "error" (symbol excluded) or "warning" (flagged), with file and row."""

    symbol: str
    severity: str
    check: str
    message: str
    file: str | None = None
    row: int | None = None
    date: str | None = None


@dataclass(frozen=True, slots=True)
class DataQualityFacts:
    """The data-quality stage's result: how many series were checked and what it found."""

    checked: int = 0
    findings: list[DataFindingFacts] = field(default_factory=list)

    @property
    def excluded(self) -> list[str]:
        return sorted({f.symbol for f in self.findings if f.severity == "error"})

    @property
    def flagged(self) -> list[str]:
        bad = set(self.excluded)
        return sorted({f.symbol for f in self.findings if f.severity == "warning" and f.symbol not in bad})


@dataclass(frozen=True, slots=True)
class ScoreFacts:
    """One scored instrument: total score (0-100), its components and the scans that found it."""

    symbol: str
    name: str
    total: float
    components: dict[str, float] = field(default_factory=dict)
    scans: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SignalFacts:
    """A signal with its risk assessment, sizing decision and recent bars for a chart."""

    signal: Signal
    risk_grade: str
    risk_dimensions: dict[str, float] = field(default_factory=dict)
    vetoed: bool = False
    veto_reason: str | None = None
    quantity: Decimal | None = None
    # What the portfolio did with it, e.g. "opened 62 @ 158.88" or "rejected: buying power exceeded".
    execution: str = ""
    # Last ~120 bars, columns open/high/low/close, DatetimeIndex; frames do not compare with ==.
    price_history: pd.DataFrame = field(default_factory=_empty_frame, compare=False)

    @property
    def opened(self) -> bool:
        """True when the portfolio opened a position on this signal in this run."""
        return self.execution.startswith(OPENED_PREFIX)


@dataclass(frozen=True, slots=True)
class PositionFacts:
    """An open (paper or live) position as shown in the report."""

    symbol: str
    direction: Direction
    quantity: Decimal
    avg_price: Decimal
    market_price: Decimal | None = None
    unrealized_pnl: Decimal = Decimal(0)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    opened_at: datetime | None = None
    # Bar time of the close `market_price` comes from (older than the as-of when the symbol had no bar).
    marked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReportContext:
    """Everything one run produced that a report, AI summary or alert may mention."""

    run_id: str
    mode: str
    broker: str
    source: str
    source_description: str
    as_of: date
    started_at: datetime
    finished_at: datetime
    regime: RegimeFacts
    # index: dates; columns spx_close, vix_close, label
    regime_history: pd.DataFrame = field(default_factory=_empty_frame, compare=False)
    top_scores: list[ScoreFacts] = field(default_factory=list)
    signals: list[SignalFacts] = field(default_factory=list)
    positions: list[PositionFacts] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    # columns ts, equity, cash
    equity_curve: pd.DataFrame = field(default_factory=_empty_frame, compare=False)
    # keys cash, equity, realized_pnl, unrealized_pnl
    account: dict[str, Decimal] = field(default_factory=dict)
    stage_timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # What `regime_history.spx_close` really is (the sources without an index get an equal-weight proxy).
    index_name: str = "S&P 500"
    data_quality: DataQualityFacts = field(default_factory=DataQualityFacts)
    regime_inputs: list[RegimeInputFacts] = field(default_factory=list)
    # symbol -> where its price came from: "ibkr", "capital", a data source, or under broker failover
    # the other broker and its name for the instrument ("capital (AAPL)")
    price_sources: dict[str, str] = field(default_factory=dict)

    def price_source_groups(self) -> list[tuple[str, list[str]]]:
        """`price_sources` grouped: (source, its symbols sorted), the run's own broker first."""
        by: dict[str, list[str]] = {}
        for sym, src in sorted(self.price_sources.items()):
            by.setdefault(src, []).append(sym)
        return sorted(by.items(), key=lambda kv: (kv[0] != self.broker, kv[0]))

    @property
    def duration_s(self) -> float:
        """Wall-clock duration of the run in seconds."""
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def active_signals(self) -> list[SignalFacts]:
        """Signals that passed risk (not vetoed)."""
        return [s for s in self.signals if not s.vetoed]
