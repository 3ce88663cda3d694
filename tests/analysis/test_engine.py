"""StrategyEngine: regime matching, score filter, conflict resolution and ranking."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.regime import Regime, RegimeLabel
from joe.analysis.scoring import InstrumentScore, ScoringEngine
from joe.analysis.strategies import StrategyEngine, StrategyParams, build_signal
from joe.config.schema import PipelineConfig
from joe.core.models import Direction, Signal

from .synth import random_walk_panel


@dataclass
class Fixed:
    """A stub strategy that calls every symbol in one direction with a fixed confidence."""

    name: str
    suited_regimes: frozenset[RegimeLabel]
    direction: Direction
    confidence: float

    def generate(
        self, panel: Panel, symbols: Sequence[str], as_of_index: int, features: Features | None = None
    ) -> list[Signal]:
        out = []
        for s in symbols:
            close = float(panel.close[as_of_index, panel.col(s)])
            sig = build_signal(
                strategy=self.name,
                panel=panel,
                symbol=s,
                t=as_of_index,
                direction=self.direction,
                entry=close,
                atr=close * 0.02,
                params=StrategyParams(),
                confidence=self.confidence,
                reason=f"stub {close:.2f}",
                trail=False,
            )
            assert sig is not None
            out.append(sig)
        return out


P = random_walk_panel(21, n_dates=60, n_symbols=5)
BULL = Regime(RegimeLabel.BULL_QUIET, 0.9, P.dates[-1], {"stress": 0.1})
RANGE = Regime(RegimeLabel.RANGE, 0.9, P.dates[-1], {"stress": 0.1})


def _scores(totals: dict[str, float]) -> list[InstrumentScore]:
    return [InstrumentScore(s, v, Direction.LONG, {}, P.dates[-1]) for s, v in totals.items()]


def test_only_strategies_suited_to_the_regime_run() -> None:
    bull_only = Fixed("a", frozenset({RegimeLabel.BULL_QUIET}), Direction.LONG, 0.6)
    range_only = Fixed("b", frozenset({RegimeLabel.RANGE}), Direction.LONG, 0.6)
    eng = StrategyEngine([bull_only, range_only], min_score=0)
    assert [s.name for s in eng.active(BULL)] == ["a"]
    sigs = eng.run(P, _scores({"S0": 60}), BULL)
    assert [s.strategy for s in sigs] == ["a"]
    assert [s.strategy for s in eng.run(P, _scores({"S0": 60}), RANGE)] == ["b"]


def test_min_score_top_n_and_max_signals() -> None:
    s = Fixed("a", frozenset(RegimeLabel), Direction.LONG, 0.6)
    eng = StrategyEngine([s], min_score=55, top_n=2, max_signals=10)
    sigs = eng.run(P, _scores({"S0": 80, "S1": 54.9, "S2": 70, "S3": 60}), BULL)
    assert [x.symbol for x in sigs] == ["S0", "S2"]
    assert [x.score for x in sigs] == [80, 70]
    assert all(x.meta["regime"] == "bull_quiet" for x in sigs)
    capped = StrategyEngine([s], min_score=0, top_n=10, max_signals=1).run(
        P, _scores({"S0": 80, "S2": 90}), BULL
    )
    assert [x.symbol for x in capped] == ["S2"]


def test_disagreement_drops_the_symbol_agreement_keeps_the_best() -> None:
    long_a = Fixed("a", frozenset(RegimeLabel), Direction.LONG, 0.5)
    long_b = Fixed("b", frozenset(RegimeLabel), Direction.LONG, 0.8)
    short_c = Fixed("c", frozenset(RegimeLabel), Direction.SHORT, 0.9)
    agree = StrategyEngine([long_a, long_b], min_score=0).run(P, _scores({"S0": 60}), BULL)
    assert len(agree) == 1 and agree[0].strategy == "b" and agree[0].meta["agreeing"] == ["a"]
    assert StrategyEngine([long_a, short_c], min_score=0).run(P, _scores({"S0": 60}), BULL) == []


def test_from_config_carries_exit_geometry() -> None:
    eng = StrategyEngine.from_config(
        PipelineConfig.model_validate(
            {"atr_stop_multiple": 3.0, "reward_risk": 1.5, "min_score": 60, "top_n": 7}
        )
    )
    assert eng.min_score == 60 and eng.top_n == 7
    assert {s.name for s in eng.strategies} == {"trend_following", "mean_reversion", "breakout", "momentum"}
    for s in eng.strategies:
        params = s.params  # type: ignore[attr-defined]
        assert params.atr_stop_multiple == 3.0 and params.reward_risk == 1.5
    assert isinstance(P.dates, pd.DatetimeIndex)


def _calls_reference(eng: StrategyEngine, panel: Panel, symbols: list[str], regime: Regime, t: int,
                     f: Features) -> dict[str, Signal]:  # fmt: skip
    """`calls` as it was before candidates: every strategy's signals built (`generate`), then chosen."""
    by_symbol: dict[str, list[Signal]] = {}
    for strat in eng.active(regime):
        for sig in strat.generate(panel, [s for s in symbols if s in panel], t, f):
            by_symbol.setdefault(sig.symbol, []).append(sig)
    out = {}
    for sym, sigs in by_symbol.items():
        if len({s.direction for s in sigs}) > 1:
            continue
        best = max(sigs, key=lambda s: (s.confidence, s.strategy))
        meta = dict(best.meta)
        meta["regime"] = regime.label.value
        meta["agreeing"] = sorted(s.strategy for s in sigs if s is not best)
        out[sym] = dataclasses.replace(best, meta=meta)
    return out


def _run_reference(eng: StrategyEngine, panel: Panel, scored: list[InstrumentScore], regime: Regime,
                   t: int, f: Features) -> list[Signal]:  # fmt: skip
    """`run` as it was before the ranking moved ahead of the copies: every call copied, then ranked."""
    ranked = sorted((s for s in scored if s.total >= eng.min_score), key=lambda s: (-s.total, s.symbol))
    chosen = ranked[: eng.top_n]
    score_of = {s.symbol: s.total for s in chosen}
    calls = _calls_reference(eng, panel, [s.symbol for s in chosen], regime, t, f)
    assert calls == eng.calls(panel, [s.symbol for s in chosen], regime, t, f)
    out = [dataclasses.replace(sig, score=score_of[sym]) for sym, sig in calls.items()]
    out.sort(key=lambda s: (-(s.confidence * (s.score or 0.0)), s.symbol))
    return out[: eng.max_signals]


def test_run_equals_copying_every_call_then_ranking() -> None:
    panel = random_walk_panel(5, n_dates=400, n_symbols=40)
    f = Features(panel)
    scorer = ScoringEngine()
    compared = 0
    for label in RegimeLabel:
        for max_signals in (1, 3, 10):
            eng = StrategyEngine(min_score=50, top_n=25, max_signals=max_signals)
            for t in range(210, 400, 23):
                regime = Regime(label, 0.8, panel.dates[t], {"stress": 0.2})
                scored = scorer.score(panel, panel.symbols, as_of_index=t, features=f)
                got = eng.run(panel, scored, regime, as_of_index=t, features=f)
                want = _run_reference(eng, panel, scored, regime, t, f)
                assert [(s, s.meta, s.score, s.reason) for s in got] == [
                    (s, s.meta, s.score, s.reason) for s in want
                ]
                compared += len(got)
    assert compared > 50, "the comparison must see signals"


def test_a_subclass_that_overrides_only_generate_is_decided_by_its_generate() -> None:
    """The engine asks a built-in strategy for its `candidates` (cheaper than building signals); a
    subclass that writes its own `generate` must be decided by that method, not by the parent's
    `candidates` it never looked at."""
    from joe.analysis.strategies.trend_following import TrendFollowing

    panel = random_walk_panel(4, n_dates=320, n_symbols=24)
    features = Features(panel)
    symbols = list(panel.symbols)
    t = panel.n_dates - 1
    regime = Regime(RegimeLabel.BULL_QUIET, 0.9, panel.dates[t], {"stress": 0.1})
    parent = TrendFollowing()
    assert parent.generate(panel, symbols, t, features), "the fixture must give the parent some calls"

    class Silent(TrendFollowing):
        def generate(self, panel, symbols, as_of_index, features=None):  # type: ignore[no-untyped-def]
            return []

    class Renamed(TrendFollowing):  # overrides nothing: the parent's candidates still decide
        pass

    scores = [InstrumentScore(s, 90.0, Direction.LONG, {}, panel.dates[t]) for s in symbols]
    assert StrategyEngine([Silent()], min_score=0, top_n=24).run(panel, scores, regime, t, features) == []
    want = StrategyEngine([parent], min_score=0, top_n=24).run(panel, scores, regime, t, features)
    got = StrategyEngine([Renamed()], min_score=0, top_n=24).run(panel, scores, regime, t, features)
    assert want and got == want
