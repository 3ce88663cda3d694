"""A bad row dated after the end of a run or backtest changes nothing up to it (a hostile review: a
duplicate date on 2022-05-02 removed S001 from a backtest `--to 2021-06-30`, and a NaN close, a negative
price or high < low there did the same).

A file is read and checked only up to the as-of / `--to` date (`joe.data.files.read_file(end=...)`):
the checks that refuse a whole file (`unreadable`) see no row after it. A bad row dated inside the
window is a finding dated at its bar, like the quality stage's causal findings: the days before it
replay on the file read up to the day before it (`joe.backtest.loading`), and it is excluded from then.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, BacktestResult, run_on_history
from joe.config.schema import ExecutionConfig
from joe.data.errors import DataError
from joe.data.files import read_file

DAYS = pd.bdate_range("2020-01-02", periods=330)  # the fixture market's days (conftest.py)
START, END = date(2020, 11, 2), date(2021, 1, 15)
AFTER = [d.date() for d in DAYS if d.date() > END]
INSIDE = [d.date() for d in DAYS if START + pd.Timedelta(days=14) < d.date() < END]

# Each defect makes `read_file` refuse the whole file when it reads the row.
KINDS = ("duplicate", "nan_close", "negative", "zero", "high_below_low", "text_close", "inf", "neg_volume")
# After the end only: a time that cannot be read (a file in time order places it after the rows before it).
AFTER_KINDS = (*KINDS, "bad_date", "empty_date")


def _spoil(path: Path, day: date, kind: str) -> None:
    """Put a defect of `kind` on the row of `day` in a CSV file of the fixture's market."""
    df = pd.read_csv(path, dtype={"close": object})
    df["close"] = df["close"].astype(object)
    i = int(np.flatnonzero(df["date"] == day.isoformat())[0])
    if kind == "duplicate":  # the same session twice, with another close
        extra = df.iloc[[i]].copy()
        extra["close"] = float(df.loc[i, "close"]) * 1.01
        df = pd.concat([df, extra], ignore_index=True)
    elif kind == "nan_close":
        df.loc[i, "close"] = ""
    elif kind == "negative":
        df.loc[i, "low"] = -abs(float(df.loc[i, "low"]))
    elif kind == "zero":
        df.loc[i, "close"] = 0.0
    elif kind == "high_below_low":
        df.loc[i, ["high", "low"]] = [float(df.loc[i, "low"]) * 0.9, float(df.loc[i, "high"]) * 1.1]
    elif kind == "text_close":
        df.loc[i, "close"] = "n/a"
    elif kind == "inf":
        df.loc[i, "close"] = "inf"
    elif kind == "neg_volume":
        df.loc[i, "volume"] = -5.0
    elif kind == "bad_date":
        df.loc[i, "date"] = f"{day.year}-13-45"
    elif kind == "empty_date":
        df.loc[i, "date"] = ""
    else:  # pragma: no cover - a typo in the test
        raise AssertionError(kind)
    df.to_csv(path, index=False)


def _spoiled(market: Path, tmp: Path, symbol: str, day: date, kind: str) -> Path:
    """A copy of the market with one defect (a new folder each call: hypothesis may repeat an example)."""
    folder = Path(tempfile.mkdtemp(dir=tmp)) / "prices"
    shutil.copytree(market, folder)
    _spoil(folder / f"{symbol}.csv", day, kind)
    return folder


@cache
def _clean(market: Path) -> BacktestResult:
    cfg = ExecutionConfig()
    src = f"csv:{market}"
    return run_on_history(load_history_sync(src, cfg, end=END), cfg, BacktestOptions(src, START, END))


def _backtest(folder: Path) -> tuple[BacktestResult, object]:
    cfg = ExecutionConfig()
    src = f"csv:{folder}"
    history = load_history_sync(src, cfg, end=END)
    return run_on_history(history, cfg, BacktestOptions(src, START, END)), history


def _fills(result: BacktestResult, before: date | None = None) -> list[tuple[object, ...]]:
    return [
        (f.ts.date(), f.symbol, f.side.value, f.quantity, f.price)
        for f in result.fills
        if before is None or f.ts.date() < before
    ]


@given(kind=st.sampled_from(AFTER_KINDS), day=st.sampled_from(AFTER))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_read_file_does_not_see_a_bad_row_after_the_end(
    market_dir: Path, tmp_path: Path, kind: str, day: date
) -> None:
    """The file whole is refused; read up to the end, it is the clean file's bars up to the end."""
    folder = _spoiled(market_dir, tmp_path, "S03", day, kind)
    with pytest.raises(DataError):
        read_file(folder / "S03.csv")
    got = read_file(folder / "S03.csv", end=END)
    want = read_file(market_dir / "S03.csv", end=END)
    pd.testing.assert_frame_equal(got.frame, want.frame)
    assert got.frame.index[-1].date() == END
    assert list(got.rows) == list(want.rows) and not got.findings


@given(kind=st.sampled_from(KINDS), day=st.sampled_from(INSIDE))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_refusal_names_the_row_and_date_of_the_bad_bar(
    market_dir: Path, tmp_path: Path, kind: str, day: date
) -> None:
    folder = _spoiled(market_dir, tmp_path, "S03", day, kind)
    with pytest.raises(DataError) as err:
        read_file(folder / "S03.csv", end=END)
    assert err.value.date == day.isoformat()
    line = int(np.flatnonzero(DAYS.date == day)[0]) + 2
    assert err.value.row in (line, len(DAYS) + 2)  # a duplicate: the first of the two rows
    assert f"row {line}:" in str(err.value) or f"rows {line} and" in str(err.value)


@pytest.mark.timeout(600)
@given(
    kind=st.sampled_from(AFTER_KINDS),
    day=st.sampled_from(AFTER),
    symbol=st.sampled_from(("S01", "S02", "S05", "SPX")),
)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_bad_row_after_the_end_changes_no_backtest(
    market_dir: Path, tmp_path: Path, kind: str, day: date, symbol: str
) -> None:
    """The review's case: the backtest up to --to is the clean one (every day's equity, regime,
    positions, every fill), and no finding names the symbol."""
    result, history = _backtest(_spoiled(market_dir, tmp_path, symbol, day, kind))
    clean = _clean(market_dir)
    assert len(clean.fills) >= 10
    assert result.days == clean.days
    assert _fills(result) == _fills(clean)
    assert not [f for f in history.snap.quality.findings if f.symbol == symbol]  # type: ignore[attr-defined]


@pytest.mark.timeout(600)
@given(kind=st.sampled_from(KINDS), day=st.sampled_from(INSIDE))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_bad_row_inside_the_window_is_causal(
    market_dir: Path, tmp_path: Path, kind: str, day: date
) -> None:
    """The days before the bad row replay as on the clean data; the symbol is excluded from its day on
    (an `unreadable` error dated there, as the quality stage's causal findings)."""
    symbol = "S01"
    result, history = _backtest(_spoiled(market_dir, tmp_path, symbol, day, kind))
    clean = _clean(market_dir)
    found = [f for f in history.snap.quality.findings if f.symbol == symbol]  # type: ignore[attr-defined]
    assert [(f.check, f.date) for f in found] == [("unreadable", day.isoformat())]
    assert history.earlier is not None  # type: ignore[attr-defined]
    assert [d for d in result.days if d.day < day] == [d for d in clean.days if d.day < day]
    assert _fills(result, day) == _fills(clean, day)
    assert not [f for f in result.fills if f.symbol == symbol and f.ts.date() > day and f.side.value == "buy"]


@pytest.mark.timeout(600)
def test_a_bad_row_after_the_as_of_changes_no_run(
    project: Path, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`joe run --once --as-of D` reads the same files the same way: a bad row after D changes nothing
    (no finding, the same scores, signals, orders and equity)."""
    import json

    from joe.runtime.bootstrap import bootstrap
    from joe.runtime.run_once import RunOptions, run_once_sync

    seen = []
    for name, folder in (
        ("clean", market_dir),
        ("spoiled", _spoiled(market_dir, project, "S01", AFTER[3], "duplicate")),
    ):
        monkeypatch.setenv("JOE_DATA_DIR", str(project / f"data-{name}"))
        rt = bootstrap()
        try:
            out = run_once_sync(rt, RunOptions(source=f"csv:{folder}", as_of=END))
            fills = sorted(
                (f.symbol, f.side.value, f.quantity, f.price) for f in rt.store.fills(mode="paper")
            )
            equity = rt.store.equity_curve("paper")[-1].equity
        finally:
            rt.close()
        quality = json.loads(out.report.json.read_text())["data_quality"]
        scores = out.report.scores_csv.read_text()
        seen.append((out.regime, out.signals, out.opened, fills, equity, quality, scores))
    assert "S01" in seen[0][-1]  # S01 is scored: its exclusion would show
    assert seen[0] == seen[1]
