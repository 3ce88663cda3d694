"""Issue 14, reviewer round 2, point 3: --date-format decides only what a file's data cannot.

It used to apply to every file of the folder: ISO files were rejected, and an ambiguous file among ISO
ones ended in an unrelated ValueError about regime history. Separators other than ',' are named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_data_quality import ohlcv, snapshot, write_csv
from typer.testing import CliRunner

from joe.cli.main import app
from joe.data import DataError, FileSource
from joe.data.dates import AmbiguousDates, DateFormats

N = 300


def _iso_folder(folder: Path) -> None:
    write_csv(folder, "SPX", ohlcv(N, seed=7, price=3000))
    for i in range(3):
        write_csv(folder, f"S{i}", ohlcv(N, seed=10 + i))


def _days_up_to_12(n: int) -> pd.DatetimeIndex:
    """n business days whose day of month is <= 12: slashed dates no value of which decides."""
    days = [d for d in pd.bdate_range("2021-01-01", periods=4 * n) if d.day <= 12]
    return pd.DatetimeIndex(days[-n:])


def _ambiguous(folder: Path, symbol: str = "AMB", fmt: str = "%d/%m/%Y") -> pd.DataFrame:
    df = ohlcv(len(_days_up_to_12(60)), seed=5)
    df.index = _days_up_to_12(60)
    write_csv(folder, symbol, df, [d.strftime(fmt) for d in df.index])
    return df


@pytest.mark.parametrize("option", ["%d/%m/%Y", "dayfirst", "AMB.csv=%d/%m/%Y", "amb=dayfirst"])
def test_date_format_reads_the_ambiguous_file_and_leaves_iso_files_iso(tmp_path: Path, option: str) -> None:
    _iso_folder(tmp_path)
    truth = _ambiguous(tmp_path)
    src = FileSource(tmp_path, date_format=option)
    assert not src.findings, [f.line() for f in src.findings]  # the ISO files are read, not rejected
    assert list(src.history_now("AMB").index.date) == list(truth.index.date)
    assert len(src.history_now("SPX")) == N


def test_a_keyword_does_not_override_what_the_data_decides(tmp_path: Path) -> None:
    _iso_folder(tmp_path)
    df = ohlcv(N, seed=3)
    write_csv(tmp_path, "US", df, [d.strftime("%m/%d/%Y") for d in df.index])  # month-first, data decides
    _ambiguous(tmp_path)
    src = FileSource(tmp_path, date_format="dayfirst")
    assert not src.findings and list(src.history_now("US").index.date) == list(df.index.date)


def test_an_ambiguous_file_among_iso_ones_is_refused_naming_that_file(project: Path, tmp_path: Path) -> None:
    """The reviewer's case end to end: no ValueError about regime history, the file and the option."""
    folder = tmp_path / "prices"
    folder.mkdir()
    _iso_folder(folder)
    _ambiguous(folder)
    result = CliRunner().invoke(app, ["run", "--once", "--source", f"csv:{folder}"])
    assert result.exit_code == 2, result.output
    assert "AMB.csv: dates like" in result.output and "--date-format AMB.csv=dayfirst" in result.output
    assert "regime" not in result.output.lower() and "Traceback" not in result.output
    ok = CliRunner().invoke(
        app, ["run", "--once", "--source", f"csv:{folder}", "--date-format", "AMB.csv=dayfirst"]
    )
    assert ok.exit_code == 0, ok.output
    (run_json,) = (project / "data").rglob("run.json")
    assert json.loads(run_json.read_text())["run"]["as_of"].startswith(str(ohlcv(N).index[-1].date()))


def test_a_per_file_format_must_fit_its_file_and_name_a_file(tmp_path: Path) -> None:
    _iso_folder(tmp_path)
    _ambiguous(tmp_path)
    src = FileSource(tmp_path, date_format="AMB.csv=%Y.%m.%d")
    (f,) = src.findings
    assert f.symbol == "AMB" and "row 2" in f.message and "--date-format AMB.csv=%Y.%m.%d" in f.message
    with pytest.raises(DataError, match=r"--date-format names amx\.csv, which is no file"):
        FileSource(tmp_path, date_format="AMX.csv=dayfirst")
    with pytest.raises(AmbiguousDates, match=r"AMB\.csv: dates like .* --date-format AMB\.csv=dayfirst"):
        FileSource(tmp_path, date_format="%Y%m%d")  # a default that fits no file decides nothing


def test_date_formats_option_parsing() -> None:
    f = DateFormats.parse("dayfirst\nAAPL.csv=%m/%d/%Y\nmsft=monthfirst")
    assert f.for_file("AAPL.csv", "AAPL") == ("%m/%d/%Y", True)
    assert f.for_file("MSFT.CSV", "MSFT") == ("monthfirst", True)
    assert f.for_file("X.csv", "X") == ("dayfirst", False)
    with pytest.raises(DataError, match="given twice"):
        DateFormats.parse("dayfirst\nmonthfirst")


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon ';'"), ("\t", "tab"), ("|", "pipe '|'")])
@pytest.mark.parametrize("decimal", [".", ","])
def test_other_separators_are_read_and_named(tmp_path: Path, sep: str, name: str, decimal: str) -> None:
    df = ohlcv(N, seed=2).round(4)
    out = df.copy()
    out.insert(0, "date", [d.strftime("%Y-%m-%d") for d in df.index])
    out.to_csv(tmp_path / "EU.csv", sep=sep, decimal=decimal, index=False)
    write_csv(tmp_path, "OK", ohlcv(N, seed=3))
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("EU")
    assert (f.severity, f.check, f.file) == ("warning", "separator", "EU.csv") and name in f.message
    assert ("decimal commas" in f.message) == (decimal == ",")
    got = snap.panel.close[:, snap.panel.col("EU")]
    assert got == pytest.approx(df["close"].to_numpy())
