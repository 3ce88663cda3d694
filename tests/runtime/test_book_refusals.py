"""Each refusal of the paper book names its own cause and its own fix (issue 15.1).

A different source: the book's source, how to continue it, a separate data folder for the other source
(never a word about dates). Time going backwards: the book's last date, how to continue, a separate
book for the past (never a word about switching source).
"""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest

from joe.runtime.book import BookIdentity, BookRefused, check_forward, check_source, source_identity

SOURCES = [
    ("sim", "sample"),
    ("sim", "csv:/data/prices"),
    ("sim", "parquet:/data/pq"),
    ("capital", "sample"),
    ("ibkr", "sample"),
]
FLAGS = {
    "sim:sample": "joe run --once",
    "sim:csv:/data/prices": "joe run --once --source csv:/data/prices",
    "sim:parquet:/data/pq": "joe run --once --source parquet:/data/pq",
    "capital": "joe run --once --broker capital",
    "ibkr": "joe run --once --broker ibkr",
}


@pytest.mark.parametrize("book_src", SOURCES)
@pytest.mark.parametrize("run_src", SOURCES)
def test_another_source_is_refused_naming_both_and_how_to_keep_them_apart(
    book_src: tuple[str, str], run_src: tuple[str, str]
) -> None:
    book_id, run_id = source_identity(*book_src), source_identity(*run_src)
    book = BookIdentity(book_id, datetime(2018, 12, 31))
    if book_id == run_id:
        check_source(book, run_id, has_history=True)
        return
    with pytest.raises(BookRefused) as exc:
        check_source(book, run_id, has_history=True)
    msg = str(exc.value)
    assert f"belongs to source {book_id.removeprefix('sim:')!r}, not {run_id.removeprefix('sim:')!r}" in msg
    assert f"Continue this book with `{FLAGS[book_id]}`" in msg
    assert f"JOE_DATA_DIR=data-{run_id.removeprefix('sim:').partition(':')[0]} {FLAGS[run_id]}`" in msg
    assert "--as-of" not in msg and "backtest" not in msg and "past" not in msg


@pytest.mark.parametrize("src", SOURCES)
def test_an_earlier_as_of_is_refused_naming_the_last_date_and_a_separate_book(src: tuple[str, str]) -> None:
    ident = source_identity(*src)
    book = BookIdentity(ident, datetime(2018, 12, 31))
    check_forward(book, date(2018, 12, 31))  # the same date and later dates are fine
    check_forward(book, date(2019, 1, 2))
    with pytest.raises(BookRefused) as exc:
        check_forward(book, date(2016, 6, 30))
    msg = str(exc.value)
    assert "--as-of 2016-06-30 is earlier than this paper book's last date 2018-12-31" in msg
    assert "on or after 2018-12-31" in msg
    assert f"`JOE_DATA_DIR=data-2016-06-30 {FLAGS[ident]} --as-of 2016-06-30`" in msg
    assert "belongs to" not in msg and "another source" not in msg


@pytest.mark.parametrize("src", SOURCES)
def test_data_older_than_the_book_without_an_as_of_is_refused_saying_so(src: tuple[str, str]) -> None:
    """Before: a run without --as-of whose data ended before the book's last date (a failover on a
    Saturday to a broker whose newest bar is Friday's) was refused as "--as-of 2026-12-04 is earlier",
    naming a flag the user never gave."""
    ident = source_identity(*src)
    book = BookIdentity(ident, datetime(2026, 12, 5))
    check_forward(book, date(2026, 12, 5), asked=False)
    with pytest.raises(BookRefused) as exc:
        check_forward(book, date(2026, 12, 4), asked=False)
    msg = str(exc.value)
    assert "--as-of" not in msg
    assert "the newest bar of this run's data (on or before its as-of) is of 2026-12-04" in msg
    assert "earlier than this book's last date 2026-12-05" in msg
    assert "Nothing was traded" in msg and FLAGS[ident] in msg


def test_a_path_with_spaces_is_quoted_in_the_command_to_run() -> None:
    book = BookIdentity("sim:sample", None)
    with pytest.raises(BookRefused, match="--source 'csv:/my prices'"):
        check_source(book, "sim:csv:/my prices", has_history=False)


@pytest.mark.parametrize("as_of", [None, date(2026, 12, 5), date(2026, 12, 6)])
def test_the_run_refuses_data_older_than_the_book_as_data_not_as_a_flag(as_of: date | None) -> None:
    """The run's own check (`_resolve_as_of`): the book was brought to Saturday 2026-12-05 and the data
    ends Friday. With no --as-of, or one on/after the book's date (which the book's own check accepts),
    the refusal names the data's date and no --as-of the user never gave (hostile review 2026-12-03)."""
    import pandas as pd

    from joe.runtime.stages import _resolve_as_of

    dates = pd.DatetimeIndex([pd.Timestamp("2026-12-03", tz="UTC"), pd.Timestamp("2026-12-04", tz="UTC")])
    panel = SimpleNamespace(dates=dates, index_at=lambda ts: 1)
    book = BookIdentity(source_identity("sim", "sample"), datetime(2026, 12, 5))
    st = SimpleNamespace(opts=SimpleNamespace(as_of=as_of, source_label="sample"), book=book)
    if as_of is not None:
        check_forward(book, as_of)  # what the book's own check (open_book) lets through
    with pytest.raises(BookRefused) as exc:
        _resolve_as_of(st, SimpleNamespace(panel=panel))  # type: ignore[arg-type]
    msg = str(exc.value)
    assert "of 2026-12-04, earlier than this book's last date 2026-12-05" in msg
    assert "--as-of 2026-12-04" not in msg
