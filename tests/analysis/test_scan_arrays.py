"""The scan ranks every scan at once and keeps its candidates as arrays: the same result as ranking
each scan alone and building every candidate.

`_reference` is the scan's former selection code (one `np.lexsort` per scan, a dict of hits, a
`ScanCandidate` per selected symbol, then the sort by (−hits, symbol)); the property compares the
rankings, the candidates (symbol, hits, metrics) and the filter counts on random panels, with metrics
rounded to make ties, infinities, duplicate scan names and watchlists listing a member twice.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.panel import Panel
from joe.analysis.scanner import (
    SCANS,
    MarketScanner,
    ScanCandidate,
    ScanDefinition,
    _prior_ext,
    _prior_ext_windows,
    scan_metrics,
)

from .synth import random_walk_panel


def _reference(
    scanner: MarketScanner, panel: Panel, names: list[str], m: dict[str, np.ndarray]
) -> tuple[list[ScanCandidate], dict[str, list[str]], int, dict[str, int]]:
    has_bar = np.isfinite(m["close"])
    price_ok = has_bar & (np.nan_to_num(m["close"], nan=-1.0) >= scanner.min_price)
    adv = m["avg_dollar_volume"]
    liquid = price_ok & ((adv >= scanner.min_avg_dollar_volume) | np.isnan(adv))
    eligible = liquid
    filtered = {
        "no_bar": int((~has_bar).sum()),
        "price": int((has_bar & ~price_ok).sum()),
        "liquidity": int((price_ok & ~liquid).sum()),
    }
    hits: dict[int, list[str]] = {}
    rankings: dict[str, list[str]] = {}
    for name in names:
        d = scanner.scans[name]
        vals = m[d.metric]
        ok = eligible & np.isfinite(vals)
        if d.threshold is not None:
            with np.errstate(invalid="ignore"):
                ok &= (vals <= d.threshold) if d.ascending else (vals >= d.threshold)
        cols = np.flatnonzero(ok)
        key = vals[cols] if d.ascending else -vals[cols]
        top = cols[np.lexsort((cols, key))][: d.limit]
        rankings[name] = [panel.symbols[j] for j in top]
        for j in top:
            hits.setdefault(int(j), []).append(name)
    for wl, members in scanner.watchlists.items():
        tag = f"WATCHLIST:{wl}"
        listed = [s for s in members if s in panel]
        rankings[tag] = [s for s in listed if has_bar[panel.col(s)]]
        for s in rankings[tag]:
            hits.setdefault(panel.col(s), []).append(tag)
    cands = [
        ScanCandidate(panel.symbols[j], tuple(h), {k: float(a[j]) for k, a in m.items()})
        for j, h in hits.items()
    ]
    cands.sort(key=lambda c: (-len(c.hits), c.symbol))
    return cands, rankings, int(eligible.sum()), filtered


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_dates=st.integers(30, 300),
    n_symbols=st.integers(1, 30),
    nan_frac=st.sampled_from([0.0, 0.1, 0.4]),
    decimals=st.sampled_from([None, 1, 2]),
    data=st.data(),
)
def test_scanning_at_once_equals_one_scan_at_a_time(
    seed: int, n_dates: int, n_symbols: int, nan_frac: float, decimals: int | None, data: st.DataObject
) -> None:
    panel = random_walk_panel(seed, n_dates, n_symbols, nan_frac)
    t = data.draw(st.integers(0, n_dates - 1), label="row")
    m = scan_metrics(panel, t)
    if decimals is not None:  # ties within a scan's ranking, and a few infinities
        m = {k: np.round(v, decimals) for k, v in m.items()}
        m["rel_volume"][::3] = np.inf
        m["gap"][1::4] = -np.inf
    limits = st.integers(0, 12)
    scans = dict(SCANS)
    scans["ANY_GAIN"] = ScanDefinition("ANY_GAIN", "", "pct_change", threshold=None, limit=data.draw(limits))
    scans["LOW_CLOSE"] = ScanDefinition("LOW_CLOSE", "", "close", ascending=True, limit=data.draw(limits))
    scans["NAN_THR"] = ScanDefinition("NAN_THR", "", "gap", threshold=math.nan)
    names = data.draw(st.lists(st.sampled_from(sorted(scans)), max_size=12), label="scans")
    members = data.draw(st.lists(st.sampled_from([*panel.symbols, "NOPE"]), max_size=6), label="watchlist")
    scanner = MarketScanner(
        scans=scans,
        watchlists={"a": members, "b": members[:2]},
        min_price=data.draw(st.sampled_from([0.0, 1.0, 50.0])),
        min_avg_dollar_volume=data.draw(st.sampled_from([0.0, 1e6, 1e9])),
    )
    got = scanner.scan(panel, scans=names, as_of=panel.dates[t], metrics=m)
    cands, rankings, eligible, filtered = _reference(scanner, panel, names, m)
    assert got.rankings == rankings
    assert (got.eligible, got.filtered_out) == (eligible, filtered)
    assert got.symbols == [c.symbol for c in cands]
    assert [c.hits for c in got.candidates] == [c.hits for c in cands]
    assert [got.hits(i) for i in range(len(cands))] == [c.hits for c in cands]
    assert all(_same(a.metrics, b.metrics) for a, b in zip(got.candidates, cands, strict=True))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(1, 80),
    cols=st.integers(1, 4),
    window=st.integers(1, 90),
    seed=st.integers(0, 10_000),
    zeros=st.sampled_from(["none", "positive", "signed"]),
    fn=st.sampled_from(["max", "min"]),
)
def test_prior_extremes_by_doubling_equal_window_by_window(
    rows: int, cols: int, window: int, seed: int, zeros: str, fn: str
) -> None:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, cols)), 1)  # ties, and zeros of either sign
    if zeros != "signed":
        x = x + 0.0  # -0.0 becomes 0.0: the doubling path
    if zeros == "none":
        x[x == 0] = 0.5
    x[rng.random(x.shape) < 0.2] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    x[rng.random(x.shape) < 0.05] = -np.inf
    got, want = _prior_ext(x, window, fn), _prior_ext_windows(x, window, fn)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
