"""Issue 14, point 2 and the regime half of point 1: indicators on thin, flat, stale, close-only data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from joe.analysis import indicators as ind
from joe.analysis.features import RANGE_PER_SIGMA, Features
from joe.analysis.panel import Panel
from joe.analysis.regime import RegimeDetector
from joe.analysis.scanner import MarketScanner
from joe.analysis.scoring import ScoringEngine
from joe.data.frames import bars_from_closes
from joe.data.sample import load_sample


def _full_spx() -> pd.DataFrame:
    return load_sample().frames["SPX"]


def _panel(frames: dict[str, pd.DataFrame]) -> Panel:
    return Panel.from_frames(
        {s: f.tz_localize("UTC") if f.index.tz is None else f for s, f in frames.items()}
    )


def _walk(n: int, seed: int = 0, vol: float = 0.015, drift: float = 0.0) -> pd.DataFrame:
    """Daily bars from a Brownian path sampled intraday (so high/low are the real range)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(drift / 78, vol / math.sqrt(78), (n, 78))
    path = 100 * np.exp(np.cumsum(steps.ravel())).reshape(n, 78)
    open_ = np.concatenate([[100.0], path[:-1, -1]])
    df = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(path.max(axis=1), open_),
            "low": np.minimum(path.min(axis=1), open_),
            "close": path[:, -1],
            "volume": rng.integers(1e6, 2e6, n).astype(float),
        },
        index=pd.bdate_range("2020-01-01", periods=n, tz="UTC"),
    )
    return df


# -- regime: stress decays with recovery (Jun–Jul 2009) --------------------------------------------


def test_stress_decays_with_recovery_jun_jul_2009() -> None:
    """Without VIX (none in the sample before 2014), 35 of 39 up-trend days of Jun–Jul 2009 were crisis."""
    hist = RegimeDetector().label_history(_full_spx(), None)
    w = hist.loc["2009-06-01":"2009-07-31"]
    up = (w["trend_dev"] > 0) & (w["sma_slope"] > 0)
    assert int(up.sum()) == 39
    assert int((w["label"][up] == "crisis").sum()) == 0
    assert (w["rally_from_trough"][up] > 0.20).all()  # 20% off the March low: drawdown stress is gone
    assert (w["drawdown_stress"][up] == 0).all()
    # The rule does not hide a crash in progress: Oct–Nov 2008 is still labelled crisis.
    crash = hist.loc["2008-10-01":"2008-11-30"]
    assert (crash["label"] == "crisis").mean() > 0.9


def test_drawdown_stress_is_halved_halfway_to_a_20pct_rally() -> None:
    close = np.concatenate([np.full(260, 100.0), np.linspace(100, 60, 40), np.linspace(60, 66, 10)])
    spx = pd.Series(close, index=pd.bdate_range("2015-01-01", periods=len(close), tz="UTC"))
    row = RegimeDetector().label_history(spx).iloc[-1]
    assert row["rally_from_trough"] == pytest.approx(0.10)
    assert row["drawdown_stress"] == pytest.approx(row["drawdown"] * 0.5)


# -- regime inputs: staleness lowers confidence, never flips the label unannounced ------------------


def _vix(spx: pd.DataFrame) -> pd.Series:
    return load_sample().frames["VIX"]["close"]


@pytest.mark.parametrize("days", [10, 20, 45])
def test_a_stale_vix_keeps_the_label_and_lowers_confidence(days: int) -> None:
    spx = _full_spx().loc[:"2018-06-29"]
    vix = _vix(spx).loc[:"2018-06-29"]
    as_of = spx.index[-1]
    fresh = RegimeDetector().detect(spx, vix, as_of)
    stale_vix = vix.loc[: as_of - pd.Timedelta(days=days)]
    stale = RegimeDetector().detect(spx, stale_vix, as_of)
    carried = RegimeDetector().detect(
        spx, pd.concat([stale_vix, pd.Series([stale_vix.iloc[-1]], [as_of])]), as_of
    )
    assert stale.label == carried.label  # the last VIX is carried, so the label cannot flip silently
    assert stale.evidence["vix_age_days"] >= days - 3
    assert stale.confidence < carried.confidence and stale.confidence < 1.0
    assert stale.evidence["freshness"] < 1.0 and fresh.evidence["freshness"] == 1.0


def test_a_stale_index_keeps_its_label_with_lower_confidence() -> None:
    spx = _full_spx().loc[:"2018-06-29"]
    at_end = RegimeDetector().detect(spx, None, spx.index[-1])
    later = RegimeDetector().detect(spx, None, spx.index[-1] + pd.Timedelta(days=30))
    assert later.label == at_end.label
    assert later.evidence["spx_age_days"] == 30
    # 2018-06-29 + 30 days: 19 NYSE sessions missed (July 4 is none); a month of sessions is the floor.
    assert later.evidence["spx_age_sessions"] == 19
    assert later.confidence == pytest.approx(at_end.confidence * max(0.25, 1 - 19 / 21))


def test_regime_freshness_counts_exchange_sessions_not_calendar_days() -> None:
    """Session 6: a holiday is no missed session, one missing trading day is (it read 'fresh' when
    ages were calendar days with 4 allowed)."""
    spx = _full_spx().loc[:"2018-07-06"]
    vix = _vix(spx)
    det = RegimeDetector()
    # VIX stops on Tuesday 2018-07-03; Wednesday 4 July is a holiday, Thursday a session it missed.
    r = det.detect(spx.loc[:"2018-07-05"], vix.loc[:"2018-07-03"], "2018-07-05")
    assert (r.evidence["vix_age_days"], r.evidence["vix_age_sessions"]) == (2, 1)
    assert r.evidence["freshness"] == pytest.approx(1 - 1 / 21)
    # The index's last bar Tuesday, read on the holiday: nothing missed, full confidence.
    h = det.detect(spx.loc[:"2018-07-03"], vix.loc[:"2018-07-03"], "2018-07-04")
    assert (h.evidence["spx_age_days"], h.evidence["spx_age_sessions"], h.evidence["freshness"]) == (
        1,
        0,
        1.0,
    )
    # Friday's VIX with Monday's index bar: Monday missed; read over the weekend: fresh.
    fri = det.detect(spx.loc[:"2018-07-09"], vix.loc[:"2018-07-06"], "2018-07-09")
    assert fri.evidence["vix_age_sessions"] == 1  # Monday's index bar exists, Monday's VIX does not
    same = det.detect(spx.loc[:"2018-07-06"], vix.loc[:"2018-07-06"], "2018-07-08")
    assert (same.evidence["vix_age_sessions"], same.evidence["freshness"]) == (0, 1.0)


# -- indicators on thin history ---------------------------------------------------------------------


@pytest.mark.parametrize("bars", [40, 120, 251])
def test_no_52_week_label_without_52_weeks_of_history(bars: int) -> None:
    df = _walk(bars, seed=1, drift=0.3)
    df.iloc[-1, df.columns.get_loc("high")] = df["high"].max() * 1.05  # a new high of everything it has
    df.iloc[-1, df.columns.get_loc("close")] = df["high"].iloc[-1]
    res = MarketScanner(min_avg_dollar_volume=0).scan(_panel({"NEW": df}))
    assert "NEW" not in res.rankings["HIGH_VS_52W"]
    assert math.isnan(res.candidates[0].metrics["high_vs_52w"]) if res.candidates else True


def test_a_year_of_history_earns_the_52_week_label() -> None:
    df = _walk(300, seed=1)
    df.iloc[-1, df.columns.get_loc("high")] = df["high"].max() * 1.05
    df.iloc[-1, df.columns.get_loc("close")] = df["high"].iloc[-1]
    res = MarketScanner(min_avg_dollar_volume=0).scan(_panel({"OLD": df}))
    assert res.rankings["HIGH_VS_52W"] == ["OLD"]


def test_relative_volume_needs_its_20_day_window() -> None:
    df = _walk(15, seed=2)
    res = MarketScanner(min_avg_dollar_volume=0).scan(_panel({"YNG": df}))
    assert res.rankings["UNUSUAL_VOLUME"] == []


@pytest.mark.parametrize("n", [15, 30, 200])
@pytest.mark.parametrize("price", [1.0, 57.25, 1e4])
def test_rsi_of_a_flat_series_is_undefined_not_zero(n: int, price: float) -> None:
    out = ind.rsi(np.full(n, price))
    assert np.isnan(out).all()


def test_rsi_after_a_flat_stretch_is_undefined_then_recovers() -> None:
    c = np.concatenate([100 + np.cumsum(np.random.default_rng(0).normal(0, 1, 50)), np.full(20, 90.0)])
    c = np.concatenate([c, [91.0, 92.0]])
    out = ind.rsi(c)
    assert np.isnan(out[50 + 14 : 70]).all()  # a flat 14-bar window: no reading
    assert np.isfinite(out[-1]) and out[-1] > 0


def test_a_flat_series_scores_no_momentum_bias() -> None:
    flat = pd.DataFrame(
        {"open": 50.0, "high": 50.0, "low": 50.0, "close": 50.0, "volume": 1e6},
        index=pd.bdate_range("2020-01-01", periods=260, tz="UTC"),
    )
    (s,) = ScoringEngine().score(_panel({"FLAT": flat}), ["FLAT"])
    assert s.details["rsi"] != 0 and math.isnan(s.details["rsi"])
    assert s.components["momentum"] == pytest.approx(50.0)


# -- close-only series: range and gap risk estimated, unknown volume left out -----------------------


def test_close_only_atr_is_estimated_from_close_to_close_volatility() -> None:
    real = _walk(2000, seed=3)
    closes_only = bars_from_closes(real["close"])
    p = _panel({"OHLC": real, "CLO": closes_only})
    f = Features(p)
    assert f.close_only("CLO") and not f.close_only("OHLC")
    t = p.n_dates - 1
    true_atr = np.nanmean(f.atr("OHLC")[200:])
    naive = np.nanmean(
        ind.atr(
            closes_only["high"].to_numpy(), closes_only["low"].to_numpy(), closes_only["close"].to_numpy()
        )[200:]
    )
    est = np.nanmean(f.atr("CLO")[200:])
    assert naive / true_atr < 0.7  # the issue's ~0.56x: close-only bars understate the range
    assert est / true_atr == pytest.approx(1.0, abs=0.15)
    assert f.atr("CLO")[t] == pytest.approx(
        RANGE_PER_SIGMA * ind.realised_vol(real["close"].to_numpy(), 14, 1)[t] * real["close"].iloc[-1]
    )


def test_close_only_gap_risk_is_estimated_not_zero() -> None:
    closes_only = bars_from_closes(_walk(300, seed=4)["close"])
    f = Features(_panel({"CLO": closes_only}))
    p95, estimated = f.gap_p95("CLO", 299)
    assert estimated and p95 > 0.005
    assert (np.nan_to_num(f.gaps("CLO")[1:]) == 0).all()  # what the bars alone would have said


def test_unknown_volume_is_left_out_of_the_score_not_neutral_50() -> None:
    real = _walk(300, seed=5, drift=0.5)
    no_vol = real.assign(volume=np.nan)
    p = _panel({"VOL": real, "NOVOL": no_vol})
    scores = {s.symbol: s for s in ScoringEngine().score(p, ["VOL", "NOVOL"])}
    assert math.isnan(scores["NOVOL"].components["volume"])
    c = scores["NOVOL"].components
    w = ScoringEngine().weights
    known = {k: v for k, v in c.items() if not math.isnan(v)}
    assert scores["NOVOL"].total == pytest.approx(
        sum(w[k] * v for k, v in known.items()) / sum(w[k] for k in known), abs=1e-3
    )
