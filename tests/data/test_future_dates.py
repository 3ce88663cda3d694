"""Issue 14, reviewer round 3, kind 3: a mistyped future date (2033 for 2023) in one file became the whole
run's as-of, and every other file was then "stale". A date past what the other files agree on, or past
today's clock, is an error for that file and row; the as-of comes from the consensus, not the max."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data_quality import ohlcv, write_csv
from typer.testing import CliRunner

from joe.cli.main import app
from joe.core import clock
from joe.data import FileSource
from joe.data.file_source import future_limit
from joe.runtime.market import load_snapshot

N = 300


def _universe(folder: Path, n_files: int = 4) -> list[str]:
    names = [f"S{i}" for i in range(n_files)]
    for i, s in enumerate(names):
        write_csv(folder, s, ohlcv(N, seed=i))
    return names


def _append_row(folder: Path, symbol: str, day: str) -> int:
    path = folder / f"{symbol}.csv"
    lines = path.read_text().splitlines()
    lines.append(day + lines[-1][lines[-1].index(",") :])
    path.write_text("\n".join(lines) + "\n")
    return len(lines)  # the new row's 1-based line


@pytest.mark.parametrize("typo", ["2033-03-16", "2032-12-30", "2026-11-27"])
def test_a_typed_future_date_is_an_error_for_its_file_and_row_not_the_as_of(
    tmp_path: Path, typo: str
) -> None:
    """2033 (a year typo), and a date within the clock's past but years after every other file."""
    names = _universe(tmp_path)
    last = ohlcv(N).index[-1].date()
    row = _append_row(tmp_path, "S1", typo)
    src = FileSource(tmp_path, today=date(2026, 11, 30))
    assert src.as_of == last  # the consensus, not 2033
    (f,) = [f for f in src.findings if f.symbol == "S1"]
    assert (f.severity, f.check, f.file, f.row, f.date) == ("error", "future_date", "S1.csv", row, typo)
    snap = asyncio.run(load_snapshot(src, "all", 500, 2000))
    assert set(snap.panel.symbols) == set(names) - {"S1"}  # nobody else is called stale
    assert not [f for f in snap.quality.findings if f.check == "stale"]


def test_a_date_after_todays_clock_is_an_error_even_when_files_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files with the same future date: the clock (injectable) still says it has not happened."""
    _universe(tmp_path, 3)
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2023, 3, 1, 12, tzinfo=UTC))
    for s in ("S0", "S1"):
        _append_row(tmp_path, s, "2023-03-08")
    src = FileSource(tmp_path)
    bad = sorted(f.symbol for f in src.findings if f.check == "future_date")
    assert bad == ["S0", "S1"] and "after today (2023-03-01)" in src.findings[0].message


def test_a_file_one_session_ahead_of_the_others_is_fine(tmp_path: Path) -> None:
    """A file updated a day later than the rest is not a typo (within the stale limit)."""
    _universe(tmp_path, 3)
    _append_row(tmp_path, "S2", (ohlcv(N + 1).index[-1]).strftime("%Y-%m-%d"))
    src = FileSource(tmp_path, today=date(2026, 11, 30))
    assert not src.findings and src.as_of == ohlcv(N + 1).index[-1].date()


@settings(max_examples=30, deadline=None)
@given(
    lasts=st.lists(st.dates(date(2000, 1, 1), date(2030, 1, 1)), min_size=1, max_size=8),
    today=st.dates(date(2000, 1, 1), date(2030, 1, 1)),
)
def test_property_the_limit_is_never_past_today_nor_ahead_of_two_files(
    lasts: list[date], today: date
) -> None:
    limit = future_limit(lasts, today)
    assert limit <= date.fromordinal(today.toordinal() + 1)
    second = sorted(lasts)[-2] if len(lasts) > 1 else lasts[0]
    assert limit >= min(second, date.fromordinal(today.toordinal() + 1))  # what two files reach is fine
    assert (limit - second).days <= 3 + 4  # 3 weekday sessions at most (a weekend in between)


@pytest.mark.usefixtures("project")
def test_joe_run_with_the_reviewers_typo_runs_as_of_the_consensus(tmp_path: Path) -> None:
    """The reviewer's typo_future.sh: BBB gets a last row dated 2033-08-11; the run is as of 2023's date."""
    folder = tmp_path / "prices"
    folder.mkdir()
    write_csv(folder, "SPX", ohlcv(N, seed=9, price=4000))
    for i, s in enumerate(("AAA", "BBB", "CCC")):
        write_csv(folder, s, ohlcv(N, seed=i))
    row = _append_row(folder, "BBB", "2033-08-11")
    result = CliRunner().invoke(app, ["run", "--once", "--source", f"csv:{folder}"])
    assert result.exit_code == 0, result.output
    (run_json,) = Path.cwd().joinpath("data").rglob("run.json")
    doc = json.loads(run_json.read_text())
    found = [f for f in doc["data_quality"]["findings"] if f["symbol"] == "BBB"]
    assert [(f["check"], f["file"], f["row"]) for f in found] == [("future_date", "BBB.csv", row)]
    assert not [f for f in doc["data_quality"]["findings"] if f["check"] == "stale"]
    assert str(ohlcv(N).index[-1].date()) in result.output
