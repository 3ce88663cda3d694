"""`RegimeDetector`: S&P 500 trend and volatility plus VIX → a labelled market regime.

Evidence, for each date (all causal — only bars up to that date are used):
  * trend: close vs its 200-day SMA, and the 20-day slope of the 50-day SMA;
  * VIX level, its percentile over the last year, and its 5-day change;
  * 20-day realised volatility of the index (annualised);
  * drawdown from the 252-day closing high, decayed by the recovery since the trough (below).

Recovery rule (stress decays with recovery): the drawdown sub-score uses
``drawdown × max(0, 1 − rally / 20%)``, where *rally* is the close's rise from the lowest close
since the 252-day peak. A market that has rallied 20% off its trough (the conventional start of a
new bull market) carries no drawdown stress any more, however far below its old peak it still is;
halfway there, half of it. Without this, a drawdown kept full weight for a year after the peak:
in Jun–Jul 2009 (no VIX in the sample before 2014) 35 of 39 days with the S&P 500 above its
200-day SMA and a rising 50-day SMA were labelled crisis; with it, none are
(`tests/analysis/test_regime_quality.py`), while Oct–Nov 2008 stays crisis.

Freshness: VIX is aligned to the index dates by carrying its last close forward (so a VIX that stops
updating never flips the label silently) and each date records ``vix_age_days``. `detect` also
records ``spx_age_days`` (the index's last bar vs the as-of date), and both as ``*_age_sessions``:
New York Stock Exchange sessions missed (exchange-calendars; weekends and holidays are none). An
input more than `stale_after_sessions` (0) sessions old multiplies the confidence by
``max(0.25, 1 − (sessions − 0) / 21)`` (21 sessions ≈ a month); the runtime warns about it and the
report shows each input's age. A long weekend never lowers confidence; one missed session does.

A *stress* score in 0..1 is the weighted mean of five sub-scores, each mapped linearly onto 0..1
between a calm and a stressed anchor (VIX 12→30, VIX percentile 0.5→1, VIX 5-day change 0→+50%,
realised vol 10%→30%, drawdown 0→15%). The anchors are the conventional readings (VIX below ~12-15
is calm, above 30 is panic); they are config, not fitted to any period. Where VIX is missing its
sub-scores drop out and the others are re-weighted.

Labels, first rule that matches:
  1. CRISIS: VIX >= 30, or stress >= 0.70.
  2. BEAR: close below the 200-day SMA and the 50-day SMA falling.
  3. BULL_*: close above the 200-day SMA and the 50-day SMA rising → BULL_VOLATILE when VIX >= 20
     or stress >= 0.40, else BULL_QUIET.
  4. RANGE: everything else (trend signals disagree).
A date is *stressed* when its label is BULL_VOLATILE, BEAR or CRISIS, or its stress is >= 0.40
(a choppy, volatile range).
Confidence is 0.5 + 0.5 × the margin by which the rule held (distance from its thresholds, scaled
to 0..1), so a label barely over a boundary has confidence ~0.5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from joe.analysis import indicators as ind
from joe.analysis.panel import to_utc_index, to_utc_timestamp
from joe.data.calendars import sessions_after_many
from joe.data.errors import InsufficientHistory
from joe.data.regime_inputs import REGIME_CALENDAR

_DAY_NS = 86_400 * 10**9
_ZERO = timedelta(0)


class RegimeLabel(StrEnum):
    """Market regimes, from calm to panic."""

    BULL_QUIET = "bull_quiet"
    BULL_VOLATILE = "bull_volatile"
    RANGE = "range"
    BEAR = "bear"
    CRISIS = "crisis"


STRESSED_LABELS = frozenset({RegimeLabel.BULL_VOLATILE, RegimeLabel.BEAR, RegimeLabel.CRISIS})


@dataclass(frozen=True)
class RegimeConfig:
    """Windows, anchors and thresholds of the detector (see the module docstring)."""

    trend_sma: int = 200
    slope_sma: int = 50
    slope_window: int = 20
    rv_window: int = 20
    vix_pct_window: int = 252
    vix_change_window: int = 5
    drawdown_window: int = 252
    vix_calm: float = 12.0
    vix_crisis: float = 30.0
    vix_elevated: float = 20.0
    vix_pct_anchor: float = 0.5
    vix_change_stressed: float = 0.5
    rv_calm: float = 0.10
    rv_stressed: float = 0.30
    drawdown_stressed: float = 0.15
    stress_crisis: float = 0.70
    stress_volatile: float = 0.40
    recovery_rally: float = 0.20  # a 20% rally off the trough removes the drawdown's stress
    stale_after_sessions: int = 0  # same rule as joe.data.regime_inputs.STALE_AFTER_SESSIONS
    stale_full_sessions: int = 21  # NYSE sessions (about a month) to the lowest factor
    stale_min_factor: float = 0.25
    trend_full: float = 0.05  # 5% from the 200-day SMA = full trend conviction
    slope_full: float = 0.02  # 2% move of the 50-day SMA over the slope window = full conviction
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "vix_level": 0.30,
            "vix_pct": 0.20,
            "vix_change": 0.15,
            "rv": 0.20,
            "drawdown": 0.15,
        }
    )


@dataclass(frozen=True)
class Regime:
    """The regime on one date, with its confidence and the numbers it was read from."""

    label: RegimeLabel
    confidence: float
    as_of: pd.Timestamp
    evidence: dict[str, float]
    stress_threshold: float = 0.40

    @property
    def stress(self) -> float:
        """The 0..1 stress score (NaN when unknown)."""
        return float(self.evidence.get("stress", float("nan")))

    @property
    def stressed(self) -> bool:
        """Risk is elevated: a bull-volatile, bear or crisis label, or a range with high stress."""
        return self.label in STRESSED_LABELS or self.stress >= self.stress_threshold

    def describe(self) -> str:
        """One readable line: label, confidence and the key numbers."""
        e = self.evidence
        return (
            f"{self.label.value} (confidence {self.confidence:.2f}): S&P {e.get('close', float('nan')):.1f} "
            f"vs 200d SMA {e.get('sma_trend', float('nan')):.1f}, VIX {e.get('vix', float('nan')):.1f} "
            f"(pct {e.get('vix_pct', float('nan')):.2f}), "
            f"realised vol {e.get('realised_vol', float('nan')):.1%}, "
            f"stress {e.get('stress', float('nan')):.2f}"
        )


def _lin(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map x linearly onto 0..1 between lo and hi (clipped); NaN stays NaN."""
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def trough_since_peak(close: np.ndarray, window: int) -> np.ndarray:
    """Lowest close since the highest close of the last `window` bars (NaN until a value exists)."""
    c = np.asarray(close, dtype=np.float64)
    n = len(c)
    if n == 0:
        return c.copy()
    padded = np.concatenate([np.full(window - 1, np.nan), c])
    win = np.lib.stride_tricks.sliding_window_view(padded, window)
    peak_at = np.argmax(np.where(np.isfinite(win), win, -np.inf), axis=1)
    after = np.arange(window)[None, :] >= peak_at[:, None]
    trough = np.where(after & np.isfinite(win), win, np.inf).min(axis=1)
    return np.where(np.isfinite(trough), trough, np.nan)


def freshness(age_sessions: float, cfg: RegimeConfig) -> float:
    """Confidence multiplier for an input `age_sessions` NYSE sessions old (1 while fresh; NaN age =
    unknown → 1)."""
    if not np.isfinite(age_sessions) or age_sessions <= cfg.stale_after_sessions:
        return 1.0
    return max(
        cfg.stale_min_factor, 1.0 - (age_sessions - cfg.stale_after_sessions) / cfg.stale_full_sessions
    )


def session_age(last: pd.DatetimeIndex | pd.Timestamp, when: pd.DatetimeIndex | pd.Timestamp) -> np.ndarray:
    """NYSE sessions in (`last`, `when`] element-wise (float, NaN where `last` is NaT)."""
    lo = np.atleast_1d(np.asarray(pd.DatetimeIndex(np.atleast_1d(last)).tz_localize(None), "datetime64[D]"))
    hi = np.atleast_1d(np.asarray(pd.DatetimeIndex(np.atleast_1d(when)).tz_localize(None), "datetime64[D]"))
    return sessions_after_many(REGIME_CALENDAR, lo, hi)


def _close(frame: pd.DataFrame | pd.Series) -> pd.Series:
    if isinstance(frame, pd.Series):
        return frame.astype("float64")
    for col in ("close", "Close", "vix", "VIX"):
        if col in frame.columns:
            return frame[col].astype("float64")
    raise ValueError(f"no close column in {list(frame.columns)}")


class RegimeDetector:
    """Label the market regime from an S&P 500 (or proxy) history frame and VIX closes."""

    def __init__(self, config: RegimeConfig | None = None) -> None:
        self.config = config or RegimeConfig()

    def label_history(
        self, spx: pd.DataFrame | pd.Series, vix: pd.DataFrame | pd.Series | None = None
    ) -> pd.DataFrame:
        """Label every date with enough history (vectorised).

        Columns: label (RegimeLabel value), confidence, stress, stressed, and the evidence
        columns. Dates before the 200-day SMA exists are dropped. VIX is aligned to the index
        dates by carrying its last close forward; `vix_age_days` says how old the value used is.
        """
        cfg = self.config
        spx_close = _close(spx)
        dates = to_utc_index(spx_close.index)
        close = spx_close.to_numpy(np.float64)
        if vix is not None:
            v = _close(vix)
            v.index = to_utc_index(v.index)
            v = v[~v.index.duplicated(keep="last")].sort_index()
            v = v[np.isfinite(v.to_numpy())]
            seen = pd.Series(v.index, index=v.index)
            both = v.index.union(dates)
            vix_arr = v.reindex(both).ffill().reindex(dates).to_numpy(np.float64)
            seen_at = pd.DatetimeIndex(seen.reindex(both).ffill().reindex(dates))
            vix_age = np.asarray((dates - seen_at) / pd.Timedelta(days=1), dtype=np.float64)
            vix_sessions = session_age(seen_at, dates)
        else:
            vix_arr = np.full(len(close), np.nan)
            vix_age = np.full(len(close), np.nan)
            vix_sessions = np.full(len(close), np.nan)

        sma_t = ind.sma(close, cfg.trend_sma)
        sma_s = ind.sma(close, cfg.slope_sma)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = sma_s / ind.shift(sma_s, cfg.slope_window) - 1.0
            trend_dev = close / sma_t - 1.0
            vix_chg = vix_arr / ind.shift(vix_arr, cfg.vix_change_window) - 1.0
        rv = ind.realised_vol(close, cfg.rv_window)
        dd = ind.drawdown(close, cfg.drawdown_window)
        with np.errstate(divide="ignore", invalid="ignore"):
            rally = close / trough_since_peak(close, cfg.drawdown_window) - 1.0
        recovery = np.clip(1.0 - np.nan_to_num(rally, nan=0.0) / cfg.recovery_rally, 0.0, 1.0)
        dd_stress = np.nan_to_num(dd, nan=0.0) * recovery
        vix_pct = ind.rolling_percentile(vix_arr, cfg.vix_pct_window, min_periods=60)

        subs = {
            "vix_level": _lin(vix_arr, cfg.vix_calm, cfg.vix_crisis),
            "vix_pct": _lin(vix_pct, cfg.vix_pct_anchor, 1.0),
            "vix_change": _lin(vix_chg, 0.0, cfg.vix_change_stressed),
            "rv": _lin(rv, cfg.rv_calm, cfg.rv_stressed),
            "drawdown": _lin(dd_stress, 0.0, cfg.drawdown_stressed),
        }
        num = np.zeros(len(close))
        den = np.zeros(len(close))
        for name, s in subs.items():
            w = cfg.weights.get(name, 0.0)
            ok = np.isfinite(s)
            num += np.where(ok, s * w, 0.0)
            den += np.where(ok, w, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            stress = np.where(den > 0, num / den, np.nan)

        vix_hi = np.nan_to_num(vix_arr, nan=0.0)
        crisis = (vix_hi >= cfg.vix_crisis) | (stress >= cfg.stress_crisis)
        bear = (trend_dev < 0) & (slope < 0)
        bull = (trend_dev > 0) & (slope > 0)
        volatile = (vix_hi >= cfg.vix_elevated) | (stress >= cfg.stress_volatile)
        labels = np.select(
            [crisis, bear, bull & volatile, bull],
            [
                RegimeLabel.CRISIS.value,
                RegimeLabel.BEAR.value,
                RegimeLabel.BULL_VOLATILE.value,
                RegimeLabel.BULL_QUIET.value,
            ],
            default=RegimeLabel.RANGE.value,
        )

        t_strength = _lin(np.abs(trend_dev), 0.0, cfg.trend_full)
        s_strength = _lin(np.abs(slope), 0.0, cfg.slope_full)
        directional = np.minimum(t_strength, s_strength)
        crisis_margin = np.maximum(
            _lin(vix_hi, cfg.vix_crisis, cfg.vix_crisis + 10.0), _lin(stress, cfg.stress_crisis, 1.0)
        )
        margin = np.select(
            [crisis, bear, bull & volatile, bull],
            [
                crisis_margin,
                directional,
                np.minimum(
                    directional,
                    np.maximum(
                        _lin(vix_hi, cfg.vix_elevated, cfg.vix_crisis),
                        _lin(stress, cfg.stress_volatile, cfg.stress_crisis),
                    ),
                ),
                np.minimum(directional, _lin(cfg.stress_volatile - stress, 0.0, cfg.stress_volatile)),
            ],
            default=1.0 - np.maximum(t_strength, s_strength),
        )
        confidence = 0.5 + 0.5 * np.nan_to_num(margin, nan=0.0)
        confidence = confidence * np.array([freshness(a, cfg) for a in vix_sessions])

        out = pd.DataFrame(
            {
                "label": labels,
                "confidence": confidence,
                "stress": stress,
                "close": close,
                "sma_trend": sma_t,
                "trend_dev": trend_dev,
                "sma_slope": slope,
                "vix": vix_arr,
                "vix_pct": vix_pct,
                "vix_change": vix_chg,
                "realised_vol": rv,
                "drawdown": dd,
                "rally_from_trough": rally,
                "drawdown_stress": dd_stress,
                "vix_age_days": vix_age,
                "vix_age_sessions": vix_sessions,
            },
            index=dates,
        )
        out["stressed"] = out["label"].isin([lab.value for lab in STRESSED_LABELS]) | (
            out["stress"] >= cfg.stress_volatile
        )
        ready = np.isfinite(sma_t) & np.isfinite(slope) & np.isfinite(stress)
        return out[ready]

    def detect(
        self,
        spx: pd.DataFrame | pd.Series,
        vix: pd.DataFrame | pd.Series | None = None,
        as_of: datetime | pd.Timestamp | str | None = None,
    ) -> Regime:
        """The regime on the last date <= `as_of` (the last date when None).

        Raises ValueError when there is not enough history (about 200 bars) to label it.
        """
        spx_close = _close(spx)
        spx_close.index = to_utc_index(spx_close.index)
        if as_of is not None:
            spx_close = spx_close[spx_close.index <= to_utc_timestamp(as_of)]
        spx_close = spx_close[np.isfinite(spx_close.to_numpy())]
        if vix is not None and as_of is not None:
            v = _close(vix)
            v.index = to_utc_index(v.index)
            vix = v[v.index <= to_utc_timestamp(as_of)]
        hist = self.label_history(spx_close, vix)
        if hist.empty:
            raise InsufficientHistory(
                f"not enough index history to label the regime: {len(spx_close)} bars of the index up to "
                f"the as-of date, it needs about 200 (give a longer SPX file or a later --as-of)"
            )
        return self.regime_at(hist.iloc[-1], pd.Timestamp(hist.index[-1]), as_of, vix is not None)

    def regime_at(
        self,
        row: Mapping[str, Any],
        labelled: pd.Timestamp,
        as_of: datetime | pd.Timestamp | str | None,
        has_vix: bool,
    ) -> Regime:
        """The `Regime` of one row of `label_history` (dated `labelled`), read on `as_of` (None: on
        `labelled`): the index's age and the VIX's age discount the row's confidence. `has_vix`: a VIX
        series was given (its age then adds the index's)."""
        when = to_utc_timestamp(as_of) if as_of is not None else labelled
        if when is labelled or (labelled.tzinfo is when.tzinfo and when.utcoffset() == _ZERO):
            # Both in UTC (the usual case): the days between their midnights are those between their
            # floored day numbers — what `normalize` gives, without building four Timestamps.
            spx_age = float(when.value // _DAY_NS - labelled.value // _DAY_NS)
            same_day = spx_age == 0.0
        else:
            spx_age = float((when.normalize() - labelled.normalize()).days)
            # Read on its own day (every backtest day, most runs): no session between, no calendar look-up.
            same_day = spx_age == 0.0 and when.normalize() == labelled.normalize()
        spx_sessions = 0.0 if same_day else float(session_age(labelled, when)[0])
        vix_age = float(row["vix_age_days"])
        vix_sessions = float(row["vix_age_sessions"])
        if has_vix and np.isfinite(vix_age):
            vix_age += spx_age  # the VIX value used is older still when the index itself is stale
            vix_sessions += spx_sessions
        evidence: dict[str, Any] = {
            k: float(row[k])
            for k in (
                "stress",
                "close",
                "sma_trend",
                "trend_dev",
                "sma_slope",
                "vix",
                "vix_pct",
                "vix_change",
                "realised_vol",
                "drawdown",
                "rally_from_trough",
                "drawdown_stress",
            )
        }
        evidence["spx_age_days"] = spx_age
        evidence["vix_age_days"] = vix_age
        evidence["spx_age_sessions"] = spx_sessions
        evidence["vix_age_sessions"] = vix_sessions
        # label_history applied the VIX freshness at its own date; the index's age adds to it here.
        conf = float(row["confidence"]) / freshness(float(row["vix_age_sessions"]), self.config)
        fresh = freshness(spx_sessions, self.config) * freshness(vix_sessions, self.config)
        conf *= fresh
        evidence["freshness"] = fresh
        return Regime(
            label=RegimeLabel(row["label"]),
            confidence=conf,
            as_of=labelled,
            evidence=evidence,
            stress_threshold=self.config.stress_volatile,
        )
