"""open_source: the --source spec strings and the registry broker sources slot into."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.base import MarketData
from joe.data import SOURCES, DataError, FileSource, SampleSource, open_source, register_source


def test_sample_spec() -> None:
    src = open_source("sample", as_of="2017-03-01", n_synthetic=20)
    assert isinstance(src, SampleSource) and isinstance(src, MarketData)
    assert src.as_of == date(2017, 3, 1) and len(src.universe_now("synthetic")) == 20


def test_csv_and_parquet_specs(tmp_path: Path) -> None:
    df = pd.DataFrame({"date": ["2024-01-02", "2024-01-03"], "close": [10.0, 11.0]})
    df.to_csv(tmp_path / "ABC.csv", index=False)
    df.assign(date=pd.to_datetime(df["date"])).to_parquet(tmp_path / "XYZ.parquet")
    csv = open_source(f"csv:{tmp_path}")
    pq = open_source(f" parquet:{tmp_path} ", as_of=date(2024, 1, 2))
    assert (
        isinstance(csv, FileSource)
        and csv.name == "csv"
        and [i.symbol for i in csv.universe_now()] == ["ABC"]
    )
    assert (
        isinstance(pq, FileSource)
        and pq.name == "parquet"
        and [i.symbol for i in pq.universe_now("all")] == ["XYZ"]
    )
    assert pq.as_of == date(2024, 1, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("yahoo", "unknown data source 'yahoo'; choose one of: sample, csv:PATH, parquet:PATH"),
        ("", "unknown data source ''"),
        ("csv:", "needs a folder"),
        ("sample:extra", "takes no argument"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(DataError) as err:
        open_source(spec)
    assert message in str(err.value)


def test_bad_as_of_string() -> None:
    with pytest.raises(DataError, match="not an ISO date"):
        open_source("sample", as_of="31/12/2018")


@given(st.text(max_size=12).filter(lambda s: s.partition(":")[0].strip().lower() not in SOURCES))
def test_any_unregistered_name_is_a_data_error(spec: str) -> None:
    with pytest.raises(DataError, match="unknown data source"):
        open_source(spec)


def test_registered_broker_source_slots_in() -> None:
    made: list[tuple[str | None, date | None, int]] = []
    sample = SampleSource(n_synthetic=5)

    def factory(arg: str | None, as_of: date | None, n: int) -> MarketData:
        made.append((arg, as_of, n))
        return sample

    register_source("Fakebroker", factory)
    try:
        assert open_source("fakebroker:demo", as_of=date(2018, 1, 2), n_synthetic=5) is sample
        assert made == [("demo", date(2018, 1, 2), 5)]
    finally:
        SOURCES.pop("fakebroker")
