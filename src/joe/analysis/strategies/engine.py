"""`StrategyEngine`: run the strategies that suit the regime on the best-scored instruments.

Only instruments scoring at least `min_score` are considered, best first, at most `top_n` of them.
When strategies disagree on a symbol (one LONG, one SHORT) the symbol is dropped: an ambiguous
call is no call. When several agree, the most confident signal is kept and the others are named
in its `meta["agreeing"]`. Signals are ranked by confidence × score and capped at `max_signals`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.regime import Regime
from joe.analysis.scoring import InstrumentScore
from joe.analysis.strategies.base import Candidate, Strategy, StrategyParams
from joe.analysis.strategies.breakout import Breakout
from joe.analysis.strategies.mean_reversion import MeanReversion
from joe.analysis.strategies.momentum import Momentum
from joe.analysis.strategies.trend_following import TrendFollowing
from joe.config.schema import PipelineConfig
from joe.core.models import Signal


def default_strategies(params: StrategyParams | None = None) -> list[Strategy]:
    """The four built-in strategies sharing one exit geometry."""
    p = params or StrategyParams()
    return [TrendFollowing(params=p), MeanReversion(params=p), Breakout(params=p), Momentum(params=p)]


class StrategyEngine:
    """Match strategies to the regime and turn the top scores into ranked signals."""

    def __init__(
        self,
        strategies: Sequence[Strategy] | None = None,
        min_score: float = 55.0,
        top_n: int = 20,
        max_signals: int = 10,
    ) -> None:
        self.strategies = list(strategies) if strategies is not None else default_strategies()
        self.min_score = min_score
        self.top_n = top_n
        self.max_signals = max_signals

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> StrategyEngine:
        """An engine with the pipeline section's thresholds and exit geometry."""
        params = StrategyParams(atr_stop_multiple=cfg.atr_stop_multiple, reward_risk=cfg.reward_risk)
        return cls(default_strategies(params), cfg.min_score, cfg.top_n, cfg.max_signals)

    def active(self, regime: Regime) -> list[Strategy]:
        """The strategies that suit `regime`."""
        return [s for s in self.strategies if regime.label in s.suited_regimes]

    def run(
        self,
        panel: Panel,
        scored: Sequence[InstrumentScore],
        regime: Regime,
        as_of_index: int | None = None,
        features: Features | None = None,
    ) -> list[Signal]:
        """Signals at row `as_of_index` (the last row when None), best first."""
        t = panel.n_dates - 1 if as_of_index is None else as_of_index
        f = features or Features(panel)
        ranked = sorted((s for s in scored if s.total >= self.min_score), key=lambda s: (-s.total, s.symbol))
        chosen = ranked[: self.top_n]
        score_of = {s.symbol: s.total for s in chosen}
        best = self._best(panel, [s.symbol for s in chosen], regime, t, f)
        # Ranked by confidence × score before any signal is built; only the kept calls are (with their
        # meta and score at once): the same signals, in the same order, as building every call first.
        ranked_calls = sorted(
            best.items(), key=lambda kv: (-(kv[1][0].confidence * (score_of[kv[0]] or 0.0)), kv[0])
        )
        kept = ranked_calls[: self.max_signals]
        if not kept:
            return []
        as_of = panel.date_at(t)
        return [cand.signal(as_of, extra, score_of[sym]) for sym, (cand, extra) in kept]

    def calls(
        self, panel: Panel, symbols: Sequence[str], regime: Regime, t: int, features: Features
    ) -> dict[str, Signal]:
        """The strategies' call on each of `symbols` at row `t`: symbol → the most confident signal
        of the active strategies, when they agree on a direction (no entry when none fires or they
        disagree). No score threshold and no cap: `run` applies those to pick entries; the strategy
        exits of held positions (`joe.portfolio.strategy_exits`) read the calls on what is held."""
        best = self._best(panel, symbols, regime, t, features)
        if not best:
            return {}
        as_of = panel.date_at(t)
        return {sym: cand.signal(as_of, extra) for sym, (cand, extra) in best.items()}

    def _best(
        self, panel: Panel, symbols: Sequence[str], regime: Regime, t: int, features: Features
    ) -> dict[str, tuple[Candidate, dict[str, Any]]]:
        """`calls` before any signal is built: symbol → (the most confident candidate, the meta its
        call adds to the signal's own: the regime and the agreeing strategies)."""
        by_symbol: dict[str, list[Candidate]] = {}
        present = [s for s in symbols if s in panel]
        for strat in self.active(regime):
            for c in _candidates(strat, panel, present, t, features):
                by_symbol.setdefault(c.symbol, []).append(c)
        out: dict[str, tuple[Candidate, dict[str, Any]]] = {}
        for sym, cands in by_symbol.items():
            if len({c.direction for c in cands}) > 1:
                continue
            best = max(cands, key=lambda c: (c.confidence, c.strategy))
            extra = {
                "regime": regime.label.value,
                "agreeing": sorted(c.strategy for c in cands if c is not best),
            }
            out[sym] = (best, extra)
        return out


@functools.cache
def _decides_by_candidates(cls: type) -> bool:
    """Whether `cls`'s calls are its `candidates`: the nearest class in its MRO that defines either
    method defines `candidates`. A subclass of a built-in strategy that overrides only `generate` is
    decided by its `generate` — the method it wrote — not by the parent's `candidates`."""
    for k in cls.__mro__:
        if "candidates" in vars(k):
            return True
        if "generate" in vars(k):
            return False
    return False


def _candidates(
    strat: Strategy, panel: Panel, symbols: Sequence[str], t: int, features: Features
) -> list[Candidate]:
    """`strat`'s calls at row `t`: its `candidates` when they are what decides its calls (the
    built-in strategies), else its `generate`'s signals as they are (a strategy that only implements
    the protocol, or a subclass that overrides `generate`)."""
    if _decides_by_candidates(type(strat)):
        return strat.candidates(panel, symbols, t, features)  # type: ignore[attr-defined,no-any-return]
    return [
        Candidate(s.strategy, s.symbol, s.direction, s.confidence, prebuilt=s)
        for s in strat.generate(panel, symbols, t, features)
    ]
