"""The shipped sample data matches its provenance record, and holds the real series it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from joe.data.sample import SAMPLE_DIR, load_sample

PROV = json.loads((SAMPLE_DIR / "provenance.json").read_text(encoding="utf-8"))
PERMISSIVE = {"NCSA", "BSD-3-Clause", "BSD 3-Clause", "MIT"}


def test_every_shipped_file_is_listed_and_every_listed_file_exists() -> None:
    shipped = {p.name for p in SAMPLE_DIR.iterdir() if p.name.endswith((".csv.gz", ".parquet"))}
    listed = {f["file"] for f in PROV["files"]}
    assert shipped == listed
    assert (SAMPLE_DIR / "PROVENANCE.md").is_file()


def test_dataset_is_compact() -> None:
    total = sum((SAMPLE_DIR / f["file"]).stat().st_size for f in PROV["files"])
    assert total < 3_000_000


@pytest.mark.parametrize("entry", PROV["files"], ids=lambda f: f["file"])
def test_file_rows_symbols_and_ranges_match_provenance(entry: dict) -> None:
    df = pd.read_csv(SAMPLE_DIR / entry["file"], parse_dates=["date"])
    assert len(df) == entry["rows"]
    assert entry["licence"] in PERMISSIVE and "AGPL" not in entry["licence"].upper()
    assert entry["version"] and entry["package"]
    for s in entry["series"]:
        if entry["layout"] == "long":
            sub = df.loc[df["symbol"] == s["symbol"], "date"]
        else:
            sub = df.loc[df[s["symbol"]].notna(), "date"]
        assert len(sub) == s["rows"], s["symbol"]
        assert sub.min().date().isoformat() == s["start"], s["symbol"]
        assert sub.max().date().isoformat() == s["end"], s["symbol"]
    if entry["layout"] == "long":
        assert set(df["symbol"]) == {s["symbol"] for s in entry["series"]}
    else:
        assert set(df.columns) - {"date"} == {s["symbol"] for s in entry["series"]}


def test_markdown_names_every_symbol_package_and_licence() -> None:
    md = (SAMPLE_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for entry in PROV["files"]:
        assert entry["file"] in md and entry["package"] in md and entry["licence"] in md
        for s in entry["series"]:
            assert f"| {s['symbol']} |" in md


def test_agpl_backtesting_data_is_not_copied() -> None:
    assert all(f["package"] != "backtesting" for f in PROV["files"])
    assert any("backtesting" in s["what"] and "AGPL" in s["why"] for s in PROV["skipped"])


def test_real_spx_and_vix_cover_2014_to_2018() -> None:
    data = load_sample()
    spx, vix = data.frames["SPX"], data.frames["VIX"]
    for f in (spx, vix):
        assert f.index.tz is not None and str(f.index.tz) == "UTC" and f.index.name == "ts"
        assert f.index.is_monotonic_increasing and f.index.is_unique
        assert list(f.columns) == ["open", "high", "low", "close", "volume"]
        assert all(str(t) == "float64" for t in f.dtypes)
        years = set(f.loc["2014":"2018"].index.year)
        assert years == {2014, 2015, 2016, 2017, 2018}
    # Known real values: the S&P 500 closed 2018 at 2506.85, the VIX at 25.42.
    assert spx["close"].iloc[-1] == pytest.approx(2506.85, abs=0.01)
    assert vix["close"].iloc[-1] == pytest.approx(25.42, abs=0.01)
    assert data.fields["SPX"] == "ohlcv" and data.fields["VIX"] == "close"
    assert (spx["volume"] > 0).all()


def test_real_series_have_valid_bars() -> None:
    data = load_sample()
    for sym, f in data.frames.items():
        assert (f["low"] > 0).all(), sym
        assert (f["high"] >= f[["open", "close"]].max(axis=1) - 1e-9).all(), sym
        assert (f["low"] <= f[["open", "close"]].min(axis=1) + 1e-9).all(), sym


def test_build_script_does_not_import_joe() -> None:
    src = (Path(__file__).resolve().parents[2] / "scripts" / "build_sample_data.py").read_text(
        encoding="utf-8"
    )
    assert "import joe" not in src and "from joe" not in src and "sys.path" not in src
