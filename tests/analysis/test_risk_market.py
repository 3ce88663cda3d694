"""The risk stage's market part (`joe.analysis.risk_market`), computed ahead with the market analysis,
gives the very assessment the profiler computes on its own — and is not used for a signal it does not
fit (a broker's grid moved its entry or stop)."""

from __future__ import annotations

import pickle
from dataclasses import replace
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features
from joe.analysis.pipeline import analyse, analyse_market, assess_book
from joe.analysis.regime import RegimeLabel
from joe.analysis.risk import RiskProfiler
from joe.analysis.risk_market import DimensionScore, MarketRisk, market_risk
from joe.core.models import Direction, Position

from .test_risk import _panel, _regime, _signal, cfg

LAST = len(_panel().dates) - 1


@settings(max_examples=60, deadline=None)
@given(
    vol=st.sampled_from([0.005, 0.02, 0.06]),
    volume=st.sampled_from([1e3, 1e5, 1e7]),
    stop_bp=st.integers(5, 2_000),
    long=st.booleans(),
    held=st.booleans(),
    t=st.integers(10, LAST),
)
def test_an_assessment_with_its_market_part_equals_one_without(
    vol: float, volume: float, stop_bp: int, long: bool, held: bool, t: int
) -> None:
    panel = _panel(vol=vol, volume=volume, corr_with_a=True)
    f = Features(panel)
    entry = Decimal(100)
    dist = entry * stop_bp / 10_000
    sig = _signal(
        direction=Direction.LONG if long else Direction.SHORT,
        stop=str(entry - dist if long else entry + dist),
        target=str(entry + 2 * dist if long else entry - 2 * dist),
    )
    book = [Position("B", Decimal(10), Decimal(100))] if held else []
    prof = RiskProfiler(cfg(min_risk_grade="D"))
    regime = _regime(RegimeLabel.RANGE)
    ahead = market_risk(sig, Features(panel), t)  # another Features over the same panel: another process
    got = prof.assess(sig, panel, Decimal(100_000), book, regime, as_of_index=t, features=f, market=ahead)
    want = RiskProfiler(cfg(min_risk_grade="D")).assess(
        sig, panel, Decimal(100_000), book, regime, as_of_index=t, features=Features(panel)
    )
    assert repr(got) == repr(want)
    # It crosses a process boundary as it is (a backtest's worker sends it with the day's signals).
    assert repr(pickle.loads(pickle.dumps(ahead))) == repr(ahead)  # (adv may be NaN: repr, not ==)


def test_a_market_part_computed_for_other_levels_is_not_used() -> None:
    """A broker's grid moves the entry or stop after the market part was computed: the profiler computes
    the dimensions for the levels it sizes on, never the stale ones."""
    panel = _panel(vol=0.02)
    sig = _signal(entry="100", stop="90", target="120")
    wrong = DimensionScore(0.0, "computed for other levels")
    t = len(panel.dates) - 1
    stale = MarketRisk("A", t, Decimal(100), Decimal(99), wrong, wrong, 1e12)
    assert not stale.fits(sig, t) and not replace(stale, stop_loss=Decimal(90), entry=Decimal(101)).fits(
        sig, t
    )
    # Nor one for another day or another symbol with the same levels.
    assert not replace(stale, stop_loss=Decimal(90)).fits(sig, t - 1)
    assert not replace(stale, stop_loss=Decimal(90), symbol="B").fits(sig, t)
    prof = RiskProfiler(cfg(min_risk_grade="D"))
    for other in (
        replace(stale, stop_loss=Decimal(90), row=t - 1),
        replace(stale, stop_loss=Decimal(90), symbol="B"),
    ):
        got = prof.assess(sig, panel, Decimal(100_000), [], _regime(RegimeLabel.RANGE), market=other)
        assert got.dimensions["volatility"] != wrong
    got = prof.assess(sig, panel, Decimal(100_000), [], _regime(RegimeLabel.RANGE), market=stale)
    want = prof.assess(sig, panel, Decimal(100_000), [], _regime(RegimeLabel.RANGE))
    assert repr(got) == repr(want)
    assert got.dimensions["volatility"] != wrong
    # ... and one that fits is what the assessment reports (the market part is really read).
    fits = replace(stale, stop_loss=Decimal(90))
    used = prof.assess(sig, panel, Decimal(100_000), [], _regime(RegimeLabel.RANGE), market=fits)
    assert used.dimensions["volatility"] is wrong and used.dimensions["gap_event"] is wrong


def test_the_market_analysis_carries_each_signals_market_part() -> None:
    """`analyse_market` computes the market part of every raw signal on a panel symbol; `assess_book` on
    it equals `analyse` in one call, and the risk timing counts both parts."""
    from .test_pipeline import CFG, PANEL, SPX, VIX

    panel, spx, vix, config = PANEL, SPX, VIX, CFG
    market = analyse_market(panel, spx, vix, {}, config, "2017-06-30")
    assert market.signals, "the fixture must produce signals for this test to mean anything"
    assert set(market.risk) == {s.signal_id for s in market.signals if s.symbol in panel}
    f = market.features
    assert f is not None
    t = panel.index_at(market.as_of)
    for s in market.signals:
        assert repr(market.risk[s.signal_id]) == repr(market_risk(s, f, t))
    book = assess_book(market, panel, config, Decimal(100_000), features=f)
    whole = analyse(panel, spx, vix, {}, config, Decimal(100_000), [], as_of="2017-06-30")
    assert repr(book.assessments) == repr(whole.assessments)
    assert book.timings["risk"] >= market.timings["risk"] >= 0
    assert np.isfinite(book.timings["risk"])
