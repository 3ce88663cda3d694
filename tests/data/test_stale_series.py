"""Issue 14, reviewer round 2, point 2: no series vanishes. Every symbol of the source is scored or named.

A series 10 sessions stale used to be dropped by `universe_now()` (its is_live filter) before the quality
stage ever saw it. Now each symbol is in the panel or has an error finding saying why it is not.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data_quality import ohlcv, write_csv
from typer.testing import CliRunner

from joe.cli.main import app
from joe.data import open_source
from joe.data.calendars import calendar_for, nth_session_after
from joe.data.regime_inputs import RegimeInput, describe_input
from joe.runtime.market import load_snapshot

N = 300


def _accounted(folder: Path, as_of: date | None = None) -> tuple[set[str], set[str], dict[str, list[str]]]:
    """(symbols in the panel, symbols with an error finding, messages by symbol) for a joe run's scan."""
    src = open_source(f"csv:{folder}", as_of=as_of)
    snap = asyncio.run(load_snapshot(src, None, 500, 2000))  # the default scan, as joe run uses
    errors = {f.symbol for f in snap.quality.findings if f.severity == "error"}
    messages: dict[str, list[str]] = {}
    for f in snap.quality.findings:
        messages.setdefault(f.symbol, []).append(f.line())
    return set(snap.panel.symbols), errors, messages


def test_a_series_ten_sessions_stale_is_named_not_dropped(tmp_path: Path) -> None:
    write_csv(tmp_path, "LIVE", ohlcv(N))
    gone = ohlcv(N - 10, seed=4)
    write_csv(tmp_path, "GONE", gone)
    scored, errors, messages = _accounted(tmp_path)
    assert scored == {"LIVE"} and errors == {"GONE"}
    (line,) = messages["GONE"]
    assert "stale" in line and "10 sessions" in line and str(gone.index[-1].date()) in line
    assert "GONE.csv" in line


def test_a_series_not_started_at_the_as_ofdate_is_named(tmp_path: Path) -> None:
    write_csv(tmp_path, "OLD", ohlcv(N))
    late = ohlcv(50, seed=3, start="2023-01-02")
    write_csv(tmp_path, "LATE", late)
    scored, errors, messages = _accounted(tmp_path, as_of=date(2022, 6, 30))
    assert scored == {"OLD"} and errors == {"LATE"}
    assert "first bar is 2023-01-02" in messages["LATE"][0] and "LATE.csv" in messages["LATE"][0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lags=st.lists(st.integers(0, 400), min_size=1, max_size=6))
def test_property_every_symbol_is_scored_or_has_an_error_finding(tmp_path: Path, lags: list[int]) -> None:
    """symbols in the source = scored ∪ symbols with an error finding, disjoint, for any age."""
    folder = tmp_path / f"case{abs(hash(tuple(lags)))}"
    folder.mkdir()
    write_csv(folder, "FRESH", ohlcv(N + 100))
    names = {"FRESH"}
    for i, lag in enumerate(lags):
        n = max(5, N + 100 - lag)
        write_csv(folder, f"S{i}", ohlcv(n, seed=i + 1))
        names.add(f"S{i}")
    scored, errors, _ = _accounted(folder)
    assert scored | errors == names and not scored & errors


def test_run_once_reports_the_stale_series_in_run_json(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    write_csv(folder, "SPX", ohlcv(N, seed=7, price=3000))
    for i in range(3):
        write_csv(folder, f"S{i}", ohlcv(N, seed=10 + i))
    gone = ohlcv(N - 10, seed=4)
    write_csv(folder, "GONE", gone)
    result = CliRunner().invoke(app, ["run", "--once", "--source", f"csv:{folder}"])
    assert result.exit_code == 0, result.output
    assert "GONE" in result.output  # named on the console too
    (run_json,) = (project / "data").rglob("run.json")
    doc = json.loads(run_json.read_text())
    (f,) = [f for f in doc["data_quality"]["findings"] if f["symbol"] == "GONE"]
    assert (f["severity"], f["check"], f["file"]) == ("error", "stale", "GONE.csv")
    assert "10 sessions" in f["message"] and f["date"] == str(pd.Timestamp(gone.index[-1]).date())


# -- session 6: regime inputs' staleness in NYSE sessions ------------------------------------------


@pytest.mark.parametrize(
    ("last", "as_of", "sessions", "stale"),
    [
        (date(2024, 3, 28), date(2024, 3, 29), 0, False),  # Good Friday: no session
        (date(2024, 3, 28), date(2024, 4, 1), 1, True),  # ... Monday is one, missed
        (date(2024, 11, 27), date(2024, 11, 28), 0, False),  # Thanksgiving
        (date(2024, 8, 30), date(2024, 9, 2), 0, False),  # Labor Day weekend, 3 days
        (date(2024, 8, 30), date(2024, 9, 3), 1, True),  # 4 days: was "fresh" (4 allowed)
        (date(2024, 12, 20), date(2024, 12, 24), 2, True),
    ],
)
def test_a_regime_input_is_stale_when_it_misses_a_nyse_session(
    last: date, as_of: date, sessions: int, stale: bool
) -> None:
    i = RegimeInput("VIX", "VIX", last, as_of)
    assert (i.age_sessions, i.stale, i.age_days) == (sessions, stale, (as_of - last).days)
    assert i.to_json()["age_sessions"] == sessions
    if stale:
        assert f"{sessions} NYSE session(s) ({i.age_days} days)" in describe_input(i)


@settings(max_examples=150, deadline=None)
@given(day=st.dates(date(2008, 1, 2), date(2025, 12, 1)), extra=st.integers(0, 6))
def test_property_stale_exactly_when_a_session_passed(day: date, extra: int) -> None:
    """For any NYSE session `last`: every day before the next session is fresh (weekends, holidays,
    closures), the next session is stale, and the age in sessions counts them."""
    cal = calendar_for("XNYS")
    last = day if cal.session(day) is not None else nth_session_after("XNYS", day, 1)
    nxt = nth_session_after("XNYS", last, 1)
    for k in range(1, (nxt - last).days):
        gap = RegimeInput("S&P 500", "SPX", last, date.fromordinal(last.toordinal() + k))
        assert not gap.stale and gap.age_sessions == 0
    later = nth_session_after("XNYS", last, 1 + extra)
    assert RegimeInput("S&P 500", "SPX", last, later).age_sessions == 1 + extra
    assert RegimeInput("S&P 500", "SPX", last, later).stale
