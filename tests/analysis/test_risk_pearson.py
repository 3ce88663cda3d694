"""The risk profiler's concentration dimension reads `pearson`, a lower-overhead `np.corrcoef`: it must
give np.corrcoef's value to the last bit (a grade boundary must not move), and `_correlations` must pick
the same pairs (≥ 20 common days, neither series constant) as the per-pair masking it replaced."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.risk import RiskProfiler, mean_of, pearson, pearson_rows

finite = st.floats(-0.2, 0.2, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 80).flatmap(lambda n: st.tuples(arrays(np.float64, n, elements=finite),
                                                      arrays(np.float64, n, elements=finite))))  # fmt: skip
def test_pearson_is_corrcoef_bit_for_bit(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    with np.errstate(all="ignore"):
        want = float(np.corrcoef(x, y)[0, 1])
        got = pearson(x, y)
    assert got == want or (math.isnan(got) and math.isnan(want))


def _reference(f: Features, sym: str, t: int, others: set[str]) -> dict[str, float]:
    """The per-pair form `_correlations` had (mask each pair, np.std, np.corrcoef)."""
    lo = max(0, t - 59)
    mine = f.log_returns(sym)[lo : t + 1]
    out: dict[str, float] = {}
    for o in sorted(others - {sym}):
        theirs = f.log_returns(o)[lo : t + 1]
        ok = np.isfinite(mine) & np.isfinite(theirs)
        if ok.sum() < 20 or np.std(mine[ok]) == 0 or np.std(theirs[ok]) == 0:
            continue
        out[o] = float(np.corrcoef(mine[ok], theirs[ok])[0, 1])
    return out


def test_correlations_equal_the_per_pair_form_with_gaps_and_flat_series() -> None:
    rng = np.random.default_rng(5)
    n, m = 160, 8
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    close[rng.random((n, m)) < 0.04] = np.nan  # missing bars: pairs masked differently
    close[:, 3] = 42.0  # a constant series: no correlation with it
    close[:130, 5] = np.nan  # a late listing: fewer than 20 common days early on
    close[100:140, 6] = 7.0  # flat for a while, then moving
    panel = Panel(pd.bdate_range("2021-01-01", periods=n, tz="UTC"), [f"S{j}" for j in range(m)],
                  close, close, close, close, np.ones((n, m)))  # fmt: skip
    f = Features(panel)
    seen = 0
    for t in range(0, n, 3):
        for sym in panel.symbols:
            others = set(panel.symbols) | {"NOT_LISTED"}
            got = RiskProfiler._correlations(f, panel, sym, t, others)
            want = _reference(f, sym, t, others - {"NOT_LISTED"})
            assert list(got) == list(want)
            assert all(got[k] == want[k] for k in want)
            seen += len(want)
    assert seen > 500


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.integers(2, 70).flatmap(
        lambda n: st.lists(arrays(np.float64, n, elements=finite), min_size=2, max_size=14)
    )
)
def test_pearson_rows_is_pearson_for_each_row(rows: list[np.ndarray]) -> None:
    # Near-constant rows (a spread of rounding noise: [0.1] * 6 centres to ~1e-17) have no correlation to
    # speak of in either computation; the risk stage leaves constant windows out before the Gram matrix.
    assume(all(np.ptp(r) > 1e-9 * float(np.max(np.abs(r))) for r in rows))
    x, ys = rows[0], rows[1:]
    with np.errstate(all="ignore"):
        got = pearson_rows(x, ys)
        want = [pearson(x, y) for y in ys]
    # Not bit for bit: OpenBLAS may sum a larger Gram matrix's entries in another order than a 2-row
    # one's, and its threads may split the sum differently from run to run (found by CI: x = [4.2e-120,
    # 0, 0, 0] beside ten zero rows 1 ulp off; a correlation of -3.3e-6, all cancellation, off in its
    # last digits). Correlations lie in [-1, 1]: equal to 1e-12.
    assert [
        math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12) or (math.isnan(g) and math.isnan(w))
        for g, w in zip(got, want, strict=True)
    ] == [True] * len(ys)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=9))
def test_mean_of_is_np_mean(values: list[float]) -> None:
    assert mean_of(values) == float(np.mean(values))


def _gram_form(f: Features, sym: str, t: int, others: set[str]) -> dict[str, float]:
    """The form `_correlations` had before the day's windows were kept (`Features.return_window`):
    each window sliced and checked per pair, the whole pairs through `pearson_rows`."""
    lo = max(0, t - 59)
    mine = f.log_returns(sym)[lo : t + 1]
    mine_ok = np.isfinite(mine)
    mine_flat = bool(mine_ok.all()) and bool(np.std(mine) == 0)
    pairs: list[tuple[str, np.ndarray | None, np.ndarray]] = []
    for o in sorted(others - {sym}):
        theirs = f.log_returns(o)[lo : t + 1]
        ok = mine_ok & np.isfinite(theirs)
        if ok.all():
            x, y, x_flat = mine, theirs, mine_flat
            y_flat = len(x) >= 20 and not x_flat and bool(np.std(y) == 0)
            masked = False
        else:
            x, y = mine[ok], theirs[ok]
            x_flat = len(x) >= 20 and np.std(x) == 0
            y_flat = len(x) >= 20 and not x_flat and np.std(y) == 0
            masked = True
        if len(x) < 20 or x_flat or y_flat:
            continue
        pairs.append((o, x if masked else None, y))
    whole = [y for _, x, y in pairs if x is None]
    batch = iter(pearson_rows(mine, whole)) if whole else iter(())
    return {o: next(batch) if x is None else pearson(x, y) for o, x, y in pairs}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rows=st.lists(st.integers(0, 99), min_size=1, max_size=12),
    gaps=st.floats(0, 0.1),
    flat=st.integers(0, 99),
)
def test_correlations_from_the_days_windows_equal_the_per_pair_gram_form(
    seed: int, rows: list[int], gaps: float, flat: int
) -> None:
    """The windows kept for the row last asked (rows asked in any order, again and again) give the
    correlations of the form before them, bit for bit, with missing bars, flat stretches and few rows."""
    rng = np.random.default_rng(seed)
    n, m = 100, 7
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    close[rng.random((n, m)) < gaps] = np.nan
    close[flat : flat + 40, 2] = 9.0  # flat for a while
    close[:, 4] = 3.0  # always flat
    panel = Panel(pd.bdate_range("2021-01-01", periods=n, tz="UTC"), [f"S{j}" for j in range(m)],
                  close, close, close, close, np.ones((n, m)))  # fmt: skip
    f = Features(panel)
    for t in rows:
        for sym in panel.symbols:
            others = set(rng.choice(panel.symbols, size=4).tolist())
            got = RiskProfiler._correlations(f, panel, sym, t, others)
            want = _gram_form(f, sym, t, others)
            assert list(got) == list(want)
            assert all(got[k] == want[k] for k in want), (t, sym)
