"""Issue 17, speed without shortcut: the backtest's `PrecomputedRegime.detect` finds each day's row by
binary search instead of filtering the whole index history again, and must give exactly the `Regime`
the general `RegimeDetector.detect` path gives on the same inputs (label, confidence, every evidence
value, the same refusal before ~200 bars), including a VIX that stops early and an index with gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from joe.analysis.regime import RegimeDetector
from joe.backtest.loading import load_history_sync
from joe.backtest.precompute import PrecomputedRegime
from joe.config.schema import ExecutionConfig
from joe.data.errors import InsufficientHistory


def _general(d: PrecomputedRegime, spx: object, vix: object, when: pd.Timestamp) -> str:
    try:
        return repr(RegimeDetector.detect(d, spx, vix, as_of=when))  # type: ignore[arg-type]
    except InsufficientHistory as exc:
        return f"refused: {exc}"


def _fast(d: PrecomputedRegime, spx: object, vix: object, when: pd.Timestamp) -> str:
    try:
        return repr(d.detect(spx, vix, as_of=when))  # type: ignore[arg-type]
    except InsufficientHistory as exc:
        return f"refused: {exc}"


def test_detect_equals_the_general_path_every_day(market_dir: Path) -> None:
    h = load_history_sync(f"csv:{market_dir}", ExecutionConfig())
    d, spx, vix = h.detector, h.snap.spx, h.snap.vix
    kinds = {_fast(d, spx, vix, ts)[:7] for ts in h.panel.dates}
    assert kinds == {"refused", "Regime("}  # days before ~200 bars are refused, later ones labelled
    for ts in h.panel.dates:  # repr: floats to the last bit, NaN equal to NaN
        assert _fast(d, spx, vix, ts) == _general(d, spx, vix, ts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detect_with_gaps_and_a_vix_that_stops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-01-01", periods=420, tz="UTC")
    close = 3000 * np.exp(np.cumsum(rng.normal(0.0003, 0.011, len(days))))
    close[rng.random(len(days)) < 0.05] = np.nan  # missing index closes: the day reads an older row
    spx = pd.DataFrame({"close": close}, index=days)
    vix = pd.Series(18 + 5 * np.sin(np.arange(300) / 15), index=days[:300], name="close")
    d = PrecomputedRegime(spx, vix)
    asked = [*days, days[-1] + pd.Timedelta(days=9), days[0] - pd.Timedelta(days=3)]
    outcomes = [_fast(d, spx, vix, ts) for ts in asked]
    assert any(o.startswith("Regime") for o in outcomes) and any(o.startswith("refused") for o in outcomes)
    for ts, got in zip(asked, outcomes, strict=True):
        assert got == _general(d, spx, vix, ts)
