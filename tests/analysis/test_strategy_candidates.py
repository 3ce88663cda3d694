"""Candidates: the float screen never admits a geometry the Decimal one refuses, and a strategy's
signals are its candidates built (the engine builds only the kept ones)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features
from joe.analysis.strategies import StrategyParams, default_strategies
from joe.analysis.strategies.base import geometry, propose, surely_valid
from joe.core.models import Direction

from .synth import random_walk_panel

prices = st.one_of(
    st.floats(1e-9, 2.0, allow_nan=False),
    st.floats(0.5, 1e7, allow_nan=False),
    st.sampled_from([1.0, 0.99995, 1.00004999, 3e-8, 1e-4, 123.45675]),
)
atrs = st.one_of(st.floats(1e-12, 1e5, allow_nan=False), st.sampled_from([1e-8, 5e-5, 2.5e-5, 1e-4]))
params = st.builds(
    StrategyParams,
    atr_stop_multiple=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
    reward_risk=st.sampled_from([0.1, 1.0, 1.5, 2.0, 3.0]),
)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(entry=prices, atr=atrs, direction=st.sampled_from(list(Direction)), p=params, trail=st.booleans())
def test_the_float_screen_implies_the_decimal_geometry(
    entry: float, atr: float, direction: Direction, p: StrategyParams, trail: bool
) -> None:
    exact = geometry(entry, atr, direction, p, trail)
    if surely_valid(entry, atr, direction, p):
        assert exact is not None
    cand = propose(
        strategy="s", symbol="X", direction=direction, entry=entry, atr=atr, params=p,
        confidence=0.5, reason=lambda: "r", trail=trail,
    )  # fmt: skip
    assert (cand is None) == (exact is None)


def test_the_screen_decides_most_real_calls_without_decimals() -> None:
    panel = random_walk_panel(3, n_dates=300, n_symbols=30)
    f = Features(panel)
    screened = total = 0
    for strat in default_strategies():
        for t in range(150, 300, 10):
            for c in strat.candidates(panel, panel.symbols, t, f):  # type: ignore[attr-defined]
                total += 1
                screened += surely_valid(c.entry, c.atr, c.direction, c.params)
    assert total > 50 and screened == total


def test_generate_is_the_candidates_built_in_order() -> None:
    panel = random_walk_panel(8, n_dates=320, n_symbols=24, nan_frac=0.02)
    f = Features(panel)
    seen = 0
    for strat in default_strategies():
        for t in range(140, 320, 9):
            sigs = strat.generate(panel, panel.symbols, t, f)
            cands = strat.candidates(panel, panel.symbols, t, f)  # type: ignore[attr-defined]
            assert [c.signal(panel.date_at(t)) for c in cands] == sigs
            assert [s.reason for s in sigs] == [c.reason() for c in cands]
            assert all(
                c.confidence == s.confidence and not math.isnan(c.entry)
                for c, s in zip(cands, sigs, strict=True)
            )
            seen += len(sigs)
    assert seen > 20
