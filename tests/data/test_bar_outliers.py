"""Issue 14 (r14 review #1): bad ticks *inside* a bar - an open, high or low no move of the symbol
explains - are found, named by file and row, and never settle a stop (`joe.data.wicks`).

Before: a low of 0.01 under a close of 60, a high of 1e308 or an open at 0.3 × the close passed the
quality stage without a word, fed ATR and range, and the paper book stopped a held long out on the
0.01 print.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data_quality import ohlcv, snapshot, write_csv
from test_held_split import _book, _run, _scenario

from joe.data.findings import BAR_REJECTS, QualityConfig
from joe.data.quality import check_bars, check_frame
from joe.data.wicks import excursions
from split_series import write_csvs


def _bars(df: pd.DataFrame) -> dict[str, np.ndarray]:
    return {k: df[k].to_numpy(np.float64)[:, None] for k in ("open", "high", "low", "close", "volume")}


def _check(df: pd.DataFrame):  # type: ignore[no-untyped-def]
    return check_bars(pd.DatetimeIndex(df.index, tz="UTC"), ["X"], _bars(df))


@pytest.mark.parametrize(
    ("part", "factor", "check", "severity"),
    [
        ("low", 1e-4, "extreme_move", "error"),  # a 0.01 print under a close of ~100
        ("high", 1e306, "extreme_move", "error"),  # wrong units / overflow
        ("high", 3.0, "bar_outlier", "warning"),  # a high 3x the close, 5 bars back
        ("low", 0.6, "bar_outlier", "warning"),
        ("open", 0.3, "bar_outlier", "warning"),  # a bad opening print, the bar closes where it should
    ],
)
def test_a_bad_tick_inside_a_bar_is_named_by_file_and_row(
    tmp_path: Path, part: str, factor: float, check: str, severity: str
) -> None:
    df = ohlcv(300, seed=4)
    t = 294
    df.iloc[t, df.columns.get_loc(part)] = df.iloc[t]["close"] * factor
    if part == "open":  # keep the bar consistent: its range contains the bad open
        df.iloc[t, df.columns.get_loc("low")] = df.iloc[t]["open"]
    write_csv(tmp_path, "TICK", df)
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("TICK")
    assert (f.severity, f.check, f.file, f.row) == (severity, check, "TICK.csv", t + 2)
    assert part in f.message
    assert ("TICK" in snap.panel) == (severity == "warning")
    assert not snap.quality.for_symbol("OK")


def test_a_bad_tick_on_the_as_of_bar_excludes_the_symbol_and_holds_its_settle(tmp_path: Path) -> None:
    df = ohlcv(300, seed=5)
    df.iloc[-1, df.columns.get_loc("low")] = df.iloc[-1]["close"] * 0.5
    write_csv(tmp_path, "LAST", df)
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("LAST")
    assert (f.severity, f.check, f.row) == ("error", "last_bar_outlier", 301)
    assert f.check in BAR_REJECTS
    assert snap.quality.rejected_bars() == {"LAST": df.index[-1].date().isoformat()}
    assert "LAST" not in snap.panel


def test_a_wild_wick_on_a_regime_inputs_last_bar_is_kept_flagged() -> None:
    """The VIX's as-of bar is the news, not a bad file (as for its close): a warning, kept."""
    df = ohlcv(300, seed=3, price=20)
    df.iloc[-1, df.columns.get_loc("high")] = df.iloc[-1]["close"] * 1.8
    got, rep = check_frame("VIX", df.tz_localize("UTC"), can_split=False)
    assert got is not None and [f.check for f in rep.findings] == ["bar_outlier"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    t=st.integers(30, 280),
    part=st.sampled_from(["high", "low", "open"]),
    log_factor=st.floats(0.2, 8.0),
)
def test_property_a_wick_is_found_on_its_row_and_only_there(
    seed: int, t: int, part: str, log_factor: float
) -> None:
    """Clean bars have no finding; one bar's open/high/low moved by e^x (x >= 0.2: >= 22%, beyond 10
    robust sd of a 1.5%-a-day series) is named on that row: an error beyond 5x, else a warning."""
    df = ohlcv(300, seed=seed)
    assert not _check(df).report.findings
    sign = 1.0 if part == "high" else -1.0
    body = (
        max(df.iloc[t]["open"], df.iloc[t]["close"])
        if part == "high"
        else min(df.iloc[t]["open"], df.iloc[t]["close"])
    )
    value = body * float(np.exp(sign * log_factor))
    if part == "open":  # an opening print below both the previous close and its own close
        value = min(body, df.iloc[t - 1]["close"]) * float(np.exp(-log_factor))
        df.iloc[t, df.columns.get_loc("low")] = value
    df.iloc[t, df.columns.get_loc(part)] = value
    res = _check(df)
    (f,) = res.report.findings
    e, _ = excursions(*(df[k].to_numpy(np.float64) for k in ("open", "high", "low", "close")))
    wild = e[t] > np.log(QualityConfig().extreme_ratio)
    assert f.date == df.index[t].date().isoformat()
    assert (f.check, f.severity, bool(res.keep[0])) == (
        ("extreme_move", "error", False) if wild else ("bar_outlier", "warning", True)
    )


def test_a_held_long_is_not_stopped_out_on_a_bad_low_print(project: Path) -> None:
    """End to end (`joe run --once --source csv:DIR` twice): run 1 opens positions; run 2's new bar has
    a 0.01 low on every held symbol (close unchanged). Before: every long was stopped out on it."""
    folder, frames, held = _scenario(project)
    after = {}
    for sym, df in frames.items():
        last = df.iloc[[-1]].copy()
        last.index = [df.index[-1] + pd.offsets.BDay(1)]
        if sym in held:
            last.iloc[0, 2] = 0.01  # low
            last.iloc[0, 1] = float(last.iloc[0, 3]) * 1000 if held[sym][0] < 0 else last.iloc[0, 1]  # high
        after[sym] = pd.concat([df, last])
    write_csvs(folder, after)
    second = _run(folder)
    assert second.closed == 0 and _book(project) == held  # no stop fired on the bad print
    for sym in held:
        held_lines = [w for w in second.warnings if w.startswith(f"HELD {sym}:")]
        assert held_lines and "extreme_move" in held_lines[0], second.warnings
    assert all(q != Decimal(0) for q, _, _ in _book(project).values())


def test_a_symbol_whose_every_bar_spans_a_wide_range_is_read_by_its_own_norm() -> None:
    """Every bar opens 10, spans 9-11 and closes 10.0-10.2 (quiet closes, wide ranges: an illiquid
    name): no wick is an outlier against the symbol's usual wick, so nothing is flagged, the last bar
    included - while one bar whose low is far beyond that usual range still is."""
    n = 120
    idx = pd.bdate_range("2022-01-03", periods=n)
    df = pd.DataFrame(
        {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0 + (np.arange(n) % 3) / 10, "volume": 1e6},
        index=idx,
    )
    assert [(f.check, f.severity) for f in _check(df).report.findings if "outlier" in f.check] == []
    df.iloc[60, df.columns.get_loc("low")] = 3.0  # 3.3x under the bar: far beyond its usual 10 %
    found = [(f.check, f.severity, f.row) for f in _check(df).report.findings if "outlier" in f.check]
    assert [(c, sev) for c, sev, _ in found] == [("bar_outlier", "warning")]
