"""`joe.data.file_read.Cells`: a plain Parquet file is read from its Arrow table without a pandas frame;
`read_file` must give the very bars, rows, findings and error messages it gives through pandas
(`read_parquet`), which is also the route of every other Parquet file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.data import file_read, file_times
from joe.data.errors import DataError
from joe.data.file_read import Cells, read_cells, read_parquet
from joe.data.files import read_file

N = 8
DATES = pd.date_range("2024-01-01", periods=N, freq="D")


def _bars(**over: object) -> dict[str, object]:
    close = np.linspace(10, 11, N)
    cols: dict[str, object] = {
        "date": DATES,
        "open": close,
        "high": close + 0.5,
        "low": close - 0.5,
        "close": close,
        "volume": np.arange(N, dtype="int64") * 100,
    }
    cols.update(over)
    return {k: v for k, v in cols.items() if v is not None}


def _cases() -> dict[str, pd.DataFrame]:
    nan_close = np.linspace(10, 11, N)
    nan_close[3] = np.nan
    inf_open = np.linspace(10, 11, N)
    inf_open[2] = -np.inf
    low = np.linspace(9.5, 10.5, N)
    low[4] = 12.0
    # New York 20:00 on weekdays: the same stored instants as naive 01:00 the next day (other dates).
    ny_evening = (pd.bdate_range("2024-01-01", periods=N) + pd.Timedelta(hours=20)).tz_localize(
        "America/New_York"
    )
    return {
        "plain": pd.DataFrame(_bars()),
        "utc": pd.DataFrame(_bars(date=DATES.tz_localize("UTC"))),
        "zoned_evening": pd.DataFrame(_bars(date=(DATES + pd.Timedelta(hours=22)).tz_localize("UTC"))),
        "ny_evening": pd.DataFrame(_bars(date=ny_evening)),
        "ny_evening_stored_naive": pd.DataFrame(_bars(date=ny_evening.tz_convert("UTC").tz_localize(None))),
        "ns_unit": pd.DataFrame(_bars(date=DATES.as_unit("ns"))),
        "ms_unit": pd.DataFrame(_bars(date=DATES.as_unit("ms"))),
        "float32_ints": pd.DataFrame(
            _bars(close=np.arange(10, 10 + N, dtype="int32"), open=None, high=None, low=None)
        ),
        "nullable_volume": pd.DataFrame(_bars(volume=pd.array([1, None, 3, 4, 5, 6, 7, 8], dtype="Int64"))),
        "nan_close": pd.DataFrame(_bars(close=nan_close)),
        "inf_open": pd.DataFrame(_bars(open=inf_open)),
        "low_above_high": pd.DataFrame(_bars(low=low)),
        "unsorted_repeats": pd.DataFrame(_bars()).iloc[[3, 1, 2, 2, 0, 5, 4, 6, 7]],
        "unsorted_repeats_plain": pd.DataFrame(_bars())
        .iloc[[3, 1, 2, 2, 0, 5, 4, 6, 7]]
        .reset_index(drop=True),
        "duplicate_time": pd.DataFrame(_bars(date=DATES[[0, 1, 2, 2, 4, 5, 6, 7]])),
        "negative_volume": pd.DataFrame(_bars(volume=-np.arange(N, dtype="int64"))),
        "no_time": pd.DataFrame(_bars(date=None)),
        "epoch_seconds": pd.DataFrame(_bars(date=DATES.as_unit("s").asi8)),
        "upper_names": pd.DataFrame(_bars()).rename(columns=str.upper),
        "close_only": pd.DataFrame(_bars(open=None, high=None, low=None)),
        "text_close": pd.DataFrame(_bars(close=["10"] * (N - 1) + ["n/a"])),
        "date_index": pd.DataFrame(_bars()).set_index("date"),
        "empty": pd.DataFrame(_bars()).iloc[:0],
    }


def _read(path: Path) -> tuple[object, ...]:
    try:
        got = read_file(path)
    except DataError as exc:
        return ("error", str(exc))
    return (got.symbol, got.file, got.frame, list(got.rows), got.findings, got.daily)


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, pd.DataFrame):
            assert isinstance(y, pd.DataFrame)
            pd.testing.assert_frame_equal(x, y, check_column_type=True, check_index_type=True)
            assert x.index.name == y.index.name
        else:
            assert x == y


@pytest.mark.parametrize("name", sorted(_cases()))
def test_read_file_same_as_through_pandas(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / f"{name}.parquet"
    _cases()[name].to_parquet(path)
    fast = _read(path)
    monkeypatch.setattr(file_read, "_plain", lambda table: False)  # every file through pandas
    _same(fast, _read(path))


def test_plain_files_skip_the_pandas_frame(tmp_path: Path) -> None:
    for name, frame in _cases().items():
        path = tmp_path / f"{name}.parquet"
        frame.to_parquet(path)
        cells, _ = read_cells(path)
        expect_table = name not in ("text_close", "date_index", "unsorted_repeats")  # text, a stored index
        assert (cells._table is not None) == expect_table, name


def test_a_corrupt_file_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "BAD.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match=r"BAD\.parquet: cannot be read as Parquet"):
        read_cells(path)


_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(2**40), max_value=2**40),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(_numbers, st.booleans()), min_size=1, max_size=12),
    st.sampled_from(["float64", "float32", "int64", "int32", "uint16"]),
)
def test_cells_agree_with_the_pandas_frame(
    tmp_path: Path, values: list[tuple[float | int, bool]], kind: str
) -> None:
    """Per column: the same Series and the same float64 values and not-a-number cells as the frame
    `read_parquet` gives (nulls included)."""
    arrow_type = pa.from_numpy_dtype(np.dtype(kind))
    cells_in: list[object] = []
    for v, null in values:
        if null:
            cells_in.append(None)
        elif kind.startswith(("int", "uint")):
            info = np.iinfo(kind)
            cells_in.append(int(np.clip(int(v) if np.isfinite(v) else 0, info.min, info.max)))
        else:
            cells_in.append(float(v))
    n = len(cells_in)
    table = pa.table(
        {
            "date": pa.array(pd.date_range("2024-01-01", periods=n).as_unit("us")),
            "x": pa.array(cells_in, type=arrow_type, from_pandas=False)
            if kind.startswith(("int", "uint"))
            else pa.array(cells_in, type=pa.float64()).cast(arrow_type, safe=False),
        }
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    fast, _ = read_cells(path)
    slow = Cells(frame=read_parquet(path))
    assert fast._table is not None and fast.names == slow.names and len(fast) == len(slow)
    for name in fast.names:
        pd.testing.assert_series_equal(fast.series(name), slow.series(name), check_names=False)
    (fv, fb), (sv, sb) = fast.numbers("x"), slow.numbers("x")
    np.testing.assert_array_equal(fv, sv)
    np.testing.assert_array_equal(fb, sb)
    assert fv.flags.writeable


def test_equal_time_columns_are_dated_once_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose Parquet time column equals an earlier file's reuses its dating (`file_times._dated`):
    every case read twice, after files of other types with the same stored values (naive, UTC,
    zoned, evening stamps, units), gives what it gives when each file is dated on its own."""

    paths = []
    for name, frame in _cases().items():
        paths.append(tmp_path / f"{name}.parquet")
        frame.to_parquet(paths[-1])
    file_times._DATED.clear()
    shared = [_read(p) for p in paths + paths[::-1]]
    monkeypatch.setattr(Cells, "time_key", lambda self, name: None)
    alone = [_read(p) for p in paths + paths[::-1]]
    for a, b in zip(shared, alone, strict=True):
        _same(a, b)


def test_a_files_index_is_its_own(tmp_path: Path) -> None:
    a, b = tmp_path / "A.parquet", tmp_path / "B.parquet"
    pd.DataFrame(_bars()).to_parquet(a)
    pd.DataFrame(_bars()).to_parquet(b)
    fa, fb = read_file(a).frame, read_file(b).frame
    assert fa.index is not fb.index
    fa.index.name = "renamed"
    assert fb.index.name == "ts"


@pytest.mark.parametrize("tz", [None, "America/New_York"])
@pytest.mark.parametrize("plain", [True, False])
def test_an_empty_time_cell_is_a_data_error_naming_file_row_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tz: str | None, plain: bool
) -> None:
    """A Parquet timestamp column with an empty cell (NaT) was read as a bar dated NaT, with no finding
    (a CSV's empty date cell is refused); both routes now refuse the file, naming it, its row and column."""
    stamps = pd.Series(DATES.tz_localize(tz) if tz else DATES).astype(object)
    stamps[3] = None
    path = tmp_path / "X.parquet"
    times = pa.array(list(stamps), pa.timestamp("us", tz=tz))
    close = np.linspace(10, 11, N)
    pq.write_table(pa.table({"Date": times, "close": close}), path)
    if not plain:
        monkeypatch.setattr(file_read, "_plain", lambda table: False)
    with pytest.raises(DataError, match=r"^X\.parquet: row 5: cannot parse 'Date' value NaT"):
        read_file(path)


def test_the_dating_cache_survives_another_threads_insert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file_times._DATED` is shared by every thread reading files. Evicting its first key by
    `pop(next(iter(cache)))` raised 'RuntimeError: dictionary changed size during iteration' from
    `read_file` when another thread inserted between the iter and the next (seen with 4 threads reading
    12 files of distinct dates); here that insert is made at that point, deterministically."""

    class Racy(dict):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            it = super().__iter__()
            self[("other thread", b"")] = (pd.DatetimeIndex([]), True)
            return it

    monkeypatch.setattr(file_times, "_DATED", Racy())
    for i in range(file_times._DATED_MAX + 2):  # distinct time columns: the cache fills up
        path = tmp_path / f"S{i}.parquet"
        pd.DataFrame(_bars(date=DATES + pd.Timedelta(days=i))).to_parquet(path)
        assert read_file(path).frame.index[0] == (DATES[0] + pd.Timedelta(days=i)).tz_localize("UTC")
    assert len(file_times._DATED) <= file_times._DATED_MAX


def test_a_long_format_file_is_told_to_be_split(tmp_path: Path) -> None:
    """A file of several symbols (a 'symbol' column, as the standard daily_500.parquet): the user saw only
    'duplicate timestamp ... keep one bar per day'; the error now says the file holds several symbols and
    that Joe reads one file per symbol."""
    one = pd.DataFrame(_bars())
    both = pd.concat(
        [one.assign(symbol="AAA"), one.assign(symbol="BBB", close=one["close"] + 1, high=one["high"] + 1)],
        ignore_index=True,
    )
    path = tmp_path / "long.parquet"
    both.to_parquet(path)
    with pytest.raises(
        DataError,
        match=r"^long\.parquet: duplicate timestamp: .*holds 2 symbols in its "
        r"'symbol' column \(AAA, BBB\): Joe reads one file per symbol",
    ):
        read_file(path)
    one.assign(symbol="AAA").to_parquet(path)  # one symbol: no hint, no error
    assert len(read_file(path).frame) == N
