"""Panel construction, alignment and truncation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from joe.analysis.panel import Panel

from .synth import random_walk_panel


def _frame(dates: pd.DatetimeIndex, base: float) -> pd.DataFrame:
    n = len(dates)
    c = base + np.arange(n, dtype=float)
    return pd.DataFrame(
        {"open": c - 0.5, "high": c + 1, "low": c - 1, "close": c, "volume": np.full(n, 1000.0)}, index=dates
    )


def test_from_frames_aligns_on_union_of_dates_with_nan_gaps() -> None:
    d = pd.bdate_range("2020-01-01", periods=5, tz="UTC")
    frames = {"A": _frame(d, 10), "B": _frame(d[[0, 2, 4]], 100)}
    p = Panel.from_frames(frames)
    assert p.symbols == ["A", "B"]
    assert p.close.shape == (5, 2)
    np.testing.assert_array_equal(p.close[:, 1], [100, np.nan, 101, np.nan, 102])
    np.testing.assert_array_equal(p.close[:, 0], [10, 11, 12, 13, 14])
    # Columns are contiguous so TA-Lib can read them without a copy.
    assert p.close[:, 0].flags["C_CONTIGUOUS"]


def test_from_frames_accepts_naive_index_as_utc_and_sorts() -> None:
    d = pd.bdate_range("2020-01-01", periods=4)
    f = _frame(d, 1.0).iloc[::-1]
    p = Panel.from_frames({"X": f, "Y": _frame(d[:2], 5.0)})
    assert str(p.dates.tz) == "UTC"
    assert p.dates.is_monotonic_increasing
    np.testing.assert_array_equal(p.close[:, 0], [1, 2, 3, 4])


def test_truncate_and_index_at() -> None:
    p = random_walk_panel(1, n_dates=50, n_symbols=3)
    cut = p.dates[19]
    q = p.truncate(cut)
    assert q.n_dates == 20 and q.dates[-1] == cut
    np.testing.assert_array_equal(q.close, p.close[:20])
    # A time between two bars resolves to the earlier bar.
    assert p.index_at(cut + pd.Timedelta(hours=5)) == 19
    assert p.index_at(None) == 49
    with pytest.raises(ValueError):
        p.index_at(p.dates[0] - pd.Timedelta(days=1))


def test_select_and_frame_round_trip() -> None:
    p = random_walk_panel(2, n_dates=30, n_symbols=4, nan_frac=0.2)
    s = p.select(["S2", "S0"])
    assert s.symbols == ["S2", "S0"]
    np.testing.assert_array_equal(s.close[:, 0], p.close[:, 2])
    f = p.frame("S1")
    assert np.isfinite(f["close"]).all()
    back = Panel.from_frames({"S1": f})
    np.testing.assert_array_equal(back.close[:, 0], f["close"].to_numpy())
    assert "S1" in p and "ZZ" not in p


def test_rejects_bad_shapes_and_duplicates() -> None:
    d = pd.bdate_range("2020-01-01", periods=3, tz="UTC")
    ok = np.ones((3, 2))
    with pytest.raises(ValueError, match="shape"):
        Panel(d, ["A", "B"], ok, ok, ok, np.ones((3, 1)), ok)
    with pytest.raises(ValueError, match="unique"):
        Panel(d, ["A", "A"], ok, ok, ok, ok, ok)
    with pytest.raises(ValueError, match="increasing"):
        Panel(d[::-1], ["A", "B"], ok, ok, ok, ok, ok)


def test_head_is_the_panel_built_from_the_first_rows() -> None:
    """`head` skips the constructor's checks (a backtest cuts the panel every day): it must still be
    exactly the panel the constructor makes from those rows."""
    rng = np.random.default_rng(3)
    n, m = 30, 4
    arrs = {k: np.asfortranarray(rng.random((n, m))) for k in ("open", "high", "low", "close", "volume")}
    dates = pd.bdate_range("2024-01-01", periods=n, tz="UTC")
    full = Panel(dates, ["A", "B", "C", "D"], **arrs)
    for k in (0, 1, 17, n, n + 5):
        got = full.head(k)
        want = Panel(dates[:k], ["A", "B", "C", "D"], **{f: a[:k] for f, a in arrs.items()})
        assert got.dates.equals(want.dates) and str(got.dates.tz) == str(want.dates.tz) == "UTC"
        assert got.symbols == want.symbols and got.symbols is not full.symbols
        for f in ("open", "high", "low", "close", "volume"):
            a, b = getattr(got, f), getattr(want, f)
            assert a.shape == b.shape and np.array_equal(a, b) and a.strides[0] == a.itemsize
        assert [got.col(s) for s in "ABCD"] == [0, 1, 2, 3] and "E" not in got
        if 0 < k < n:
            assert got.date_at(k - 1) == want.date_at(k - 1) == dates[k - 1].to_pydatetime()
            with pytest.raises(IndexError):
                got.date_at(k)  # a row past the cut is not there
