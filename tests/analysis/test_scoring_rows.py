"""Scores read from every row computed at once (a backtest's `Features(every_row=True)`) equal scoring
the day's candidates alone (a run), and a `ScanResult` scores as its candidate objects do.

`score_rows` runs `_score_rows`' elementwise arithmetic over (dates × symbols); the property compares
every element with the one-row computation, and whole `score` outputs (with limits, so the head
selection that rounds only what can reach the head is covered too) between the two paths.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features
from joe.analysis.scanner import MarketScanner
from joe.analysis.scoring import COMPONENTS, DETAILS, InstrumentScore, ScoringEngine, _readings
from joe.brokers.base import Sentiment

from .synth import close_only_panel, random_walk_panel, same_float


def _equal(a: list[InstrumentScore], b: list[InstrumentScore]) -> bool:
    assert [(s.symbol, s.total, s.direction, s.hits, s.as_of) for s in a] == [
        (s.symbol, s.total, s.direction, s.hits, s.as_of) for s in b
    ]
    for x, y in zip(a, b, strict=True):
        assert x.components.keys() == y.components.keys() and x.details.keys() == y.details.keys()
        assert all(same_float(x.components[k], y.components[k]) for k in x.components)
        assert all(same_float(x.details[k], y.details[k]) for k in x.details)
    return True


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_dates=st.integers(30, 300),
    nan_frac=st.sampled_from([0.0, 0.05, 0.3]),
    close_only=st.lists(st.integers(0, 9), max_size=3),
    mode=st.sampled_from(["contrarian", "confirming"]),
    data=st.data(),
)
def test_every_row_at_once_equals_each_row_alone(
    seed: int, n_dates: int, nan_frac: float, close_only: list[int], mode: str, data: st.DataObject
) -> None:
    panel = close_only_panel(random_walk_panel(seed, n_dates, 10, nan_frac), sorted(set(close_only)))
    eng = ScoringEngine(sentiment_mode=mode)  # type: ignore[arg-type]
    every = eng.score_rows(Features(panel, every_row=True))
    f = Features(panel)
    cols = np.arange(panel.n_symbols)
    for t in data.draw(st.lists(st.integers(0, n_dates - 1), min_size=1, max_size=4), label="rows"):
        r = _readings(f, cols, t)
        r["sentiment_net_long"] = np.full(len(cols), np.nan)
        with np.errstate(all="ignore"):
            total, sign, comps = eng._score_rows(r)
        want = {"ok": r["ok"], "total": total, "sign": sign, **comps, **{k: r[k] for k in DETAILS}}
        assert every.keys() == want.keys() and set(COMPONENTS) <= every.keys()
        for k, v in want.items():
            got = every[k][t]
            assert np.array_equal(got, v, equal_nan=True), k
            assert np.array_equal(np.signbit(got), np.signbit(v)), k  # -0.0 stays -0.0


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_dates=st.integers(60, 300),
    nan_frac=st.sampled_from([0.0, 0.3]),
    limit=st.one_of(st.none(), st.integers(0, 15)),
    data=st.data(),
)
def test_a_day_scores_the_same_from_every_row_and_from_its_scan(
    seed: int, n_dates: int, nan_frac: float, limit: int | None, data: st.DataObject
) -> None:
    panel = random_walk_panel(seed, n_dates, 24, nan_frac)
    t = data.draw(st.integers(0, n_dates - 1), label="row")
    scan = MarketScanner(watchlists={"w": ["S3", "S11"]}, min_avg_dollar_volume=0).scan(panel.head(t + 1))
    sentiment = {"S1": Sentiment("S1", 70.0, 30.0)} if data.draw(st.booleans()) else {}
    eng = ScoringEngine()
    alone = eng.score(panel.head(t + 1), scan.candidates, sentiment, features=Features(panel.head(t + 1)))
    head = alone if limit is None else alone[:limit]
    every = Features(panel, every_row=True)
    assert _equal(eng.score(panel.head(t + 1), scan, sentiment, t, every, limit), head)
    assert _equal(eng.score(panel.head(t + 1), scan.candidates, sentiment, t, every, limit), head)
    assert _equal(eng.score(panel.head(t + 1), scan, sentiment, t, Features(panel), limit), head)
