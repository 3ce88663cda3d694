"""`analyse` end to end on a universe driven by the real S&P 500, with the real VIX."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from joe.analysis.panel import Panel
from joe.analysis.pipeline import STAGES, analyse
from joe.analysis.regime import RegimeLabel
from joe.brokers.base import Sentiment
from joe.config.schema import ExecutionConfig, PipelineConfig
from joe.core.models import Direction, Position

from .synth import spx_frame, vix_series

SPX = spx_frame()
VIX = vix_series()
CFG = ExecutionConfig(
    pipeline=PipelineConfig.model_validate({"min_score": 50, "min_avg_dollar_volume": Decimal(100_000)})
)


def _universe(n: int = 60, seed: int = 17) -> Panel:
    """Synthetic stocks with market beta to the real S&P 500 daily returns, on its real dates."""
    rng = np.random.default_rng(seed)
    spx_ret = np.diff(np.log(SPX["close"].to_numpy()), prepend=np.nan)
    spx_ret[0] = 0.0
    beta = rng.uniform(0.5, 1.8, n)
    idio = rng.normal(rng.normal(0, 0.0005, n), rng.uniform(0.005, 0.02, n), (len(spx_ret), n))
    close = rng.uniform(10, 300, n) * np.exp(np.cumsum(spx_ret[:, None] * beta + idio, axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.004, close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, close.shape)))
    volume = rng.lognormal(13, 0.6, close.shape)
    return Panel(SPX.index, [f"SYN{j:02d}" for j in range(n)], open_, high, low, close, volume)


PANEL = _universe()


def test_calm_2017_run_produces_sized_graded_signals() -> None:
    res = analyse(PANEL, SPX, VIX, {}, CFG, Decimal(100_000), [], as_of="2017-06-30")
    assert res.regime.label is RegimeLabel.BULL_QUIET
    assert res.as_of == PANEL.dates[PANEL.index_at("2017-06-30")]
    assert tuple(res.timings) == STAGES and all(v >= 0 for v in res.timings.values())
    assert res.scan.candidates and res.scores
    assert res.signals, "expected at least one signal on a 60-stock universe"
    assert len(res.signals) <= CFG.pipeline.max_signals
    for s in res.signals:
        a = res.assessments[s.signal_id]
        assert s.quantity == a.quantity and s.risk_grade == a.grade
        assert s.as_of == res.as_of.to_pydatetime()
        assert s.score is not None and s.score >= 50
    assert res.approved and all(res.assessments[s.signal_id].approved for s in res.approved)
    # Approved trades respect the per-trade risk budget.
    for s in res.approved:
        risk = abs(s.entry - s.stop_loss) * (s.quantity or 0)
        assert risk <= Decimal(100_000) * CFG.risk.risk_per_trade_pct / 100


def test_crisis_day_vetoes_every_long() -> None:
    res = analyse(PANEL, SPX, VIX, {}, CFG, Decimal(100_000), [], as_of="2018-12-24")
    assert res.regime.label is RegimeLabel.CRISIS
    assert all(s.direction is Direction.SHORT for s in res.approved)
    for s in res.signals:
        if s.direction is Direction.LONG:
            assert res.assessments[s.signal_id].veto


def test_analysis_at_a_date_ignores_the_future() -> None:
    cut = "2018-03-29"
    full = analyse(PANEL, SPX, VIX, {}, CFG, Decimal(50_000), [], as_of=cut)
    part = analyse(PANEL.truncate(cut), SPX.loc[:cut], VIX.loc[:cut], {}, CFG, Decimal(50_000), [])
    assert full.regime == part.regime
    assert full.scan.rankings == part.scan.rankings
    assert [(s.symbol, s.total) for s in full.scores] == [(s.symbol, s.total) for s in part.scores]
    assert full.signals == part.signals
    assert full.assessments == part.assessments


def test_sentiment_open_positions_and_book_limits() -> None:
    base = analyse(PANEL, SPX, VIX, {}, CFG, Decimal(100_000), [], as_of="2017-06-30")
    assert base.signals
    sym = base.signals[0].symbol
    held = [Position(sym, Decimal(5), Decimal(10))]
    res = analyse(
        PANEL, SPX, VIX, {sym: Sentiment(sym, 50, 50)}, CFG, Decimal(100_000), held, as_of="2017-06-30"
    )
    mine = [s for s in res.signals if s.symbol == sym]
    assert all(res.assessments[s.signal_id].veto for s in mine)
    one_slot = CFG.model_copy(update={"risk": CFG.risk.model_copy(update={"max_positions": 1})})
    capped = analyse(PANEL, SPX, VIX, {}, one_slot, Decimal(100_000), [], as_of="2017-06-30")
    assert len(capped.approved) <= 1


@pytest.mark.parametrize("as_of", ["2015-08-24", "2016-02-11", "2018-02-05"])
def test_runs_across_regimes(as_of: str) -> None:
    res = analyse(PANEL, SPX, VIX, {}, CFG, Decimal(100_000), [], as_of=as_of)
    assert res.regime.stressed
    assert res.total_seconds > 0
