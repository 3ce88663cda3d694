"""`joe.data.wicks` computes every symbol's excursions in one 2-D pass and skips the symbols no bar of
which could be an outlier: the same findings and exclusions as the per-symbol pass it replaced (kept
here as the reference), on panels with bad ticks, gaps, missing bars and close-only columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.data import quality
from joe.data.findings import QualityConfig
from joe.data.quality import check_bars
from joe.data.wicks import TYPICAL_MULT, _scale, _what, check_wicks, excursions


def _reference_excursions(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D excursions as they were computed before the 2-D pass."""
    valid = np.flatnonzero(np.isfinite(c))
    prev = np.full(len(c), np.nan)
    prev[valid[1:]] = c[valid[:-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        parts = np.vstack(
            [
                np.log(h / np.fmax(o, c)),
                np.log(np.fmin(o, c) / lo),
                np.fmin(np.abs(np.log(o / prev)), np.abs(np.log(o / c))),
            ]
        )
    parts = np.where(np.isfinite(parts), np.maximum(parts, 0.0), np.nan)
    full = np.isfinite(parts[:2]).all(axis=0)
    best = np.nanmax(np.where(np.isfinite(parts), parts, -1.0), axis=0)
    which = np.argmax(np.where(np.isfinite(parts), parts, -1.0), axis=0)
    return np.where(full & (best >= 0), best, np.nan), which


def _reference_check_wicks(arr, keep, add, rows_text, cfg, *, strict_last=True):  # type: ignore[no-untyped-def]
    """The per-symbol pass as it was (every symbol's scale and median, no skip)."""
    extreme = math.log(cfg.extreme_ratio)
    for j in map(int, np.flatnonzero(keep)):
        o, h, lo, c = (arr[k][:, j] for k in ("open", "high", "low", "close"))
        e, which = _reference_excursions(o, h, lo, c)
        if not np.isfinite(e).any():
            continue
        s = _scale(c)
        last = int(np.flatnonzero(np.isfinite(c))[-1])
        bar = (o, h, lo, c, e, which, s)
        with np.errstate(invalid="ignore"):
            wild = np.flatnonzero(e > extreme)
            usual = TYPICAL_MULT * float(np.nanmedian(e))
            odd = np.flatnonzero((e > cfg.outlier_k * s) & (e >= cfg.outlier_min_move) & (e > usual))
        if wild.size:
            keep[j] = False
            add(j, "error", "extreme_move", _what(bar, int(wild[0])), int(wild[0]))
            continue
        if not odd.size:
            continue
        if odd[-1] == last and strict_last:
            keep[j] = False
            add(j, "error", "last_bar_outlier", _what(bar, last), last)
            continue
        add(j, "warning", "bar_outlier", rows_text(odd, j) + _what(bar, int(odd[0])), int(odd[0]))


@st.composite
def _panel(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n, m = draw(st.integers(0, 40)), draw(st.integers(0, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    vol = draw(st.sampled_from([0.001, 0.01, 0.05]))
    close = 50 * np.exp(np.cumsum(rng.normal(0, vol, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, vol, (n, m)))
    high = np.fmax(open_, close) * np.exp(np.abs(rng.normal(0, vol, (n, m))))
    low = np.fmin(open_, close) * np.exp(-np.abs(rng.normal(0, vol, (n, m))))
    arr = {"open": open_, "high": high, "low": low, "close": close}
    for _ in range(draw(st.integers(0, 6))):  # bad ticks of every size, on any bar (the last too)
        if n and m:
            t, j = draw(st.integers(0, n - 1)), draw(st.integers(0, m - 1))
            part = draw(st.sampled_from(["open", "high", "low"]))
            x = draw(st.sampled_from([0.05, 0.12, 0.3, 1.0, 2.0]))
            arr[part][t, j] *= math.exp(-x if part == "low" else x)
    for _ in range(draw(st.integers(0, 8))):  # missing bars, missing opens, close-only columns
        if n and m:
            t, j = draw(st.integers(0, n - 1)), draw(st.integers(0, m - 1))
            names = draw(st.sampled_from([("open",), ("open", "high", "low", "close"), ("high", "low")]))
            for k in names:
                arr[k][t, j] = np.nan
    return arr


@settings(max_examples=300, deadline=None)
@given(_panel(), st.booleans(), st.data())
def test_same_findings_as_the_per_symbol_pass(
    arr: dict[str, np.ndarray], strict: bool, data: st.DataObject
) -> None:
    m = arr["close"].shape[1]
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
    cfg = QualityConfig()
    got: list[tuple[int, str, str, int]] = []
    want: list[tuple[int, str, str, int]] = []
    keep_new, keep_old = keep.copy(), keep.copy()
    text = lambda rows, j: f"{list(map(int, rows))}/{j}"  # noqa: E731
    check_wicks(
        arr,
        keep_new,
        lambda j, sev, check, msg, t: got.append((j, sev, check, t)),
        text,
        cfg,
        strict_last=strict,
    )
    _reference_check_wicks(
        arr,
        keep_old,
        lambda j, sev, check, msg, t: want.append((j, sev, check, t)),
        text,
        cfg,
        strict_last=strict,
    )
    assert got == want
    np.testing.assert_array_equal(keep_new, keep_old)
    for j in range(m):  # each column of the 2-D pass is the 1-D pass on it, bit for bit
        cols = [arr[k][:, j] for k in ("open", "high", "low", "close")]
        e1, w1 = excursions(*cols)
        e0, w0 = _reference_excursions(*cols)
        np.testing.assert_array_equal(e1, e0)
        np.testing.assert_array_equal(w1, w0)


@settings(max_examples=150, deadline=None)
@given(_panel(), st.sampled_from([0.0, 0.02, 0.2]))
def test_quality_stage_same_with_and_without_the_outlier_skip(
    arr: dict[str, np.ndarray], jump: float
) -> None:
    """`check_bars` skips the close-outlier pass of symbols with no return of `outlier_min_move`
    (`quality._may_hit`): the same report, exclusions and repaired arrays as the pass over every symbol."""
    n, m = arr["close"].shape
    if n and m:  # a close jump on the middle bar of the first symbol (an outlier, a split, a tick)
        for k in ("open", "high", "low", "close"):
            arr[k][n // 2 :, 0] *= math.exp(jump)
    fields = {**arr, "volume": np.full((n, m), 1000.0)}
    dates = pd.bdate_range("2024-01-01", periods=n, tz="UTC")
    symbols = [f"S{j}" for j in range(m)]
    got = check_bars(dates, symbols, fields)
    saved = quality._may_hit
    quality._may_hit = lambda r, cfg: np.ones(r.shape[1], dtype=bool)  # the pass over every symbol
    try:
        want = check_bars(dates, symbols, fields)
    finally:
        quality._may_hit = saved
    assert got.report.findings == want.report.findings
    np.testing.assert_array_equal(got.keep, want.keep)
    for k in got.fields:
        np.testing.assert_array_equal(got.fields[k], want.fields[k])


_cell = st.sampled_from([np.nan, np.inf, -1.0, 0.0, 1.0, 2.0, 4.0, 8.0])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=3), st.data())
def test_2d_excursions_equal_the_reference_on_ties_and_bad_cells(n: int, m: int, data: st.DataObject) -> None:
    """Per column, `excursions` of a (dates x symbols) panel equals the stacked argmax/nanmax pass it
    replaced, `which` included: prices from a few values (ties between the parts, NaN, inf, 0, < 0)."""
    o, h, lo, c = (
        np.array(data.draw(st.lists(_cell, min_size=n * m, max_size=n * m)), dtype=float).reshape(n, m)
        for _ in range(4)
    )
    e, which = excursions(o, h, lo, c)
    for j in range(m):
        e0, w0 = _reference_excursions(o[:, j], h[:, j], lo[:, j], c[:, j])
        np.testing.assert_array_equal(e[:, j], e0)
        np.testing.assert_array_equal(which[:, j], w0)
