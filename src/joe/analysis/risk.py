"""`RiskProfiler`: five named risk dimensions → grade, veto and position size for a signal.

Each dimension scores 0 (benign) .. 100 (extreme) and vetoes the trade when extreme:
  * volatility: 20-day realised vol (20% → 0, 100% → 100; veto >= 150%) blended with ATR % of
    price (1% → 0, 8% → 100).
  * liquidity: 20-day average dollar volume (50M → 0, 0.5M → 100; veto below 100k), raised when
    the position would be more than 1% of it (veto above 10%). Unknown volume (close-only data):
    NaN, left out of the grade, never a neutral 50.
  * concentration: 60-day return correlation with the open positions (|ρ| 0.3 → 0, 0.9 → 100)
    and how full the book is; veto when the symbol is already held at `max_positions_per_symbol`
    or the book is at `max_positions`.
  * gap_event: 95th percentile of the last 60 opening gaps vs the stop distance (a stop that a
    normal gap jumps through does not protect; veto when it is >= 1.5× the stop distance). A
    close-only series has no opens (every gap 0): its gap is estimated from close-to-close
    volatility (`Features.gap_p95`).
  * regime_alignment: direction against the regime (a LONG in a bear market, a SHORT in a quiet
    bull) scores high; a LONG in a CRISIS is vetoed. A low-confidence label pulls it toward 50.
    Stale regime inputs (S&P 500, VIX older than 4 days) mean more caution, not less: the risk
    amount is multiplied by their freshness factor (`Regime.evidence["freshness"]`, 1 .. 0.25, the
    factor the regime's confidence took), and at or below `MIN_REGIME_FRESHNESS` the signal is
    vetoed - no new entries while the regime is read from inputs weeks old.
The market-only dimensions (volatility, gap_event, liquidity's average dollar volume) are computed by
`joe.analysis.risk_market`, ahead with the market analysis when they can be.
Grade from the mean score: A < 25 <= B < 45 <= C < 65 <= D. A grade worse than
`config.min_risk_grade` is a veto too.

Size: risk amount = equity × `risk_per_trade_pct`%; quantity = risk amount / stop distance,
capped at `max_position_pct`% of equity in notional, rounded *down* to the lot size (1 share by
default; crypto and FX allow fractions: step 0.0001 unless the instrument sets its own lot). An
instrument whose broker states its rules (`Instrument.broker_rules`) is sized on the broker's step
and vetoed below its minimum deal size (Capital.com `dealingRules`, spec §6.4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import numpy as np

from joe.analysis.features import Features, finite
from joe.analysis.panel import Panel
from joe.analysis.regime import Regime, RegimeLabel
from joe.analysis.risk_market import DimensionScore, MarketRisk, market_risk
from joe.analysis.risk_market import lin as _lin
from joe.config.schema import RiskConfig
from joe.core.models import ZERO, AssetClass, Direction, Instrument, Position, Signal

DIMENSIONS: tuple[str, ...] = ("volatility", "liquidity", "concentration", "gap_event", "regime_alignment")
GRADES: tuple[str, ...] = ("A", "B", "C", "D")
# At or below this freshness of the regime inputs (an input about 25 days stale or more, whose factor
# sits at the 0.25 floor) the regime is too blind to enter on: no new entries.
MIN_REGIME_FRESHNESS = 0.30
FRACTIONAL_STEP = Decimal("0.0001")
# The liquidity dimension's scale ends (average dollar volume 50M → 0, 0.5M → 100), in log10.
_LOG10_50M, _LOG10_500K = math.log10(50e6), math.log10(0.5e6)


@dataclass(frozen=True)
class RiskAssessment:
    """The profiler's verdict on one signal."""

    signal_id: str
    symbol: str
    dimensions: dict[str, DimensionScore]
    grade: str
    veto: bool
    veto_reason: str
    quantity: Decimal
    risk_amount: Decimal
    notional: Decimal = ZERO

    @property
    def approved(self) -> bool:
        return not self.veto and self.quantity > 0


def regime_freshness(regime: Regime) -> float:
    """The regime inputs' freshness (1 fresh .. 0.25 at the floor; `joe.analysis.regime.freshness`),
    from its evidence; 1 when unknown."""
    f = float(regime.evidence.get("freshness", 1.0))
    return min(1.0, max(0.0, f)) if math.isfinite(f) else 1.0


def grade_for(mean_score: float) -> str:
    """Letter grade for a mean dimension score."""
    if mean_score < 25:
        return "A"
    if mean_score < 45:
        return "B"
    if mean_score < 65:
        return "C"
    return "D"


def lot_step(instrument: Instrument | None) -> Decimal:
    """The quantity step: the instrument's lot, fractional for crypto/FX left at the default lot."""
    if instrument is None:
        return Decimal(1)
    if instrument.broker_rules:  # the broker's own size step (Capital.com `minSizeIncrement`)
        return instrument.lot_size
    if instrument.asset_class in (AssetClass.CRYPTO, AssetClass.FX) and instrument.lot_size == Decimal(1):
        return FRACTIONAL_STEP
    return instrument.lot_size


# A day's regime reading: the regime, its freshness, the regime dimension per side (long?) and the risk
# amount per (equity, risk %).
_Day = tuple[Regime, float, dict[bool, DimensionScore], dict[tuple[Decimal, Decimal], Decimal]]


class RiskProfiler:
    """Assess a signal against volatility, liquidity, concentration, gap risk and the regime."""

    def __init__(self, config: RiskConfig | None = None) -> None:
        self.config = config or RiskConfig.model_validate({})
        # What depends only on the regime, kept while the same regime object is asked (a day's signals).
        self._day: _Day | None = None

    def assess(
        self,
        signal: Signal,
        panel: Panel,
        equity: Decimal,
        open_positions: Sequence[Position],
        regime: Regime,
        instrument: Instrument | None = None,
        as_of_index: int | None = None,
        features: Features | None = None,
        market: MarketRisk | None = None,
    ) -> RiskAssessment:
        """Grade, veto and size `signal` at row `as_of_index` (the signal's date when None).

        `market`: the signal's market-only dimensions computed ahead with the market analysis
        (`joe.analysis.risk_market`), used when they fit its symbol, row, entry and stop, else
        computed here."""
        cfg = self.config
        f = features or Features(panel)
        t = panel.index_at(signal.as_of) if as_of_index is None else as_of_index
        sym = signal.symbol
        stop_dist = float(abs(signal.entry - signal.stop_loss))

        # -- size first: liquidity and concentration look at the resulting position --
        # Stale regime inputs: the risk taken shrinks with their freshness (module docstring).
        day = self._day
        if day is None or day[0] is not regime:  # (the same object: frozen, read once per day)
            day = self._day = (regime, regime_freshness(regime), {}, {})
        _, fresh, aligned, amounts = day
        risk_amount = amounts.get((equity, cfg.risk_per_trade_pct))
        if risk_amount is None:
            risk_amount = amounts[(equity, cfg.risk_per_trade_pct)] = (
                equity * cfg.risk_per_trade_pct / Decimal(100) * Decimal(f"{fresh:.4f}")
            ).quantize(Decimal("0.01"), ROUND_DOWN)
        step = lot_step(instrument)
        qty = ZERO
        if stop_dist > 0 and equity > 0:
            raw = risk_amount / abs(signal.entry - signal.stop_loss)
            cap = equity * cfg.max_position_pct / Decimal(100) / signal.entry
            qty = (min(raw, cap) / step).to_integral_value(ROUND_DOWN) * step
        notional = qty * signal.entry

        dims: dict[str, DimensionScore] = {}
        if sym in panel:
            if market is None or not market.fits(signal, t):
                market = market_risk(signal, f, t)
            dims["volatility"] = market.volatility
            dims["liquidity"] = self._liquidity(market.adv, float(notional))
            dims["gap_event"] = market.gap_event
        else:
            for name in ("volatility", "liquidity", "gap_event"):
                dims[name] = DimensionScore(100.0, "no history for the symbol", veto=True)
        dims["concentration"] = self._concentration(f, panel, sym, t, open_positions)
        long = signal.direction is Direction.LONG
        d = aligned.get(long)
        if d is None:
            d = aligned[long] = self._aligned(signal, regime, fresh)
        dims["regime_alignment"] = d
        known = [dims[k].score for k in DIMENSIONS if math.isfinite(dims[k].score)]
        mean = mean_of(known) if known else 100.0
        grade = grade_for(mean)
        vetoes = [f"{k}: {d.detail}" for k, d in dims.items() if d.veto]
        if GRADES.index(grade) > GRADES.index(cfg.min_risk_grade):
            vetoes.append(f"grade {grade} is below the minimum {cfg.min_risk_grade}")
        min_size = instrument.min_size if instrument is not None else None
        if min_size is not None and stop_dist > 0 and qty < min_size:  # the broker's minimum deal size
            vetoes.append(
                f"size {qty} is below the broker's minimum deal size {min_size} (size step {step}; "
                f"risk {risk_amount}, stop distance {stop_dist:.6g})"
            )
        elif qty <= 0:
            vetoes.append(
                f"size rounds to zero (risk {risk_amount}, stop distance {stop_dist:.6g}, lot {step})"
            )
        return RiskAssessment(
            signal_id=signal.signal_id,
            symbol=sym,
            dimensions={k: dims[k] for k in DIMENSIONS},
            grade=grade,
            veto=bool(vetoes),
            veto_reason="; ".join(vetoes),
            quantity=qty if not vetoes else ZERO,
            risk_amount=risk_amount,
            notional=notional if not vetoes else ZERO,
        )

    # -- dimensions ---------------------------------------------------------------------------

    @staticmethod
    def _liquidity(adv: float, notional: float) -> DimensionScore:
        """Average dollar volume `adv` (NaN: unknown) and the position's share of it."""
        if not finite(adv):
            # Unknown is not "neutral 50": the dimension is left out of the grade and says so.
            return DimensionScore(math.nan, "volume unknown: liquidity not checked")
        if adv <= 0:
            return DimensionScore(100.0, "no traded volume", veto=True)
        share = notional / adv
        score = max(_lin(math.log10(adv), _LOG10_50M, _LOG10_500K), _lin(share, 0.01, 0.10))
        veto = adv < 100_000 or share > 0.10
        return DimensionScore(score, f"avg dollar volume {adv:,.0f}, position {share:.2%} of it", veto)

    def _concentration(
        self, f: Features, panel: Panel, sym: str, t: int, positions: Sequence[Position]
    ) -> DimensionScore:
        cfg = self.config
        held = [p for p in positions if p.quantity]  # a Decimal is truthy exactly when it is != 0
        held_symbols = [p.symbol for p in held]
        same = held_symbols.count(sym)
        if same >= cfg.max_positions_per_symbol:
            return DimensionScore(100.0, f"already {same} position(s) in {sym}", veto=True)
        if len(held) >= cfg.max_positions:
            return DimensionScore(100.0, f"book full ({len(held)}/{cfg.max_positions} positions)", veto=True)
        fill = len(held) / cfg.max_positions if cfg.max_positions else 1.0
        corrs = self._correlations(f, panel, sym, t, set(held_symbols))
        worst = max(map(abs, corrs.values()), default=0.0)
        score = max(_lin(worst, 0.3, 0.9), 100.0 * fill * 0.6)
        who = max(corrs, key=lambda k: abs(corrs[k])) if corrs else "-"
        return DimensionScore(score, f"max |correlation| {worst:.2f} ({who}), {len(held)} open positions")

    @staticmethod
    def _correlations(f: Features, panel: Panel, sym: str, t: int, others: set[str]) -> Mapping[str, float]:
        """Correlation of `sym`'s last 60 log returns with each of `others`' over the days both have
        one (at least 20, neither constant); `pearson` gives `np.corrcoef`'s value bit for bit."""
        rest = sorted(others - {sym})
        if sym not in panel or not rest:  # no pair to read: `sym`'s own window is not needed
            return {}
        # Each symbol's window, its flatness and its centred row are read once a day (`return_window`):
        # the held symbols' are the same for every signal of the day.
        mine = f.return_window(sym, t, 60)
        n = len(mine.values)
        # Pairs where both sides have every day go through one Gram matrix of centred rows
        # (`pearson_rows`' arithmetic); pairs with a missing day each through their own masked windows.
        pairs: list[tuple[str, np.ndarray | None, np.ndarray]] = []
        rows: list[np.ndarray] = []
        for o in rest:
            if o not in panel:
                continue
            theirs = f.return_window(o, t, 60)
            if mine.full and theirs.full:
                if n < 20 or mine.flat or theirs.flat:
                    continue
                pairs.append((o, None, theirs.values))
                rows.append(theirs.centred)  # type: ignore[arg-type]  # full and not flat: centred
                continue
            ok = mine.ok & theirs.ok
            x, y = mine.values[ok], theirs.values[ok]
            x_flat = len(x) >= 20 and np.std(x) == 0
            y_flat = len(x) >= 20 and not x_flat and np.std(y) == 0
            if len(x) < 20 or x_flat or y_flat:
                continue
            pairs.append((o, x, y))
        whole = [y for _, x, y in pairs if x is None]
        if whole:
            m = np.empty((len(rows) + 1, n))
            m[0] = mine.centred
            for i, c in enumerate(rows, 1):
                m[i] = c
            batch = iter(_pearson_gram(m, mine.values, whole))
        else:
            batch = iter(())
        return {o: next(batch) if x is None else pearson(x, y) for o, x, y in pairs}

    @classmethod
    def _aligned(cls, signal: Signal, regime: Regime, fresh: float) -> DimensionScore:
        """The regime dimension of `signal` (depends on its direction only), with the inputs' freshness."""
        d = cls._regime(signal, regime)
        if fresh < 1.0:
            stale_note = f"; stale regime inputs: size × {fresh:.2f}"
            if fresh <= MIN_REGIME_FRESHNESS:
                return DimensionScore(
                    100.0,
                    f"{d.detail}; regime inputs too stale (freshness {fresh:.2f}): no new entries",
                    True,
                )
            return DimensionScore(d.score, d.detail + stale_note, d.veto)
        return d

    @staticmethod
    def _regime(signal: Signal, regime: Regime) -> DimensionScore:
        long = signal.direction is Direction.LONG
        lab = regime.label
        c = regime.confidence
        if lab is RegimeLabel.CRISIS:
            if long:
                return DimensionScore(100.0, "long entry in a crisis regime", veto=True)
            return DimensionScore(40.0, "short with the crisis, but volatility is extreme")
        base_long, base_short = _ALIGNMENT[lab]
        base = base_long if long else base_short
        # A low-confidence label pulls the score toward the neutral 50.
        score = 50.0 + (base - 50.0) * c
        side = "long" if long else "short"
        return DimensionScore(score, f"{side} in a {lab.value} regime (confidence {c:.2f})")


# (long, short) alignment score per regime label (CRISIS: `_regime`'s own rule).
_ALIGNMENT: dict[RegimeLabel, tuple[float, float]] = {
    RegimeLabel.BULL_QUIET: (5.0, 75.0),
    RegimeLabel.BULL_VOLATILE: (30.0, 70.0),
    RegimeLabel.RANGE: (35.0, 35.0),
    RegimeLabel.BEAR: (80.0, 20.0),
}


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """`float(np.corrcoef(x, y)[0, 1])` for two 1-D float64 arrays of one length, computed by the same
    operations in the same order (mean per row, centred, `dot(X, X.T.conj())`, scaled by 1/(n−1),
    divided by both standard deviations, clipped to ±1) without `np.cov`'s argument handling, which
    is most of its cost on 60 values. tests/analysis/test_risk_pearson.py holds it to `np.corrcoef`.
    """
    n = len(x)
    xy = np.empty((2, n))
    xy[0], xy[1] = x, y
    xy -= xy.mean(axis=1)[:, None]
    c = np.dot(xy, xy.T.conj())
    # The rest on the three numbers needed, as Python floats (IEEE: the same roundings as numpy's
    # element-wise operations): scaled, divided by the row's then the column's deviation, clipped.
    (c00, c01), (_, c11) = c.tolist()
    scale = 1 / (n - 1) if n > 1 else math.nan
    v0, v1 = c00 * scale, c11 * scale
    if v0 > 0 and v1 > 0:  # else a 0/0 or x/0 (or NaN): numpy's answer and warning, as before
        r = c01 * scale / math.sqrt(v0) / math.sqrt(v1)
        return r if r != r else (1.0 if r > 1 else -1.0 if r < -1 else r)  # NaN stays NaN, as np.clip
    c *= np.true_divide(1, n - 1)
    sd = np.sqrt(np.diag(c))
    c /= sd[:, None]
    c /= sd[None, :]
    np.clip(c, -1, 1, out=c)
    return float(c[0, 1])


def pearson_rows(x: np.ndarray, ys: Sequence[np.ndarray]) -> list[float]:
    """`[pearson(x, y) for y in ys]` (1-D float64 arrays of one length) from one Gram matrix: the rows
    x, y1, y2… centred by their means and `dot(M, M.T.conj())` once, then `pearson`'s arithmetic on
    its entries (0, 0), (0, i), (i, i). A row's mean does not depend on the other rows stacked with it
    (numpy reduces each row alone), but the BLAS kernel may sum a larger matrix's entries in another
    order than `pearson`'s 2-row one: values agree within a few ulps (tests/analysis/
    test_risk_pearson.py), and were equal on all of daily_500's 16,913 correlation reads. Pairs whose
    variance is not positive go through `pearson` itself (numpy's NaN and warning)."""
    n = len(x)
    m = np.empty((len(ys) + 1, n))
    m[0] = x
    for i, y in enumerate(ys, 1):
        m[i] = y
    m -= m.mean(axis=1)[:, None]
    return _pearson_gram(m, x, ys)


def _pearson_gram(m: np.ndarray, x: np.ndarray, ys: Sequence[np.ndarray]) -> list[float]:
    """`pearson_rows(x, ys)` from `m`, the rows x, y1, y2… already centred by their means."""
    n = len(x)
    g = np.dot(m, m.T.conj()).tolist()
    scale = 1 / (n - 1) if n > 1 else math.nan
    v0 = g[0][0] * scale
    out: list[float] = []
    for i, y in enumerate(ys, 1):
        v1 = g[i][i] * scale
        if v0 > 0 and v1 > 0:
            r = g[0][i] * scale / math.sqrt(v0) / math.sqrt(v1)
            out.append(r if r != r else (1.0 if r > 1 else -1.0 if r < -1 else r))
        else:
            out.append(pearson(x, y))
    return out


def mean_of(values: Sequence[float]) -> float:
    """`float(np.mean(values))` for a few (fewer than 8) Python floats: numpy sums fewer than 8 values
    one after the other from 0.0 (its pairwise sum starts there) and divides by the count; the same
    here without building an array (tests/analysis/test_risk_pearson.py holds it to `np.mean`)."""
    if len(values) >= 8:
        return float(np.mean(values))
    total = 0.0
    for v in values:
        total += v
    return total / len(values)
