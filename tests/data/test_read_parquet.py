"""`joe.data.file_read.read_parquet` gives the very frame `pd.read_parquet` gives (it only skips pandas'
route through pyarrow's dataset layer): index, column order, dtypes, time zones, missing values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from joe.data.file_read import read_parquet

N = 5
DATES = pd.date_range("2024-01-01", periods=N, freq="D")


def _frames() -> dict[str, pd.DataFrame]:
    prices = {"open": np.linspace(1, 2, N), "close": [1.0, np.nan, 3.0, 4.0, 5.0]}
    return {
        "naive_dates": pd.DataFrame({"date": DATES, **prices, "volume": np.arange(N, dtype="int64")}),
        "utc_dates": pd.DataFrame({"timestamp": DATES.tz_localize("UTC"), **prices}),
        "zoned_dates": pd.DataFrame({"ts": DATES.tz_localize("America/New_York"), **prices}),
        "text_dates": pd.DataFrame({"Date": [str(d.date()) for d in DATES], **prices, "note": list("abcde")}),
        "text_with_missing": pd.DataFrame({"date": ["2024-01-02", None, "x", "2024-01-05", "2024-01-06"]}),
        "date_index": pd.DataFrame(prices, index=DATES.rename("date")),
        "utc_index_unnamed": pd.DataFrame(prices, index=DATES.tz_localize("UTC")),
        "range_index_kept": pd.DataFrame(prices, index=pd.RangeIndex(3, 3 + N)),
        "ints_and_bools": pd.DataFrame(
            {"date": DATES, "close": np.arange(N), "flag": [True, False] * 2 + [True]}
        ),
        "empty": pd.DataFrame(
            {"date": pd.Series([], dtype="datetime64[us]"), "close": pd.Series([], dtype=float)}
        ),
    }


@pytest.mark.parametrize("name", sorted(_frames()))
def test_same_frame_as_pandas(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.parquet"
    _frames()[name].to_parquet(path)
    pd.testing.assert_frame_equal(read_parquet(path), pd.read_parquet(path), check_freq=True)


def test_written_without_pandas_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    _frames()["utc_dates"].to_parquet(path, index=False)
    pd.testing.assert_frame_equal(read_parquet(path), pd.read_parquet(path))
