"""Regime labels on the real 2014-2018 S&P 500 / VIX history, and the detector's contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from joe.analysis.regime import Regime, RegimeDetector, RegimeLabel

from .synth import spx_frame, vix_series

SPX = spx_frame()
VIX = vix_series()


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return RegimeDetector().label_history(SPX, VIX)


def test_calm_2017_is_bull_quiet(history: pd.DataFrame) -> None:
    y = history.loc["2017"]
    assert len(y) > 240
    assert (y["label"] == RegimeLabel.BULL_QUIET).mean() >= 0.95
    assert y["stressed"].mean() <= 0.05
    assert (y["label"] == RegimeLabel.CRISIS).sum() == 0


def test_february_2018_volmageddon_is_stressed(history: pd.DataFrame) -> None:
    week = history.loc["2018-02-05":"2018-02-09"]
    assert len(week) == 5
    assert week["stressed"].all()
    assert (week["label"] == RegimeLabel.CRISIS).all()  # VIX closed 37 on Feb 5
    # The month after the spike stays stressed most of the time.
    assert history.loc["2018-02-05":"2018-03-02", "stressed"].mean() >= 0.9
    # ... and January, before it, was calm.
    assert not history.loc["2018-01-02":"2018-01-26", "stressed"].any()


def test_q4_2018_selloff_is_stressed(history: pd.DataFrame) -> None:
    q4 = history.loc["2018-10-10":"2018-12-31"]
    assert q4["stressed"].mean() >= 0.8
    dec = history.loc["2018-12"]
    assert dec["stressed"].mean() >= 0.9
    assert (dec["label"] == RegimeLabel.BEAR).any()
    assert (dec["label"] == RegimeLabel.CRISIS).any()  # Christmas Eve, VIX 36
    assert history.loc["2018-12-24", "label"] == RegimeLabel.CRISIS


def test_detect_matches_history_row_and_evidence() -> None:
    det = RegimeDetector()
    r = det.detect(SPX, VIX, as_of="2018-12-24")
    assert isinstance(r, Regime)
    assert r.label is RegimeLabel.CRISIS and r.stressed
    assert r.as_of == pd.Timestamp("2018-12-24", tz="UTC")
    assert 0.5 <= r.confidence <= 1.0
    assert r.evidence["vix"] == pytest.approx(36.07)
    assert r.evidence["close"] == pytest.approx(2351.10, abs=0.01)
    assert r.evidence["trend_dev"] < 0
    assert "crisis" in r.describe()
    calm = det.detect(SPX, VIX, as_of="2017-06-15 20:00")
    assert calm.label is RegimeLabel.BULL_QUIET and not calm.stressed
    assert calm.evidence["vix"] < 13


def test_detect_has_no_look_ahead() -> None:
    """The label on a date is the same whether or not the future is in the input."""
    det = RegimeDetector()
    full = det.label_history(SPX, VIX)
    for cut in ["2015-08-24", "2016-02-11", "2018-02-05", "2018-10-11", "2018-12-24"]:
        part = det.label_history(SPX.loc[:cut], VIX.loc[:cut])
        pd.testing.assert_frame_equal(part, full.loc[:cut])
        assert det.detect(SPX, VIX, as_of=cut).label == full.loc[cut, "label"]


def test_confidence_bounds_and_columns(history: pd.DataFrame) -> None:
    assert history["confidence"].between(0.5, 1.0).all()
    assert history["stress"].between(0.0, 1.0).all()
    assert set(history["label"].unique()) <= {lab.value for lab in RegimeLabel}
    # 2013 is warm-up for the 200-day average: the first labelled date is ~200 bars in.
    assert history.index[0] > pd.Timestamp("2013-10-01", tz="UTC")


def test_without_vix_uses_index_only() -> None:
    h = RegimeDetector().label_history(SPX)
    assert np.isnan(h["vix"]).all()
    assert (h.loc["2017", "label"] == RegimeLabel.BULL_QUIET).mean() >= 0.9
    assert h.loc["2018-12", "stressed"].mean() >= 0.8


def test_needs_enough_history() -> None:
    with pytest.raises(ValueError, match="not enough"):
        RegimeDetector().detect(SPX.iloc[:150], VIX)


def test_synthetic_crash_is_crisis_and_rally_is_bull() -> None:
    dates = pd.bdate_range("2010-01-01", periods=400, tz="UTC")
    up = pd.Series(100 * np.exp(np.linspace(0, 0.4, 400)), index=dates)
    vix_low = pd.Series(11.0, index=dates)
    r = RegimeDetector().detect(up, vix_low)
    assert r.label is RegimeLabel.BULL_QUIET and r.confidence > 0.9
    crash = up.copy()
    crash.iloc[-15:] = crash.iloc[-16] * np.exp(np.cumsum(np.full(15, -0.03)))
    vix_hi = vix_low.copy()
    vix_hi.iloc[-15:] = 40.0
    assert RegimeDetector().detect(crash, vix_hi).label is RegimeLabel.CRISIS
