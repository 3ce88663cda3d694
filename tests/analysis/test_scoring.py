"""ScoringEngine: bias, components, sentiment handling and weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from joe.analysis.panel import Panel
from joe.analysis.scanner import ScanCandidate
from joe.analysis.scoring import DEFAULT_WEIGHTS, ScoringEngine
from joe.brokers.base import Sentiment
from joe.core.models import Direction

from .synth import random_walk_panel


def _trend_panel() -> Panel:
    n = 260
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2018-01-01", periods=n, tz="UTC")
    up = 50 * np.exp(np.cumsum(0.003 + rng.normal(0, 0.008, n)))
    down = 50 * np.exp(np.cumsum(-0.003 + rng.normal(0, 0.008, n)))
    flat = 50 * np.exp(np.cumsum(rng.normal(0, 0.008, n)))
    close = np.column_stack([up, down, flat])
    open_ = np.vstack([close[:1], close[:-1]])
    high, low = np.maximum(open_, close) * 1.005, np.minimum(open_, close) * 0.995
    vol = np.full_like(close, 1e6)
    return Panel(dates, ["UP", "DOWN", "FLAT"], open_, high, low, close, vol)


def test_uptrend_scores_long_downtrend_short_both_high() -> None:
    p = _trend_panel()
    scores = {s.symbol: s for s in ScoringEngine().score(p, ["UP", "DOWN", "FLAT"])}
    up, down = scores["UP"], scores["DOWN"]
    assert up.direction is Direction.LONG and down.direction is Direction.SHORT
    assert up.components["trend"] > 75 and down.components["trend"] > 75
    assert up.components["momentum"] > 50 and down.components["momentum"] > 50
    assert up.total > scores["FLAT"].total and down.total > scores["FLAT"].total
    for s in scores.values():
        assert 0 <= s.total <= 100
        assert set(s.components) == set(DEFAULT_WEIGHTS)
        assert all(0 <= v <= 100 for v in s.components.values())
        assert s.components["sentiment"] == 50.0  # no data → neutral
        expected = sum(DEFAULT_WEIGHTS[k] * v for k, v in s.components.items())
        assert s.total == pytest.approx(expected, abs=1e-3)


def test_sentiment_contrarian_and_confirming() -> None:
    p = _trend_panel()
    crowd_long = {"UP": Sentiment("UP", 85.0, 15.0)}
    base = ScoringEngine().score(p, ["UP"])[0]
    contra = ScoringEngine().score(p, ["UP"], crowd_long)[0]
    confirm = ScoringEngine(sentiment_mode="confirming").score(p, ["UP"], crowd_long)[0]
    assert contra.components["sentiment"] < 10 < 90 < confirm.components["sentiment"]
    assert contra.total < base.total < confirm.total
    assert contra.details["sentiment_net_long"] == pytest.approx(0.70)
    # Contrarian favours the side the crowd is *not* on: a crowded short scores low for a SHORT bias.
    crowd_short = {"DOWN": Sentiment("DOWN", 20.0, 80.0)}
    down = ScoringEngine().score(p, ["DOWN"], crowd_short)[0]
    assert down.direction is Direction.SHORT and down.components["sentiment"] < 50


def test_results_sorted_skips_unknown_and_short_history() -> None:
    p = random_walk_panel(8, n_dates=120, n_symbols=10)
    cands = [ScanCandidate(s, ("TOP_PERC_GAIN",), {}) for s in p.symbols] + [ScanCandidate("NOPE", (), {})]
    out = ScoringEngine().score(p, cands)
    assert [s.total for s in out] == sorted((s.total for s in out), reverse=True)
    assert "NOPE" not in {s.symbol for s in out}
    assert all(s.hits == ("TOP_PERC_GAIN",) for s in out)
    # Fewer than 50 bars: no 50-day SMA, no score.
    assert ScoringEngine().score(p, p.symbols, as_of_index=30) == []


def test_score_at_past_index_ignores_the_future() -> None:
    p = random_walk_panel(9, n_dates=260, n_symbols=8, nan_frac=0.05)
    t = 200
    full = ScoringEngine().score(p, p.symbols, as_of_index=t)
    part = ScoringEngine().score(p.head(t + 1), p.symbols)
    assert [(s.symbol, s.total, s.components) for s in full] == [
        (s.symbol, s.total, s.components) for s in part
    ]


def test_weights_validation_and_normalisation() -> None:
    with pytest.raises(ValueError, match="unknown"):
        ScoringEngine(weights={"astrology": 1.0})
    with pytest.raises(ValueError):
        ScoringEngine(weights={"trend": 0.0})
    eng = ScoringEngine(weights={"trend": 2.0, "momentum": 2.0})
    assert eng.weights["trend"] == 0.5 and eng.weights["sentiment"] == 0.0
