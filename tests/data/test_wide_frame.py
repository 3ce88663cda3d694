"""`joe.data.frames.wide_frame` is `pd.concat(columns, axis=1, sort=True)` for a source's frames (float
series on sorted unique time indexes), and declines anything else."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.data.frames import wide_frame

DAYS = pd.date_range("2024-01-01", periods=40, freq="D", tz="UTC", name="ts")


@st.composite
def _columns(draw: st.DrawFn) -> dict[str, pd.Series]:
    n = draw(st.integers(1, 6))
    same = draw(st.booleans())
    unit = draw(st.sampled_from(["ns", "us", "s"]))
    tz = draw(st.sampled_from(["UTC", None]))
    base = draw(st.sets(st.integers(0, len(DAYS) - 1), min_size=0, max_size=len(DAYS)))
    out: dict[str, pd.Series] = {}
    for k in range(n):
        rows = base if same else draw(st.sets(st.integers(0, len(DAYS) - 1), max_size=len(DAYS)))
        ix = DAYS[sorted(rows)].as_unit(unit)
        ix = ix.tz_localize(None) if tz is None else ix
        vals = draw(
            st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=len(ix), max_size=len(ix))
        )
        out[f"S{k}"] = pd.Series(vals, index=ix, dtype="float64", name="close")
    return out


@settings(max_examples=200, deadline=None)
@given(_columns())
def test_equals_concat(columns: dict[str, pd.Series]) -> None:
    got = wide_frame(columns)
    assert got is not None
    want = pd.concat(columns, axis=1, sort=True)
    pd.testing.assert_frame_equal(got, want, check_freq=False)


def test_declines_what_it_does_not_build() -> None:
    ix = DAYS[:3]
    floats = pd.Series([1.0, 2.0, 3.0], index=ix)
    assert wide_frame({}) is None
    assert wide_frame({"A": floats, "B": pd.Series([1, 2, 3], index=ix)}) is None  # ints
    assert wide_frame({"A": floats, "B": pd.Series([1.0, 2.0], index=ix[[1, 0]])}) is None  # unsorted
    assert wide_frame({"A": floats, "B": pd.Series([1.0, 2.0], index=ix[[0, 0]])}) is None  # repeated
    assert wide_frame({"A": floats, "B": floats.set_axis(ix.tz_localize(None))}) is None  # other dtype
    assert wide_frame({"A": pd.Series([1.0], index=[0])}) is None  # not times
    assert np.isnan(wide_frame({"A": floats, "B": floats.iloc[1:]}).iloc[0, 1])  # type: ignore[union-attr]
