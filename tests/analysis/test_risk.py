"""RiskProfiler: sizing arithmetic, lot rounding, the five dimensions, vetoes and grades."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from joe.analysis.panel import Panel
from joe.analysis.regime import Regime, RegimeLabel
from joe.analysis.risk import DIMENSIONS, RiskProfiler, grade_for, lot_step
from joe.config.schema import RiskConfig
from joe.core.ids import signal_id
from joe.core.models import AssetClass, Direction, Instrument, Position, Signal

N = 120


def cfg(**kw: object) -> RiskConfig:
    """A RiskConfig with overrides (validated like the yaml would be)."""
    return RiskConfig.model_validate(kw)


DATES = pd.bdate_range("2020-01-01", periods=N, tz="UTC")


def _panel(vol: float = 0.01, volume: float = 1e6, corr_with_a: bool = False, seed: int = 1) -> Panel:
    rng = np.random.default_rng(seed)
    ra = rng.normal(0, vol, N)
    rb = ra + rng.normal(0, vol * 0.1, N) if corr_with_a else rng.normal(0, vol, N)
    close = np.column_stack([100 * np.exp(np.cumsum(ra)), 100 * np.exp(np.cumsum(rb))])
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, vol / 2, close.shape))  # gaps
    high, low = np.maximum(open_, close) * (1 + vol / 2), np.minimum(open_, close) * (1 - vol / 2)
    return Panel(DATES, ["A", "B"], open_, high, low, close, np.full_like(close, volume))


def _regime(label: RegimeLabel, confidence: float = 0.9) -> Regime:
    return Regime(label, confidence, DATES[-1], {"stress": 0.1})


def _signal(
    symbol: str = "A",
    direction: Direction = Direction.LONG,
    entry: str = "100",
    stop: str = "98",
    target: str = "104",
) -> Signal:
    as_of = DATES[-1].to_pydatetime()
    return Signal(
        signal_id(("t"), symbol, as_of.date().isoformat(), direction.value),
        symbol,
        "t",
        direction,
        Decimal(entry),
        Decimal(stop),
        Decimal(target),
        0.7,
        "test",
        as_of,
    )


def test_size_from_risk_per_trade_and_stop_distance() -> None:
    prof = RiskProfiler(cfg(risk_per_trade_pct=Decimal("0.5"), max_position_pct=Decimal(100)))
    a = prof.assess(_signal(), _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET))
    assert a.risk_amount == Decimal("500.00")
    assert a.quantity == Decimal(250)  # 500 / (100 - 98)
    assert a.notional == Decimal(25_000)
    assert not a.veto and a.approved
    assert set(a.dimensions) == set(DIMENSIONS)
    assert a.grade in "AB"


def test_size_capped_by_max_position_and_rounded_down_to_lot() -> None:
    prof = RiskProfiler(cfg(risk_per_trade_pct=Decimal(5), max_position_pct=Decimal(10)))
    sig = _signal(entry="100", stop="97", target="106")
    a = prof.assess(sig, _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET))
    assert a.quantity == Decimal(100)  # 5000/3 = 1666, capped at 10% of equity / 100
    inst = Instrument("A", lot_size=Decimal(30))
    b = prof.assess(sig, _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET), instrument=inst)
    assert b.quantity == Decimal(90)


def test_fractional_quantities_for_crypto_and_fx() -> None:
    assert lot_step(None) == Decimal(1)
    assert lot_step(Instrument("BTCUSD", AssetClass.CRYPTO)) == Decimal("0.0001")
    assert lot_step(Instrument("EURUSD", AssetClass.FX, lot_size=Decimal(1000))) == Decimal(1000)
    prof = RiskProfiler(cfg(max_position_pct=Decimal(100)))
    sig = _signal(entry="100", stop="70", target="160")
    a = prof.assess(
        sig,
        _panel(),
        Decimal(1_000),
        [],
        _regime(RegimeLabel.BULL_QUIET),
        instrument=Instrument("A", AssetClass.CRYPTO),
    )
    assert a.quantity == Decimal("0.1666")  # 5 / 30, rounded down to 0.0001
    eq = prof.assess(sig, _panel(), Decimal(1_000), [], _regime(RegimeLabel.BULL_QUIET))
    assert eq.veto and "rounds to zero" in eq.veto_reason and eq.quantity == 0


def test_broker_stated_size_rules_floor_and_veto_below_the_minimum() -> None:
    """An instrument whose broker states its rules (Capital.com USDJPY: step 100, min 100) is sized
    on that step, never the FX default 0.0001, and vetoed with the minimum named when below it."""
    prof = RiskProfiler(cfg(max_position_pct=Decimal(10)))
    sig = _signal(entry="150", stop="147.3", target="155.4")
    fx = Instrument("A", AssetClass.FX, lot_size=Decimal(100), min_size=Decimal(100))
    assert lot_step(fx) == Decimal(100) and lot_step(replace(fx, lot_size=Decimal(1))) == Decimal(1)
    a = prof.assess(sig, _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET), instrument=fx)
    assert a.veto and a.quantity == 0  # 66.66 (10% of equity / 150) floors to 0 on a 100 step
    assert "minimum deal size 100" in a.veto_reason and "size step 100" in a.veto_reason
    crypto = Instrument("A", AssetClass.CRYPTO, lot_size=Decimal("0.01"), min_size=Decimal("0.01"))
    b = prof.assess(sig, _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET), instrument=crypto)
    assert b.quantity == Decimal("66.66") and not b.veto  # the broker's 0.01 step, not 0.0001


def test_long_in_crisis_is_vetoed_short_is_not() -> None:
    prof = RiskProfiler()
    crisis = _regime(RegimeLabel.CRISIS)
    a = prof.assess(_signal(), _panel(), Decimal(100_000), [], crisis)
    assert a.veto and "crisis" in a.veto_reason and a.quantity == 0
    short = _signal(direction=Direction.SHORT, entry="100", stop="102", target="96")
    b = prof.assess(short, _panel(), Decimal(100_000), [], crisis)
    assert not b.dimensions["regime_alignment"].veto


def test_regime_alignment_scores_direction_against_regime() -> None:
    prof = RiskProfiler()
    short = _signal(direction=Direction.SHORT, entry="100", stop="102", target="96")
    bull_long = prof.assess(_signal(), _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET))
    bull_short = prof.assess(short, _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET))
    bear_long = prof.assess(_signal(), _panel(), Decimal(100_000), [], _regime(RegimeLabel.BEAR))
    ra = "regime_alignment"
    assert bull_long.dimensions[ra].score < bull_short.dimensions[ra].score
    assert bear_long.dimensions[ra].score > bull_long.dimensions[ra].score
    unsure = prof.assess(_signal(), _panel(), Decimal(100_000), [], _regime(RegimeLabel.BEAR, 0.0))
    assert unsure.dimensions[ra].score == 50.0


def test_concentration_vetoes_and_correlation() -> None:
    prof = RiskProfiler(cfg(max_positions=2))
    held_a = Position("A", Decimal(10), Decimal(100))
    a = prof.assess(_signal("A"), _panel(), Decimal(100_000), [held_a], _regime(RegimeLabel.BULL_QUIET))
    assert a.veto and "already" in a.veto_reason
    full = [Position("X", Decimal(1), Decimal(1)), Position("Y", Decimal(1), Decimal(1))]
    b = prof.assess(_signal("A"), _panel(), Decimal(100_000), full, _regime(RegimeLabel.BULL_QUIET))
    assert b.veto and "book full" in b.veto_reason
    corr = prof.assess(
        _signal("B"), _panel(corr_with_a=True), Decimal(100_000), [held_a], _regime(RegimeLabel.BULL_QUIET)
    )
    indep = prof.assess(
        _signal("B"), _panel(corr_with_a=False), Decimal(100_000), [held_a], _regime(RegimeLabel.BULL_QUIET)
    )
    assert corr.dimensions["concentration"].score > 90 > indep.dimensions["concentration"].score
    assert "(A)" in corr.dimensions["concentration"].detail


def test_illiquid_and_wild_instruments() -> None:
    prof = RiskProfiler(cfg(min_risk_grade="D"))
    thin = prof.assess(_signal(), _panel(volume=500.0), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET))
    assert thin.dimensions["liquidity"].veto and thin.dimensions["liquidity"].score == 100
    wild = prof.assess(
        _signal(entry="100", stop="60", target="180"),
        _panel(vol=0.12),
        Decimal(100_000),
        [],
        _regime(RegimeLabel.BULL_QUIET),
    )
    assert wild.dimensions["volatility"].veto
    calm = prof.assess(_signal(), _panel(vol=0.005), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET))
    assert calm.dimensions["volatility"].score < wild.dimensions["volatility"].score


def test_gap_risk_against_stop_distance() -> None:
    prof = RiskProfiler(cfg(min_risk_grade="D"))
    p = _panel(vol=0.02)
    tight = prof.assess(
        _signal(entry="100", stop="99.9", target="100.2"),
        p,
        Decimal(100_000),
        [],
        _regime(RegimeLabel.BULL_QUIET),
    )
    wide = prof.assess(
        _signal(entry="100", stop="90", target="120"),
        p,
        Decimal(100_000),
        [],
        _regime(RegimeLabel.BULL_QUIET),
    )
    assert tight.dimensions["gap_event"].veto
    assert wide.dimensions["gap_event"].score < tight.dimensions["gap_event"].score


def test_grades_and_min_grade_veto() -> None:
    assert [grade_for(x) for x in (0, 24.9, 25, 44.9, 45, 64.9, 65, 100)] == list("AABBCCDD")
    sig, panel = _signal(entry="100", stop="80", target="140"), _panel(vol=0.06, volume=1e4)
    bear = _regime(RegimeLabel.BEAR)
    lenient = RiskProfiler(cfg(min_risk_grade="D")).assess(sig, panel, Decimal(100_000), [], bear)
    assert lenient.grade in "CD" and not lenient.veto
    strict = RiskProfiler(cfg(min_risk_grade="B")).assess(sig, panel, Decimal(100_000), [], bear)
    assert strict.veto and f"grade {lenient.grade} is below the minimum B" in strict.veto_reason


def test_unknown_symbol_is_vetoed() -> None:
    as_of = datetime(2020, 6, 15, tzinfo=UTC)
    sig = Signal("s", "ZZZ", "t", Direction.LONG, Decimal(10), Decimal(9), Decimal(12), 0.5, "r", as_of)
    a = RiskProfiler().assess(sig, _panel(), Decimal(100_000), [], _regime(RegimeLabel.BULL_QUIET))
    assert a.veto and "no history" in a.veto_reason
    with pytest.raises(ValueError):
        RiskProfiler().assess(
            Signal(
                "s",
                "A",
                "t",
                Direction.LONG,
                Decimal(10),
                Decimal(9),
                Decimal(12),
                0.5,
                "r",
                datetime(1999, 1, 1, tzinfo=UTC),
            ),
            _panel(),
            Decimal(100_000),
            [],
            _regime(RegimeLabel.BULL_QUIET),
        )


@pytest.mark.parametrize(("fresh", "qty"), [(1.0, 250), (0.8, 200), (0.5, 125), (0.31, 77)])
def test_stale_regime_inputs_shrink_the_size_by_their_freshness(fresh: float, qty: int) -> None:
    """r14b #5: a stale input lowers the regime's confidence, and that means a smaller position (the
    risk amount × the inputs' freshness), said in the regime dimension - never the same size."""
    prof = RiskProfiler(cfg(risk_per_trade_pct=Decimal("0.5"), max_position_pct=Decimal(100)))
    regime = Regime(RegimeLabel.BULL_QUIET, 0.9 * fresh, DATES[-1], {"stress": 0.1, "freshness": fresh})
    a = prof.assess(_signal(), _panel(), Decimal(100_000), [], regime)
    assert a.quantity == Decimal(qty) and not a.veto
    assert (fresh < 1) == ("stale regime inputs: size" in a.dimensions["regime_alignment"].detail)


@pytest.mark.parametrize("fresh", [0.3, 0.25])
def test_regime_inputs_at_the_staleness_floor_allow_no_new_entries(fresh: float) -> None:
    prof = RiskProfiler(cfg(risk_per_trade_pct=Decimal("0.5"), max_position_pct=Decimal(100)))
    regime = Regime(RegimeLabel.BULL_QUIET, 0.25, DATES[-1], {"stress": 0.1, "freshness": fresh})
    for direction, stop in ((Direction.LONG, "98"), (Direction.SHORT, "102")):
        a = prof.assess(
            _signal(direction=direction, stop=stop, target="96" if stop == "102" else "104"),
            _panel(),
            Decimal(100_000),
            [],
            regime,
        )
        assert a.veto and a.quantity == 0 and "no new entries" in a.veto_reason


def test_one_profiler_over_many_days_equals_a_new_profiler_per_signal() -> None:
    """The profiler keeps what depends only on the regime (freshness, the regime dimension per side, the
    risk amount per equity) while the same regime object is asked: across regimes, sides and equities
    asked in any order, every assessment is a fresh profiler's."""
    rng = np.random.default_rng(3)
    panel = _panel(corr_with_a=True)
    regimes = [
        Regime(label, conf, DATES[-1], {"stress": 0.1, "freshness": fresh})
        for label, conf, fresh in (
            (RegimeLabel.BULL_QUIET, 0.9, 1.0),
            (RegimeLabel.BEAR, 0.6, 0.5),
            (RegimeLabel.CRISIS, 0.8, 1.0),
            (RegimeLabel.RANGE, 0.7, 0.25),
        )
    ]
    config = cfg(risk_per_trade_pct=Decimal("0.5"), max_position_pct=Decimal(100))
    kept = RiskProfiler(config)
    book = [Position("B", Decimal(10), Decimal(100))]
    seen = set()
    for _ in range(200):
        regime = regimes[int(rng.integers(len(regimes)))]
        long = bool(rng.integers(2))
        sig = _signal(direction=Direction.LONG if long else Direction.SHORT, stop="98" if long else "102",
                      target="104" if long else "96")  # fmt: skip
        equity = Decimal(int(rng.choice([50_000, 100_000, 250_000])))
        got = kept.assess(sig, panel, equity, book, regime)
        want = RiskProfiler(config).assess(sig, panel, equity, book, regime)
        assert repr(got) == repr(want)
        seen.add((regime.label, long, equity, got.quantity))
    assert len(seen) > 20
