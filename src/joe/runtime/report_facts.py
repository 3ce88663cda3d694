"""Turning one run's analysis, portfolio and timings into the `ReportContext` reporting renders."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import pandas as pd

from joe.analysis.pipeline import AnalysisResult
from joe.analysis.regime import RegimeDetector
from joe.core.models import AccountInfo, Fill, Instrument, Position
from joe.reporting.context import (
    DataFindingFacts,
    DataQualityFacts,
    PositionFacts,
    RegimeFacts,
    RegimeInputFacts,
    ReportContext,
    ScoreFacts,
    SignalFacts,
)
from joe.runtime.market import MarketSnapshot

HISTORY_DAYS = 750
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    """Money to the cent, never a negative zero (`-0.0000` in a report reads as a loss)."""
    return value.quantize(CENT, ROUND_HALF_EVEN) + 0


SIGNAL_BARS = 120


def regime_history(snap: MarketSnapshot, as_of: pd.Timestamp) -> pd.DataFrame:
    """S&P 500 and VIX closes with the regime label per date, up to `as_of`, for the regime chart."""
    labels = RegimeDetector().label_history(snap.spx, snap.vix)
    labels = labels.loc[labels.index <= as_of].tail(HISTORY_DAYS)
    out = pd.DataFrame(index=labels.index)
    out["spx_close"] = snap.spx["close"].reindex(labels.index)
    if snap.vix is not None:
        vix = snap.vix["close"] if "close" in snap.vix else snap.vix.iloc[:, 0]
        out["vix_close"] = vix.reindex(labels.index).ffill(limit=3)
    else:
        out["vix_close"] = float("nan")
    out["label"] = labels["label"].astype(str)
    return out


def build_context(
    *,
    run_id: str,
    mode: str,
    broker: str,
    source: str,
    source_description: str,
    started_at: datetime,
    finished_at: datetime,
    snap: MarketSnapshot,
    analysis: AnalysisResult,
    positions: list[Position],
    fills: list[Fill],
    account: AccountInfo,
    equity_curve: pd.DataFrame,
    timings: dict[str, float],
    warnings: list[str],
    top_n: int,
    executions: dict[str, str] | None = None,
    marked_at: dict[str, datetime | None] | None = None,
    price_sources: dict[str, str] | None = None,
) -> ReportContext:
    """Map the run's results onto reporting's plain facts."""
    reg = analysis.regime
    # Only finite numbers are evidence (a VIX before its history starts is absent, not `nan`).
    ev = {
        k: float(v) for k, v in reg.evidence.items() if isinstance(v, int | float) and math.isfinite(float(v))
    }
    instruments: dict[str, Instrument] = snap.instruments
    scores = [
        ScoreFacts(
            s.symbol,
            instruments[s.symbol].name if s.symbol in instruments else s.symbol,
            float(s.total),
            {k: float(v) for k, v in s.components.items()},
            list(s.hits),
        )
        for s in analysis.scores[:top_n]
    ]
    sig_facts = []
    for sig in analysis.signals:
        a = analysis.assessments[sig.signal_id]
        bars = snap.panel.frame(sig.symbol)
        bars = bars.loc[bars.index <= analysis.as_of].tail(SIGNAL_BARS)[["open", "high", "low", "close"]]
        sig_facts.append(
            SignalFacts(
                sig,
                a.grade,
                {k: float(d.score) for k, d in a.dimensions.items()},
                a.veto,
                a.veto_reason or None,
                a.quantity,
                (executions or {}).get(sig.signal_id, ""),
                bars,
            )
        )
    pos_facts = [
        PositionFacts(
            p.symbol,
            p.direction,
            p.quantity,
            p.avg_price,
            p.market_price,
            cents(p.unrealized_pnl),
            p.stop_loss,
            p.take_profit,
            p.opened_at,
            (marked_at or {}).get(p.broker_position_id or ""),
        )
        for p in positions
    ]
    acct: dict[str, Decimal] = {
        "cash": cents(account.cash),
        "equity": cents(account.equity),
        "realized_pnl": cents(account.realized_pnl),
        "unrealized_pnl": cents(account.unrealized_pnl),
    }
    return ReportContext(
        run_id=run_id,
        mode=mode,
        broker=broker,
        source=source,
        source_description=source_description,
        as_of=analysis.as_of.date(),
        started_at=started_at,
        finished_at=finished_at,
        regime=RegimeFacts(reg.label.value, float(reg.confidence), bool(reg.stressed), ev),
        regime_history=regime_history(snap, analysis.as_of),
        top_scores=scores,
        signals=sig_facts,
        positions=pos_facts,
        fills=fills,
        equity_curve=equity_curve,
        account=acct,
        stage_timings=timings,
        warnings=warnings,
        index_name=snap.index_name,
        data_quality=DataQualityFacts(
            snap.quality.checked,
            [
                DataFindingFacts(f.symbol, f.severity, f.check, f.message, f.file, f.row, f.date)
                for f in snap.quality.findings
            ],
        ),
        regime_inputs=[
            RegimeInputFacts(i.name, i.symbol, i.last_date, i.age_days, i.stale, i.proxy, i.age_sessions)
            for i in snap.regime_inputs
        ],
        price_sources=dict(price_sources or {}),
    )
