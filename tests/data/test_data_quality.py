"""Issue 14, point 1: the data-quality stage, each example of the issue as a test, generalised to its kind."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.data import DataError, FileSource, open_source
from joe.data.dates import AmbiguousDates
from joe.data.quality import check_bars, check_frame
from joe.runtime.market import load_snapshot

DAYS = pd.bdate_range("2022-01-03", periods=420)


def ohlcv(n: int = 420, seed: int = 0, start: str = "2022-01-03", price: float = 100.0) -> pd.DataFrame:
    """A realistic daily OHLCV frame (business days) indexed by date."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, n)))
    vol = rng.integers(800_000, 1_200_000, n).astype(float)
    idx = pd.bdate_range(start, periods=n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol}, index=idx)


def write_csv(
    folder: Path, symbol: str, df: pd.DataFrame, dates: list[str] | None = None, ext: str = "csv"
) -> Path:
    out = df.copy()
    out.insert(0, "date", dates if dates is not None else [d.strftime("%Y-%m-%d") for d in df.index])
    path = folder / f"{symbol}.{ext}"
    out.to_csv(path, index=False)
    return path


def snapshot(folder: Path, **kw: object):  # type: ignore[no-untyped-def]
    src = open_source(f"csv:{folder}", **kw)  # type: ignore[arg-type]
    return asyncio.run(load_snapshot(src, "all", 500, 2000))


# -- time zones ------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+02:00", "-05:00", "+09:00", "Z", "+05:30"])
def test_daily_bars_with_a_utc_offset_keep_their_session_date(tmp_path: Path, offset: str) -> None:
    """The issue's case: three files dated 2023-08-10 and one dated 2023-08-10 00:00:00+02:00."""
    for k, sym in enumerate(("AAA", "BBB", "CCC")):
        write_csv(tmp_path, sym, ohlcv(seed=k))
    off = ohlcv(seed=9)
    write_csv(tmp_path, "OFF", off, [d.strftime("%Y-%m-%d 00:00:00") + offset for d in off.index])
    snap = snapshot(tmp_path)
    p = snap.panel
    assert p.n_dates == 420  # not 840 rows for 420 days
    assert np.isfinite(p.close).all()  # no symbol blank on alternate rows
    assert (p.dates == pd.DatetimeIndex(DAYS, tz="UTC")).all()
    assert p.close[:, p.col("OFF")] == pytest.approx(off["close"].to_numpy())


def test_intraday_bars_keep_their_instant_in_utc(tmp_path: Path) -> None:
    idx = pd.date_range("2024-03-01 09:30", periods=30, freq="5min")
    df = ohlcv(30).set_axis(idx)
    write_csv(tmp_path, "IX", df, [d.strftime("%Y-%m-%dT%H:%M:%S-05:00") for d in idx])
    f = FileSource(tmp_path).history_now("IX", "5m")
    assert f.index[0] == pd.Timestamp("2024-03-01 14:30", tz="UTC")


# -- ambiguous dates -------------------------------------------------------------------------------


def _jan_feb(n: int = 40) -> pd.DatetimeIndex:
    return pd.bdate_range("2022-01-03", periods=n)


@pytest.mark.parametrize(
    ("fmt", "sep"), [("%d/%m/%Y", "/"), ("%m/%d/%Y", "/"), ("%d.%m.%Y", "."), ("%d-%m-%y", "-")]
)
def test_day_first_or_month_first_is_detected_per_file(tmp_path: Path, fmt: str, sep: str) -> None:
    """`03/01/2022` must be 3 January when the file also has `13/01/2022`: 40 rows stay in Jan–Feb."""
    df = ohlcv(40).set_axis(_jan_feb())
    write_csv(tmp_path, "DMY", df, [d.strftime(fmt) for d in df.index])
    write_csv(tmp_path, "ISO", ohlcv(40, seed=3).set_axis(_jan_feb()))
    src = FileSource(tmp_path)
    got = src.history_now("DMY")
    assert len(got) == 40
    assert (got.index == pd.DatetimeIndex(_jan_feb(), tz="UTC")).all()
    assert got.index.max() < pd.Timestamp("2022-03-01", tz="UTC")


def test_undecidable_dates_are_refused_naming_the_file_and_the_option(tmp_path: Path) -> None:
    # First business day of each month, Jan..Dec: every field <= 12, both readings are plausible series.
    days = pd.DatetimeIndex([pd.Timestamp(2022, m, 1) for m in range(1, 13)])
    df = ohlcv(12).set_axis(days)
    write_csv(tmp_path, "AMBIG", df, [d.strftime("%m/%d/%Y") for d in days])
    with pytest.raises(AmbiguousDates) as err:
        FileSource(tmp_path)
    assert "AMBIG.csv" in str(err.value) and "--date-format" in str(err.value)
    assert isinstance(err.value, DataError)
    # read day-first the rows are Jan 1..12, daily: Jan 1-2 (a weekend) are left out as `non_session`
    for opt, first in (("monthfirst", "2022-01-01"), ("%m/%d/%Y", "2022-01-01"), ("dayfirst", "2022-01-03")):
        src = FileSource(tmp_path, date_format=opt)
        assert src.history_now("AMBIG").index[0] == pd.Timestamp(first, tz="UTC")


def test_dates_mixing_both_readings_are_refused(tmp_path: Path) -> None:
    write_csv(tmp_path, "MIX", ohlcv(3), ["13/01/2022", "01/14/2022", "01/02/2022"])
    with pytest.raises(
        AmbiguousDates, match=r"MIX\.csv: dates mix day-first \(row 2\) and month-first \(row 3\)"
    ):
        FileSource(tmp_path)


# -- splits, extreme moves, non-finite values, outliers --------------------------------------------


@pytest.mark.parametrize(("num", "den"), [(4, 1), (2, 1), (3, 1), (10, 1), (1, 5), (1, 10), (5, 2)])
def test_split_like_jump_with_inverse_volume_is_adjusted_with_a_warning(
    tmp_path: Path, num: int, den: int
) -> None:
    """A 4-for-1 split 30 bars before the as-of date (prices ÷ 4, volume × 4) is a split, not a crash."""
    truth = ohlcv(300, seed=5)
    ratio = num / den
    split = truth.copy()
    at = len(split) - 30
    for c in ("open", "high", "low", "close"):
        split.iloc[at:, split.columns.get_loc(c)] /= ratio
    split.iloc[at:, split.columns.get_loc("volume")] *= ratio
    write_csv(tmp_path, "SPLT", split)
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    (f,) = [f for f in snap.quality.findings if f.symbol == "SPLT"]
    assert (f.severity, f.check, f.file, f.row) == ("warning", "split", "SPLT.csv", at + 2)
    assert f"{num}-for-{den}" in f.message
    # Earlier bars are adjusted: the series is the split-adjusted truth, continuous through the split.
    got = snap.panel.close[:, snap.panel.col("SPLT")]
    assert got == pytest.approx(truth["close"].to_numpy() / ratio, rel=1e-9)
    assert "SPLT" in snap.panel


def test_split_like_jump_without_inverse_volume_excludes_the_symbol(tmp_path: Path) -> None:
    df = ohlcv(300, seed=5)
    df.iloc[-30:, :4] /= 4  # prices ÷ 4 but volume unchanged: split or crash, Joe cannot tell
    write_csv(tmp_path, "CRSH", df)
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    assert "CRSH" not in snap.panel and snap.quality.excluded == ["CRSH"]
    (f,) = snap.quality.for_symbol("CRSH")
    assert (f.severity, f.check, f.file, f.row) == ("error", "unconfirmed_split", "CRSH.csv", 300 - 30 + 2)
    assert any("excluded: CRSH" in w for w in snap.warnings)


@pytest.mark.parametrize(("where", "factor"), [(-1, 100.0), (-1, 0.01), (-50, 7.0), (-1, 0.13)])
def test_extreme_move_is_excluded_naming_file_and_row(tmp_path: Path, where: int, factor: float) -> None:
    """A last close 100x the previous one is not momentum 100: the symbol is excluded, file and row named."""
    df = ohlcv(300, seed=2)
    i = len(df) + where
    df.iloc[i, :4] *= factor
    write_csv(tmp_path, "JUMP", df)
    write_csv(tmp_path, "OK", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    assert "JUMP" not in snap.panel
    f = snap.quality.for_symbol("JUMP")[0]
    assert (f.severity, f.check, f.file, f.row) == ("error", "extreme_move", "JUMP.csv", i + 2)


@pytest.mark.parametrize("bad", ["inf", "-inf", "Infinity", "1e999"])
@pytest.mark.parametrize("column", ["close", "high", "volume"])
def test_non_finite_values_are_rejected_with_file_and_row(tmp_path: Path, bad: str, column: str) -> None:
    df = ohlcv(60, seed=1)
    out = df.astype(object)
    out.iloc[41, out.columns.get_loc(column)] = bad
    write_csv(tmp_path, "INF", out)
    write_csv(tmp_path, "OK", ohlcv(60, seed=6))
    src = FileSource(tmp_path)
    assert [i.symbol for i in src.universe_now("all")] == ["OK"]  # never "widened" to inf
    (f,) = src.findings
    assert (f.symbol, f.severity, f.file) == ("INF", "error", "INF.csv")
    assert "row 43" in f.message and "not a finite number" in f.message


def test_non_finite_values_from_any_source_are_errors() -> None:
    df = ohlcv(60).tz_localize("UTC")
    df.iloc[10, 3] = np.inf
    got, rep = check_frame("BRK", df)
    assert got is None and rep.excluded == ["BRK"] and rep.findings[0].check == "non_finite"
    assert rep.findings[0].date == df.index[10].date().isoformat()


def test_robust_outlier_is_flagged_with_file_and_row(tmp_path: Path) -> None:
    df = ohlcv(300, seed=3)
    df.iloc[200:, :4] *= 1.55  # +55%, ~30 MADs for a 1.5%-a-day stock; no split ratio (3:2, 5:3 ~5% away)
    write_csv(tmp_path, "SPIK", df)
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("SPIK")
    assert (f.severity, f.check, f.file, f.row) == ("warning", "outlier", "SPIK.csv", 202)
    assert "SPIK" in snap.panel  # flagged, kept


def test_open_close_outside_range_is_a_warning_with_rows_not_a_count(tmp_path: Path) -> None:
    df = ohlcv(50)
    df.iloc[[7, 9], 3] = df.iloc[[7, 9], 1] * 1.001  # close a hair above the high
    write_csv(tmp_path, "WID", df)
    (f,) = FileSource(tmp_path).findings
    assert f.check == "ohlc" and f.row == 9 and "rows 9, 11" in f.message


# -- stale, close-only, unknown volume -------------------------------------------------------------


def test_a_series_that_stops_updating_is_flagged_stale(tmp_path: Path) -> None:
    write_csv(tmp_path, "LIVE", ohlcv(300))
    write_csv(tmp_path, "GONE", ohlcv(294, seed=4))  # stops 6 sessions before the as-of date
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("GONE")
    assert (f.severity, f.check, f.file) == ("error", "stale", "GONE.csv")  # excluded, named
    assert "stale 6 sessions" in f.message and "GONE" not in snap.panel


def test_close_only_and_unknown_volume_are_flagged(tmp_path: Path) -> None:
    df = ohlcv(100)
    write_csv(tmp_path, "CLO", df[["close"]])
    write_csv(tmp_path, "FULL", df)
    snap = snapshot(tmp_path)
    checks = {(f.symbol, f.check) for f in snap.quality.findings}
    assert checks == {("CLO", "close_only"), ("CLO", "volume_unknown")}


# -- upper-case extensions -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MSFT.CSV", "MSFT.Csv", "MSFT.CSV.GZ"])
def test_upper_case_extensions_are_accepted(tmp_path: Path, name: str) -> None:
    df = ohlcv(30).reset_index(names="date")
    df.to_csv(tmp_path / name, index=False)
    assert [i.symbol for i in FileSource(tmp_path).universe_now("all")] == ["MSFT"]


def test_upper_case_parquet_extension_is_accepted(tmp_path: Path) -> None:
    ohlcv(30).to_parquet(tmp_path / "MSFT.PARQUET")
    src = open_source(f"parquet:{tmp_path}")
    assert [i.symbol for i in asyncio.run(src.universe("all"))] == ["MSFT"]


# -- property: the same data gives the same panel --------------------------------------------------


def _panel_of(folder: Path, kind: str) -> pd.DataFrame:
    return open_source(f"{kind}:{folder}").panel("close", None)  # type: ignore[attr-defined,no-any-return]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 80),
    offset_minutes=st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15),
    shuffle=st.booleans(),
)
def test_shuffling_offsets_and_format_give_the_same_panel(
    tmp_path_factory: pytest.TempPathFactory, seed: int, n: int, offset_minutes: int, shuffle: bool
) -> None:
    base = tmp_path_factory.mktemp("base")
    for k in range(3):
        write_csv(base, f"S{k}", ohlcv(n, seed=seed + k))
    want = _panel_of(base, "csv")

    sign = "-" if offset_minutes < 0 else "+"
    off = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    rng = np.random.default_rng(seed)
    alt, pq = tmp_path_factory.mktemp("alt"), tmp_path_factory.mktemp("pq")
    for k in range(3):
        df = ohlcv(n, seed=seed + k)
        stamps = [d.strftime("%Y-%m-%d 00:00:00") + off for d in df.index]
        order = rng.permutation(n) if shuffle else np.arange(n)
        write_csv(alt, f"S{k}", df.iloc[order], [stamps[i] for i in order])
        zone = timezone(timedelta(minutes=offset_minutes))
        tz = df.iloc[order].copy()
        tz.index = pd.DatetimeIndex(tz.index).tz_localize(zone)  # local midnight at that offset
        tz.rename_axis("date").to_parquet(pq / f"S{k}.parquet")
    pd.testing.assert_frame_equal(_panel_of(alt, "csv"), want, check_freq=False)
    pd.testing.assert_frame_equal(_panel_of(pq, "parquet"), want, check_freq=False)


def test_check_bars_does_not_modify_its_input() -> None:
    df = ohlcv(100)
    df.iloc[50:, :4] /= 2
    df.iloc[50:, 4] *= 2
    arrays = {c: df[c].to_numpy()[:, None].copy() for c in df.columns}
    before = {c: a.copy() for c, a in arrays.items()}
    res = check_bars(pd.DatetimeIndex(df.index, tz="UTC"), ["X"], arrays)
    assert res.report.findings[0].check == "split"
    for c in arrays:
        np.testing.assert_array_equal(arrays[c], before[c])
    assert math.isclose(res.fields["close"][49, 0] * 2, df["close"].iloc[49], rel_tol=1e-12)


def test_regime_inputs_say_how_old_they_are_and_a_stale_one_is_announced(tmp_path: Path) -> None:
    write_csv(tmp_path, "AAA", ohlcv(300))
    write_csv(tmp_path, "SPX", ohlcv(300, seed=7, price=3000))
    write_csv(tmp_path, "VIX", ohlcv(290, seed=8, price=15)[["close"]])  # stops 10 sessions early
    snap = snapshot(tmp_path)
    spx, vix = snap.regime_inputs
    assert (spx.symbol, spx.age_days, spx.stale) == ("SPX", 0, False)
    assert (vix.symbol, vix.age_days, vix.stale) == ("VIX", 14, True)
    assert any(w.startswith("regime input VIX (VIX) is stale: last bar") for w in snap.warnings)
