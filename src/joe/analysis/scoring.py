"""`ScoringEngine`: technical + sentiment score, 0..100, with its component breakdown.

Each instrument first gets a *bias* — LONG when trend and momentum together point up, SHORT when
they point down — and every directional component is then scored in the direction of that bias,
so a clean downtrend scores as high as a clean uptrend and the strategies can trade either way.
50 is neutral in every component.

Components (0..100) and default weights:
  * trend (0.30): close vs 50-day SMA and 50-day vs 200-day SMA (EMA-20 vs SMA-50 while the
    200-day is not yet available), each at full weight 5% away; scaled by trend strength
    (ADX 15 → half, ADX 40 → full).
  * momentum (0.25): RSI(14) distance from 50, MACD histogram in ATR units, and the 63-day
    return in units of its own volatility.
  * volatility (0.15): tradability of the ATR as a % of price: 100 between 1% and 3%, down to
    0 at 0.2% (too quiet to pay costs) and at 8% (too wild to size sensibly).
  * volume (0.15): OBV slope over 20 bars in the bias direction (confirmation), plus today's
    volume relative to its 20-day average (attention). Unknown volume (close-only data) is NaN
    ("no reading"), not a neutral 50: the component drops out and the others are re-weighted.
  * sentiment (0.15): client positioning where the source provides it (Capital.com client
    sentiment). Default *contrarian*: a crowd that is 80% long scores low for a LONG bias and high
    for a SHORT bias, because retail crowding tends to mark exhaustion. `sentiment_mode=
    "confirming"` flips it. No data → 50 (neutral).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.scanner import ScanCandidate, ScanResult
from joe.brokers.base import Sentiment
from joe.core.models import Direction

DEFAULT_WEIGHTS: dict[str, float] = {
    "trend": 0.30,
    "momentum": 0.25,
    "volatility": 0.15,
    "volume": 0.15,
    "sentiment": 0.15,
}


@dataclass(frozen=True)
class InstrumentScore:
    """Score of one instrument at one date: total 0..100, bias and the 0..100 components."""

    symbol: str
    total: float
    direction: Direction
    components: dict[str, float]
    as_of: pd.Timestamp
    hits: tuple[str, ...] = ()
    details: dict[str, float] = field(default_factory=dict)


class ScoringEngine:
    """Score candidates from a panel's indicators and optional client sentiment."""

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        sentiment_mode: Literal["contrarian", "confirming"] = "contrarian",
    ) -> None:
        w = dict(weights or DEFAULT_WEIGHTS)
        unknown = set(w) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown score components: {sorted(unknown)}")
        total = sum(w.values())
        if total <= 0:
            raise ValueError("weights must sum to a positive number")
        self.weights = {k: w.get(k, 0.0) / total for k in DEFAULT_WEIGHTS}
        self.sentiment_mode = sentiment_mode

    def score(
        self,
        panel: Panel,
        candidates: Iterable[ScanCandidate | str] | ScanResult,
        sentiment: Mapping[str, Sentiment] | None = None,
        as_of_index: int | None = None,
        features: Features | None = None,
        limit: int | None = None,
    ) -> list[InstrumentScore]:
        """Score each candidate at row `as_of_index` (the last row when None), best first.

        `candidates`: symbols, `ScanCandidate`s, or a `ScanResult` of this panel (read as arrays: its
        candidate objects are not built). Candidates without a bar on that date or without 50 bars of
        history are skipped. All candidates are scored at once: one gather per indicator
        (`Features.matrix`) and array arithmetic, each element computed exactly as the one-instrument
        formulas in the module docstring (tests/analysis/test_scoring_vectorised.py holds them as the
        reference). With `features.every_row` (a backtest) and no client sentiment for the candidates,
        the same arithmetic runs once over every row and symbol (`score_rows`) and a day reads its row.
        `limit`: only the best `limit` scores (the first `limit` of the full list, the same objects'
        values); every candidate is still scored and ranked, but only those are built (a backtest
        day scores ~120 candidates and reads the best 20). Raises `ValueError` for a negative limit.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        t = panel.n_dates - 1 if as_of_index is None else as_of_index
        f = features or Features(panel)
        sentiment = sentiment or {}
        scan: ScanResult | None = None
        if isinstance(candidates, ScanResult) and candidates.col_of is panel.column_map:
            scan = candidates
            syms: list[str] = panel.symbols
            pcols = scan.cols.astype(np.intp, copy=False)  # columns of `panel` (a candidate's symbol)
            if f.panel.column_map is panel.column_map:
                cols = pcols
            else:
                cols = np.fromiter((f.panel.col(syms[j]) for j in pcols.tolist()), np.intp, len(pcols))
            picked: list[tuple[str, tuple[str, ...]]] = []
        else:
            items = candidates.candidates if isinstance(candidates, ScanResult) else candidates
            picked = [(c, ()) if isinstance(c, str) else (c.symbol, c.hits) for c in items]
            picked = [(sym, hits) for sym, hits in picked if sym in panel]
            cols = np.fromiter((f.panel.col(sym) for sym, _ in picked), dtype=np.intp, count=len(picked))
        if not len(cols):
            return []

        def symbol(i: int) -> str:
            return syms[pcols[i]] if scan is not None else picked[i][0]

        def hits(i: int) -> tuple[str, ...]:
            return scan.hits(i) if scan is not None else tuple(picked[i][1])

        n = len(cols)
        has_sentiment = bool(sentiment) and any(symbol(i) in sentiment for i in range(n))
        if f.every_row and not has_sentiment:
            every = self.score_rows(f)
            ok, total = every["ok"][t, cols], every["total"][t, cols]

            def values(names: Sequence[str], keep: np.ndarray) -> list[list[float]]:
                c = cols[keep]
                return np.column_stack([every[k][t, c] for k in names]).tolist()  # type: ignore[no-any-return]

        else:
            long_short = np.array(
                [_sentiment_pair(sentiment.get(symbol(i))) for i in range(n)], dtype=np.float64
            ).reshape(n, 2)
            r = _readings(f, cols, t)
            r["sentiment_net_long"] = _net_long(long_short)
            with np.errstate(all="ignore"):  # rows not scored (no bar, no SMA) may divide by NaN or zero
                total, sign, comps = self._score_rows(r)
            ok = r["ok"]
            got = {**comps, "sign": sign, **{k: r[k] for k in DETAILS}}

            def values(names: Sequence[str], keep: np.ndarray) -> list[list[float]]:
                return np.column_stack([got[k][keep] for k in names]).tolist()  # type: ignore[no-any-return]

        keep, totals = _best(np.flatnonzero(ok), total, symbol, limit)
        if not len(keep):
            return []
        # One gather for everything the kept scores show: components, direction sign, details.
        n_comp = len(COMPONENTS)
        rows = values((*COMPONENTS, "sign", *DETAILS), keep)
        when = panel.dates[t]
        out: list[InstrumentScore] = []
        long, short = Direction.LONG, Direction.SHORT
        fours = (4,) * n_comp
        for m, i in enumerate(keep.tolist()):
            row = rows[m]
            out.append(
                InstrumentScore(
                    symbol=symbol(i),
                    total=totals[m],
                    direction=long if row[n_comp] > 0 else short,
                    components=dict(zip(COMPONENTS, map(round, row[:n_comp], fours), strict=True)),
                    as_of=when,
                    hits=hits(i),
                    details=dict(zip(DETAILS, row[n_comp + 1 :], strict=True)),
                )
            )
        return out

    def score_rows(self, f: Features) -> dict[str, np.ndarray]:
        """`_score_rows` over every row and symbol of `f`'s panel without client sentiment, computed once
        per `f` and engine settings: (dates × symbols) arrays `ok`, `total` (both C order), `sign`, each
        component and each of `DETAILS` (`sentiment_net_long` NaN). Element [t, j] is bit for bit what
        scoring symbol j alone at row t gives (the same elementwise arithmetic; property test
        tests/analysis/test_scoring_rows.py)."""

        def make() -> dict[str, np.ndarray]:
            r = _readings_rows(f)
            r["sentiment_net_long"] = np.full(r["close"].shape, np.nan)
            with np.errstate(all="ignore"):
                total, sign, comps = self._score_rows(r)
            # A day gathers `ok` and `total` for its ~120 candidates: C order, one contiguous row each;
            # the rest only for the ~20 it keeps, read where they are (the indicators: no copy).
            return {
                "ok": np.ascontiguousarray(r["ok"]),
                "total": np.ascontiguousarray(total),
                "sign": sign,
                **comps,
                **{k: r[k] for k in DETAILS},
            }

        key = ("score_rows", tuple(self.weights.items()), self.sentiment_mode)
        return f.memo(key, make)  # type: ignore[no-any-return]

    def _score_rows(self, r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(total, direction sign ±1.0, components) per row of the readings `r` (see `_readings`).

        Rows where `r["ok"]` is False get meaningless values (the caller drops them). Every operation
        is the scalar formula's, in the same order, so each element is bit-for-bit what scoring that
        instrument alone gives (IEEE arithmetic is the same in numpy and in Python floats).
        """
        close, sma50, sma200, ema20 = r["close"], r["sma50"], r["sma200"], r["ema20"]
        adx, rsi, atr, hist, ret63, rv = r["adx"], r["rsi"], r["atr"], r["macd_hist"], r["ret63"], r["rv"]
        fin = np.isfinite
        # -- directional raw readings in -1..1 --
        slow = np.where(fin(sma200), sma50 / sma200 - 1.0, ema20 / sma50 - 1.0)
        trend_raw = _clip1v(((close / sma50 - 1.0) / 0.05 + np.where(fin(slow), slow, 0.0) / 0.05) / 2.0)
        strength = np.where(fin(adx), 0.5 + 0.5 * np.minimum(1.0, np.maximum(0.0, (adx - 15.0) / 25.0)), 0.5)
        trend_raw = trend_raw * strength
        # The mean of the momentum parts present, summed in order as numpy's mean of a short list does.
        acc = np.full(close.shape, -0.0)
        n = np.zeros(close.shape)
        for present, part in (
            (fin(rsi), lambda: (rsi - 50.0) / 25.0),
            (fin(hist) & fin(atr) & (atr > 0), lambda: hist / (0.5 * atr)),
            (fin(ret63) & fin(rv) & (rv > 0), lambda: ret63 / (rv * math.sqrt(63 / 252)) / 2.0),
        ):
            acc = np.where(present, acc + _clip1v(part()), acc)
            n += present
        mom_raw = np.where(n > 0, acc / np.maximum(n, 1.0), 0.0)
        d = np.where(trend_raw + mom_raw >= 0, 1.0, -1.0)

        atr_pct = np.where(fin(atr), atr / close, np.nan)
        vol_score = np.where(fin(atr_pct), 100.0 * _bandv(atr_pct, 0.002, 0.01, 0.03, 0.08), 50.0)
        obv_slope = r["obv_slope"]
        volume_score = np.where(fin(obv_slope), 50.0 + 25.0 * _clip1v(d * obv_slope * 2.0), 50.0)
        volume_score = volume_score + 25.0 * _clip1v((r["rel_volume"] - 1.0) / 1.5)
        # unknown volume is no reading, not a neutral 50
        volume_score = np.where(r["volume_known"], volume_score, np.nan)

        net = r["sentiment_net_long"]
        raw = -net if self.sentiment_mode == "contrarian" else net
        sent_score = np.where(fin(net), 50.0 + 50.0 * _clip1v(d * raw / 0.6), 50.0)

        comps = {
            "trend": 50.0 + 50.0 * d * trend_raw,
            "momentum": 50.0 + 50.0 * d * mom_raw,
            "volatility": vol_score,
            "volume": np.where(fin(volume_score), np.maximum(0.0, np.minimum(100.0, volume_score)), np.nan),
            "sentiment": sent_score,
        }
        # Components without a reading (NaN: unknown volume) drop out; the others are re-weighted.
        num = np.zeros(close.shape)
        den = np.zeros(close.shape)
        for k, v in comps.items():
            known = fin(v)
            num = np.where(known, num + self.weights[k] * v, num)
            den = np.where(known, den + self.weights[k], den)
        return num / den, d, comps


COMPONENTS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)

# The readings shown with a score (keys of `_readings`, plus the sentiment's net long share).
DETAILS: tuple[str, ...] = (
    "close", "sma50", "sma200", "adx", "rsi", "atr", "atr_pct", "macd_hist", "ret63", "rel_volume",
    "obv_slope", "sentiment_net_long",
)  # fmt: skip


# The readings `_readings` gathers: key → (`Features.matrix` name, params).
_SOURCES: dict[str, tuple[str, tuple[object, ...]]] = {
    "close": ("close", ()),
    "sma50": ("sma", (50,)),
    "sma200": ("sma", (200,)),
    "ema20": ("ema", (20,)),
    "adx": ("adx", (14,)),
    "rsi": ("rsi", (14,)),
    "atr": ("atr", (14,)),
    "macd_hist": ("macd_hist", ()),
    "ret63": ("pct_change", (63,)),
    "rv": ("realised_vol", (63,)),
    "obv_slope": ("obv_slope", (20,)),
    "avg_volume": ("avg_volume", (20,)),
    "volume": ("volume", ()),
}
VOLUME_KNOWN_BARS = 20  # `Features.volume_known`'s default period


def _readings(f: Features, cols: np.ndarray, t: int) -> dict[str, np.ndarray]:
    """The indicator values scoring reads, for columns `cols` at row `t` (1-D arrays over `cols`).

    `ok`: a bar with a positive close and a 50-day SMA (the others are not scored)."""
    r = {k: f.matrix(name, *params)[t, cols] for k, (name, params) in _SOURCES.items()}
    _derive(r)
    # A volume on at least one of the last 20 bars (`Features.volume_known`).
    recent = f.matrix("volume")[max(0, t - VOLUME_KNOWN_BARS + 1) : t + 1, cols]
    r["volume_known"] = np.isfinite(recent).any(axis=0)
    return r


def _readings_rows(f: Features) -> dict[str, np.ndarray]:
    """`_readings` of every column at every row: (dates × symbols) arrays, element [t, j] equal to
    `_readings(f, [j], t)`'s (the same elementwise arithmetic; `volume_known` from a running count of
    the finite volumes instead of a slice's `any`)."""
    r = {k: f.matrix(name, *params) for k, (name, params) in _SOURCES.items()}
    _derive(r)
    known = np.zeros((r["volume"].shape[0] + 1, r["volume"].shape[1]), dtype=np.int64)
    np.cumsum(np.isfinite(r["volume"]), axis=0, out=known[1:])
    w = VOLUME_KNOWN_BARS
    lag = np.zeros_like(known[1:])
    lag[w:] = known[1:-w]  # the count up to row t - w (0 before the first row)
    r["volume_known"] = known[1:] - lag > 0
    return r


def _derive(r: dict[str, np.ndarray]) -> None:
    """Add `ok`, `atr_pct` and `rel_volume` to the readings `r` (any shape, elementwise)."""
    fin = np.isfinite
    with np.errstate(invalid="ignore", divide="ignore"):
        r["ok"] = fin(r["close"]) & fin(r["sma50"]) & (r["close"] > 0)
        r["atr_pct"] = np.where(fin(r["atr"]), r["atr"] / r["close"], np.nan)
        v_t, avg_v = r["volume"], r["avg_volume"]
        r["rel_volume"] = np.where(fin(v_t) & fin(avg_v) & (avg_v > 0), v_t / avg_v, 1.0)


def _best(
    rows: np.ndarray, total: np.ndarray, symbol: Callable[[int], str], limit: int | None
) -> tuple[np.ndarray, list[float]]:
    """The first `limit` (all when None) of `rows` ordered by (−round(total, 4), symbol), with their
    rounded totals.

    Only the totals that can reach the head are rounded: `round` is monotone, so sorting the raw totals
    descending, the head is among the first `limit` and those after them whose rounded total ties with
    the `limit`-th's. (Non-finite totals — possible only with odd weights — take the plain sort.)
    """
    raw = total[rows]
    if limit is not None and limit < len(rows) and np.isfinite(raw).all():
        by = np.argsort(-raw, kind="stable")
        vals = raw[by].tolist()
        cut = round(vals[limit - 1], 4) if limit else math.inf
        n = limit
        while n < len(vals) and round(vals[n], 4) == cut:
            n += 1
        rows = rows[by[:n]]
    totals = [round(x, 4) for x in total[rows].tolist()]
    syms = [symbol(i) for i in rows.tolist()]
    order = sorted(range(len(rows)), key=lambda k: (-totals[k], syms[k]))
    if limit is not None:
        order = order[:limit]
    return rows[order], [totals[k] for k in order]


def _sentiment_pair(s: Sentiment | None) -> tuple[float, float]:
    if s is None:
        return (math.nan, math.nan)
    return (float(s.long_pct), float(s.short_pct))


def _net_long(long_short: np.ndarray) -> np.ndarray:
    """Net long share (long − short) / (long + short) per row; NaN without a usable sentiment."""
    lp, sp = long_short[:, 0], long_short[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        tot = lp + sp
        return np.where(np.isfinite(tot) & (tot > 0), (lp - sp) / tot, np.nan)


def _clip1v(x: np.ndarray) -> np.ndarray:
    """`_clip1` on every element (NaN stays NaN: callers only pass it where a reading exists)."""
    return np.maximum(-1.0, np.minimum(1.0, x))


def _bandv(x: np.ndarray, zero_lo: float, full_lo: float, full_hi: float, zero_hi: float) -> np.ndarray:
    """`_band` on every element."""
    with np.errstate(invalid="ignore", divide="ignore"):
        up = (x - zero_lo) / (full_lo - zero_lo)
        down = (zero_hi - x) / (zero_hi - full_hi)
    return np.where(
        (x <= zero_lo) | (x >= zero_hi), 0.0, np.where(x < full_lo, up, np.where(x > full_hi, down, 1.0))
    )
