"""`analyse`: Regime → Scan → Score → Strategy → Risk, as one pure call with per-stage timings.

Nothing here does I/O: frames and config in, an `AnalysisResult` out. Signals come back with the
risk profiler's quantity and grade filled in; `approved` holds the ones not vetoed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.regime import Regime, RegimeDetector
from joe.analysis.risk import RiskAssessment, RiskProfiler
from joe.analysis.risk_market import MarketRisk, market_risk
from joe.analysis.scanner import MarketScanner, ScanResult
from joe.analysis.scoring import InstrumentScore, ScoringEngine
from joe.analysis.strategies.engine import StrategyEngine
from joe.brokers.base import Sentiment
from joe.config.schema import ExecutionConfig
from joe.core.grid import signal_on_grid
from joe.core.models import Instrument, Position, Signal

STAGES: tuple[str, ...] = ("regime", "scan", "score", "strategy", "risk")


@dataclass(frozen=True)
class AnalysisResult:
    """Everything one analysis run produced, with the seconds each stage took."""

    as_of: pd.Timestamp
    regime: Regime
    scan: ScanResult
    scores: list[InstrumentScore]  # the best max(pipeline.top_n, the strategies' top_n), best first
    signals: list[Signal]
    assessments: dict[str, RiskAssessment]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def approved(self) -> list[Signal]:
        """Signals the risk profiler sized and did not veto, best first."""
        return [s for s in self.signals if self.assessments[s.signal_id].approved]

    @property
    def total_seconds(self) -> float:
        return sum(self.timings.values())


@dataclass(frozen=True)
class MarketAnalysis:
    """The book-free part of one analysis: Regime → Scan → Score → Strategy at one date.

    It depends on the market up to `as_of` only (no equity, no positions), so a backtest may compute
    it in another process ahead of the book (`joe.backtest.feed`). `signals` are the strategies'
    raw signals, unsized; `timings` holds the four stages' wall seconds.
    """

    as_of: pd.Timestamp
    regime: Regime
    scan: ScanResult
    scores: list[InstrumentScore]
    signals: list[Signal]
    timings: dict[str, float] = field(default_factory=dict)
    # The indicators the stages read (the risk stage reads them too); not sent between processes.
    features: Features | None = field(default=None, compare=False, repr=False)
    # signal_id → the signal's market-only risk dimensions (`joe.analysis.risk_market`): the risk
    # stage's book-free part, computed here so a backtest's worker does it ahead of the book.
    risk: dict[str, MarketRisk] = field(default_factory=dict, compare=False, repr=False)

    def portable(self) -> MarketAnalysis:
        """This analysis to send to another process: without its `features`, its scan without the panel's
        symbol list and map (500 strings a day to pickle; the receiver has the panel: `on_panel`) and its
        scan metrics (1-D float64 arrays over the panel's symbols) as the rows of one array (one array to
        pickle a day, not one per metric)."""
        m = self.scan.metrics
        metrics: Mapping[str, np.ndarray] = m
        if m and all(
            a.dtype == np.float64 and a.shape == (len(self.scan.panel_symbols),) for a in m.values()
        ):
            metrics = _Rows(tuple(m), np.stack(list(m.values())))
        scan = dataclasses.replace(self.scan, panel_symbols=(), col_of={}, metrics=metrics)
        return dataclasses.replace(self, scan=scan, features=None)

    def on_panel(self, panel: Panel, features: Features | None = None) -> MarketAnalysis:
        """A `portable` analysis back on the `panel` (and `features`) it was computed on: the scan's
        symbol list, map and metrics are as `analyse_market` returns them (the same values)."""
        m = self.scan.metrics
        metrics = dict(m.items()) if isinstance(m, _Rows) else m
        scan = dataclasses.replace(
            self.scan, panel_symbols=panel.symbols, col_of=panel.column_map, metrics=metrics
        )
        return dataclasses.replace(self, scan=scan, features=features)


class _Rows(Mapping[str, np.ndarray]):
    """name → row of one 2-D array (`MarketAnalysis.portable`'s scan metrics, as sent)."""

    def __init__(self, names: tuple[str, ...], rows: np.ndarray) -> None:
        self.names, self.rows = names, rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.rows[self.names.index(name)]  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def analyse(
    panel: Panel,
    spx: pd.DataFrame | pd.Series,
    vix: pd.DataFrame | pd.Series | None,
    sentiment: Mapping[str, Sentiment] | None,
    config: ExecutionConfig,
    equity: Decimal,
    open_positions: Sequence[Position] = (),
    as_of: datetime | pd.Timestamp | str | None = None,
    *,
    watchlists: Mapping[str, Sequence[str]] | None = None,
    instruments: Mapping[str, Instrument] | None = None,
    scans: Sequence[str] | None = None,
    detector: RegimeDetector | None = None,
    scorer: ScoringEngine | None = None,
    engine: StrategyEngine | None = None,
    features: Features | None = None,
) -> AnalysisResult:
    """Run the whole analysis at `as_of` (the panel's last date when None): `analyse_market`, then
    `assess_book` on its signals.

    `spx`/`vix` are the index history and VIX closes for the regime; `sentiment` the client
    positioning by symbol (may be empty); `instruments` give lot sizes for sizing. `features` may be
    a `Features` over a longer panel with the same symbols (a backtest computes every indicator once
    over the whole history; they are causal, so reading row `t` sees nothing after it).
    """
    market = analyse_market(
        panel,
        spx,
        vix,
        sentiment,
        config,
        as_of,
        watchlists=watchlists,
        scans=scans,
        detector=detector,
        scorer=scorer,
        engine=engine,
        features=features,
    )
    return assess_book(
        market, panel, config, equity, open_positions, instruments=instruments, features=market.features
    )


def analyse_market(
    panel: Panel,
    spx: pd.DataFrame | pd.Series,
    vix: pd.DataFrame | pd.Series | None,
    sentiment: Mapping[str, Sentiment] | None,
    config: ExecutionConfig,
    as_of: datetime | pd.Timestamp | str | None = None,
    *,
    watchlists: Mapping[str, Sequence[str]] | None = None,
    scans: Sequence[str] | None = None,
    detector: RegimeDetector | None = None,
    scorer: ScoringEngine | None = None,
    engine: StrategyEngine | None = None,
    features: Features | None = None,
) -> MarketAnalysis:
    """Regime → Scan → Score → Strategy at `as_of`: the part of `analyse` that reads no book."""
    pcfg = config.pipeline
    timings: dict[str, float] = {}
    t = panel.index_at(as_of)
    date = panel.dates[t]

    t0 = time.perf_counter()
    regime = (detector or RegimeDetector()).detect(spx, vix, as_of=date)
    t1 = time.perf_counter()
    timings["regime"] = t1 - t0

    scanner = MarketScanner(
        watchlists=watchlists,
        min_price=float(pcfg.min_price),
        min_avg_dollar_volume=float(pcfg.min_avg_dollar_volume),
    )
    # With a backtest's `features` (over the whole history), the scan reads row t of metrics computed
    # once for every row; a run computes its one row.
    metrics = features.scan_metrics(t) if features is not None else None
    scan = scanner.scan(panel, scans=scans, as_of=date, metrics=metrics)
    t2 = time.perf_counter()
    timings["scan"] = t2 - t1

    features = features if features is not None else Features(panel)
    strat = engine or StrategyEngine.from_config(pcfg)
    # Only the best scores are read (the strategies' top_n, the report's pipeline.top_n): only they
    # are built, the same as the head of the full list.
    scores = (scorer or ScoringEngine()).score(
        panel,
        scan,  # read as arrays: the candidate objects are not built
        sentiment,
        as_of_index=t,
        features=features,
        limit=max(strat.top_n, pcfg.top_n),
    )
    t3 = time.perf_counter()
    timings["score"] = t3 - t2

    raw_signals = strat.run(panel, scores, regime, as_of_index=t, features=features)
    t4 = time.perf_counter()
    timings["strategy"] = t4 - t3
    # The risk stage's market part (its book part: `assess_book`); a symbol outside the panel has none.
    risk = {s.signal_id: market_risk(s, features, t) for s in raw_signals if s.symbol in panel}
    timings["risk"] = time.perf_counter() - t4
    return MarketAnalysis(date, regime, scan, scores, raw_signals, timings, features, risk)


# Every field of `Signal` in declaration order (all are init fields: `sized` builds one positionally).
_SIGNAL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Signal))
if not all(f.init for f in dataclasses.fields(Signal)):  # pragma: no cover - a change to Signal
    raise TypeError("pipeline.sized passes every field of Signal to its constructor")
_signal_values = operator.attrgetter(*_SIGNAL_FIELDS)
_QUANTITY, _GRADE = _SIGNAL_FIELDS.index("quantity"), _SIGNAL_FIELDS.index("risk_grade")


def sized(sig: Signal, quantity: Decimal, risk_grade: str) -> Signal:
    """`dataclasses.replace(sig, quantity=quantity, risk_grade=risk_grade)`: the same constructor on the
    same values (its geometry check included), without `replace`'s walk over the dataclass's fields on
    every call (the risk stage sizes every signal of every day). tests/analysis/test_pipeline_sized.py."""
    values = list(_signal_values(sig))
    values[_QUANTITY] = quantity
    values[_GRADE] = risk_grade
    return Signal(*values)


def assess_book(
    market: MarketAnalysis,
    panel: Panel,
    config: ExecutionConfig,
    equity: Decimal,
    open_positions: Sequence[Position] = (),
    *,
    instruments: Mapping[str, Instrument] | None = None,
    features: Features | None = None,
) -> AnalysisResult:
    """Risk: `market`'s signals sized on `equity` and judged against `open_positions` (the book part
    of `analyse`). `panel` is the one `market` was computed on; `features` its indicators (None: built
    from `panel`)."""
    t4 = time.perf_counter()
    t = panel.index_at(market.as_of)
    features = features if features is not None else Features(panel)
    profiler = RiskProfiler(config.risk)
    instruments = instruments or {}
    signals: list[Signal] = []
    assessments: dict[str, RiskAssessment] = {}
    # Approved signals join the book as the run goes, so later ones see their concentration.
    book = list(open_positions)
    for sig in market.signals:
        inst = instruments.get(sig.symbol)
        if inst is not None and inst.broker_rules:  # the broker's price grid, before sizing on it
            with contextlib.suppress(ValueError):  # levels collapsing on the grid: the book refuses it
                sig = signal_on_grid(sig, inst.tick_size)
        a = profiler.assess(
            sig,
            panel,
            equity,
            book,
            market.regime,
            instrument=inst,
            as_of_index=t,
            features=features,
            market=market.risk.get(sig.signal_id),
        )
        assessments[sig.signal_id] = a
        signals.append(sized(sig, a.quantity, a.grade))
        if a.approved:
            book.append(
                Position(sig.symbol, a.quantity * sig.direction.sign, sig.entry, signal_id=sig.signal_id)
            )
    timings = dict(market.timings)
    # The stage's whole time: its market part (with the market analysis, maybe in another process) and
    # its book part here.
    timings["risk"] = timings.get("risk", 0.0) + time.perf_counter() - t4

    return AnalysisResult(
        as_of=market.as_of,
        regime=market.regime,
        scan=market.scan,
        scores=market.scores,
        signals=signals,
        assessments=assessments,
        timings=timings,
    )
