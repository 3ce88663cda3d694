"""Issue 14 (r14 review #8): a file that repeats bars exactly (an overlapping append of daily
downloads) loads as the same bars once, with a `duplicate_rows` warning naming the repeated rows;
two different bars at one time still refuse the file. Before: any repeat excluded the symbol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data_quality import ohlcv

from joe.data.errors import DataError
from joe.data.files import read_file


def _write(path: Path, df: pd.DataFrame) -> Path:
    out = df.copy()
    out.insert(0, "date", [d.strftime("%Y-%m-%d") for d in df.index])
    out.to_csv(path, index=False)
    return path


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), repeat=st.lists(st.integers(0, 59), min_size=1, max_size=8))
def test_property_exact_repeats_load_as_the_bars_once(tmp_path_factory, seed: int, repeat: list[int]) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("dup")
    df = ohlcv(60, seed=seed).round(4)
    clean = read_file(_write(folder / "A.csv", df))
    doubled = pd.concat([df, df.iloc[repeat]])  # appended again, at the end
    got = read_file(_write(folder / "B.csv", doubled))
    pd.testing.assert_frame_equal(got.frame, clean.frame, check_freq=False)
    (f,) = [x for x in got.findings if x.check == "duplicate_rows"]
    assert f.severity == "warning" and f.message.startswith(f"{len(repeat)} row(s) repeat")
    assert f.row == 62  # the first appended line (header + 60 bars + 1)


def test_two_different_bars_at_one_time_still_refuse_the_file(tmp_path: Path) -> None:
    df = ohlcv(60, seed=1).round(4)
    other = df.iloc[[10]].copy()
    other["close"] *= 1.01
    with pytest.raises(DataError, match="duplicate timestamp"):
        read_file(_write(tmp_path / "C.csv", pd.concat([df, other])))
    assert np.isfinite(df["close"]).all()
