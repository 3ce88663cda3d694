"""`joe.data.frames.wide_frame` is `pd.concat(columns, axis=1, sort=True)` for a source's frames (float
series on sorted unique time indexes), and declines anything else."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.data.file_source import FileSource
from joe.data.frames import wide_frame, wide_frames
from joe.data.sample import SampleSource

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


FIELDS = ("open", "high", "low", "close", "volume")


@st.composite
def _frames(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    """Frames as a source holds them (some columns reordered, extra or of another dtype)."""
    columns = draw(_columns())
    out: dict[str, pd.DataFrame] = {}
    for sym, close in columns.items():
        n = len(close)
        vals = st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)
        cols = {f: draw(vals) for f in FIELDS if f != "close"} | {"close": close.to_numpy()}
        df = pd.DataFrame(cols, index=close.index, dtype="float64")
        order = draw(st.permutations(list(df.columns)))
        df = df[order]
        if draw(st.integers(0, 9)) == 0:
            df["note"] = "x"  # not a field: ignored
        if draw(st.integers(0, 19)) == 0:
            df["volume"] = np.arange(n, dtype="int64")  # another dtype: declined
        out[sym] = df
    return out


@settings(max_examples=200, deadline=None)
@given(_frames(), st.sampled_from([FIELDS, ("close",), ("volume", "open")]))
def test_wide_frames_equal_one_field_at_a_time(
    frames: dict[str, pd.DataFrame], fields: tuple[str, ...]
) -> None:
    got = wide_frames(frames, fields)
    want = {f: wide_frame({s: df[f] for s, df in frames.items()}) for f in fields}
    if any(w is None for w in want.values()):
        assert got is None
        return
    assert got is not None and list(got) == list(fields)
    for f in fields:
        pd.testing.assert_frame_equal(got[f], want[f], check_freq=False)  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(
            got[f], pd.concat({s: df[f] for s, df in frames.items()}, axis=1, sort=True), check_freq=False
        )


def test_wide_frames_declines() -> None:
    df = pd.DataFrame({"close": [1.0, 2.0], "open": [1.0, 2.0]}, index=DAYS[:2])
    assert wide_frames({}, FIELDS) is None
    assert wide_frames({"A": df}, ("close", "high")) is None  # a missing field
    twice = pd.concat([df, df[["close"]]], axis=1)
    assert wide_frames({"A": twice}, ("close",)) is None  # repeated column names


def test_source_panels_equal_panel(tmp_path: Path) -> None:
    """`FrameSource.panels` gives each field's `panel` (a folder with files of different dates), and the
    sample source (its own `panel`) answers through it."""
    for k, start in enumerate(["2024-01-01", "2024-01-03", "2024-01-02"]):
        days = pd.date_range(start, periods=12, freq="B")
        close = 10.0 + np.arange(12) + k
        pd.DataFrame(
            {
                "date": days,
                "open": close,
                "high": close + 1,
                "low": close - 1,
                "close": close,
                "volume": 5.0 * k,
            }
        ).to_csv(tmp_path / f"S{k}.csv", index=False)
    for src in (FileSource(tmp_path, as_of=date(2024, 1, 15), today=date(2024, 2, 1)), SampleSource()):
        syms = [i.symbol for i in src.universe_now()][:30]
        got = src.panels(FIELDS, syms)
        for f in FIELDS:
            pd.testing.assert_frame_equal(got[f], src.panel(f, syms))
