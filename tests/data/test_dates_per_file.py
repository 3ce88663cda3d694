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
from joe.data.dates import AmbiguousDates, DateFormats, WrongDateFormat

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
    # Round 3: a format the user gave for a file that does not read it refuses the run (exit 2) naming
    # the file and row - the file is not silently left out.
    with pytest.raises(WrongDateFormat, match=r"AMB\.csv: row 2: .*--date-format AMB\.csv=%Y\.%m\.%d"):
        FileSource(tmp_path, date_format="AMB.csv=%Y.%m.%d")
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


# -- round 3, kind 4: a wrong --date-format names the files it misreads, exit 2 ---------------------


@pytest.mark.parametrize("option", ["monthfirst", "%m/%d/%Y", "AMB=monthfirst", "AMB.csv=%m/%d/%Y"])
def test_a_format_that_scrambles_the_rows_is_refused_naming_every_file_it_misreads(
    tmp_path: Path, option: str
) -> None:
    """Day-first files (no day above 12) read month-first parse, but land out of order; read day-first
    every row is in order: the option misreads them. Both files are named, with row and the fix."""
    _iso_folder(tmp_path)
    _ambiguous(tmp_path)
    _ambiguous(tmp_path, "AMC")
    if "AMB" in option:
        option += "\nAMC=dayfirst"
    with pytest.raises(WrongDateFormat) as err:
        FileSource(tmp_path, date_format=option)
    text = str(err.value)
    assert "AMB.csv: --date-format" in text and "misreads this file: row" in text
    assert "--date-format AMB.csv=dayfirst" in text
    assert ("AMC.csv" in text) == ("AMB" not in option)


def test_a_shuffled_ambiguous_file_is_read_as_the_option_says(tmp_path: Path) -> None:
    """Out of order every way (rows shuffled): order says nothing, the option decides."""
    _iso_folder(tmp_path)
    df = ohlcv(len(_days_up_to_12(60)), seed=5)
    df.index = _days_up_to_12(60)
    shuffled = df.sample(frac=1.0, random_state=3)
    write_csv(tmp_path, "AMB", shuffled, [d.strftime("%d/%m/%Y") for d in shuffled.index])
    src = FileSource(tmp_path, date_format="dayfirst")
    assert list(src.history_now("AMB").index.date) == list(df.index.date)


def test_a_wrong_date_format_exits_2_naming_the_file_not_1_blaming_others(
    project: Path, tmp_path: Path
) -> None:
    """The reviewer's dates.sh: --date-format monthfirst for a day-first file was a RuntimeError, exit 1."""
    folder = tmp_path / "prices"
    folder.mkdir()
    _iso_folder(folder)
    _ambiguous(folder)
    result = CliRunner().invoke(
        app, ["run", "--once", "--source", f"csv:{folder}", "--date-format", "monthfirst"]
    )
    assert result.exit_code == 2, result.output
    assert "AMB.csv: --date-format monthfirst misreads this file" in result.output
    assert "S0.csv" not in result.output and "Traceback" not in result.output
    assert not list((project / "data").rglob("run.json"))  # nothing ran on half the data


@pytest.mark.parametrize("as_text", [False, True])
def test_numeric_yyyymmdd_dates_are_dates_not_epoch_seconds(tmp_path: Path, as_text: bool) -> None:
    _iso_folder(tmp_path)
    df = ohlcv(N, seed=4)
    days = [d.strftime("%Y%m%d") for d in df.index]
    write_csv(tmp_path, "NUM", df, days if as_text else [int(d) for d in days])  # type: ignore[misc]
    src = FileSource(tmp_path)
    assert not src.findings and list(src.history_now("NUM").index.date) == list(df.index.date)


@pytest.mark.parametrize("unit", ["s", "ms"])
def test_epoch_numbers_are_still_instants(tmp_path: Path, unit: str) -> None:
    df = ohlcv(N, seed=4)
    scale = 1 if unit == "s" else 1000
    stamps = [int(d.timestamp()) * scale for d in df.index]
    write_csv(tmp_path, "EPO", df, stamps)  # type: ignore[arg-type]
    src = FileSource(tmp_path)
    assert list(src.history_now("EPO").index.date) == list(df.index.date)
