"""`Features.values_at` (the strategies' one gather per indicator) reads exactly what `at(series, t)`
read per symbol: from the whole-history matrices a backtest builds (`every_row`) and from the
per-symbol series a run computes, NaN off either end of the panel, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features, at

from .synth import random_walk_panel

READS = [
    ("close", ()), ("volume", ()), ("ema", (20,)), ("sma", (50,)), ("adx", (14,)), ("atr", (14,)),
    ("rsi", (14,)), ("macd_hist", ()), ("pct_change", (63,)), ("prior_high", (20,)), ("prior_low", (20,)),
    ("avg_volume", (20,)), ("bb_upper", (20, 2.0)), ("bb_lower", (20, 2.0)),
]  # fmt: skip


def _series(f: Features, name: str, sym: str, params: tuple[object, ...]) -> np.ndarray:
    if name in ("bb_upper", "bb_lower"):
        upper, lower = f.bbands(sym, *params)  # type: ignore[arg-type]
        return upper if name == "bb_upper" else lower
    return getattr(f, name)(sym, *params)  # type: ignore[no-any-return]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(-7, 320), every_row=st.booleans())
def test_values_at_equals_at_per_symbol(seed: int, t: int, every_row: bool) -> None:
    panel = random_walk_panel(n_dates=300, n_symbols=6, seed=seed, nan_frac=0.05)
    syms = list(panel.symbols)[::-1]  # any order, as the strategies' candidates come
    reference = Features(panel)
    got = Features(panel, every_row=every_row)
    for name, params in READS:
        want = [at(_series(reference, name, s, params), t) for s in syms]
        values = got.values_at(name, t, syms, *params)
        assert all(type(v) is float for v in values)
        np.testing.assert_array_equal(np.array(values), np.array(want), err_msg=f"{name}{params} at {t}")
