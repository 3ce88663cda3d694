"""Report numbers read as numbers (issue 15.1): no `-0.0000` / `0E-8`, no `nan` / `2.51e+03` in the
evidence line, the regime chart names the index it really plots, the equity chart breaks at gaps."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from joe.core.models import Direction
from joe.reporting.charts import break_gaps, regime_chart
from joe.reporting.context import PositionFacts, RegimeFacts
from joe.reporting.facts import plain_decimal
from joe.reporting.generator import ReportGenerator
from joe.reporting.markdown import evidence_value
from reporting.sample_context import make_context


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_plain_decimal_has_no_exponent_and_no_negative_zero(value: D) -> None:
    text = plain_decimal(value)
    assert "E" not in text and "e" not in text
    assert not text.startswith("-") or D(text) < 0  # never a negative zero
    assert D(text) == value


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_evidence_values_are_plain(value: float) -> None:
    text = evidence_value(value)
    assert "e" not in text and "nan" not in text and text != "-0"


def test_report_files_show_zero_and_tiny_values_plainly(tmp_path: Path) -> None:
    base = make_context()
    positions = [
        PositionFacts("UNH", Direction.SHORT, D(-1665), D("4.6861"), D("4.6861"), D("-0.0000")),
        PositionFacts("HD", Direction.LONG, D(335), D("29.8420"), D("29.8420"), D("0E-8")),
    ]
    regime = RegimeFacts("bear", 0.7, False, {"vix": float("nan"), "close": 2506.8501, "slope": 0.00123})
    ctx = dataclasses.replace(base, positions=positions, regime=regime)
    paths = ReportGenerator(tmp_path).write(ctx)
    for f in (paths.markdown, paths.positions_csv, paths.html, paths.json, paths.facts):
        text = f.read_text()
        assert "0E-8" not in text and "-0.0000" not in text, f.name
    md = paths.markdown.read_text()
    assert "vix" not in md.split("## Signals")[0].split("Evidence")[-1]  # nan evidence is left out
    assert "2,506.85" in md and "2.51e+03" not in md
    html = paths.html.read_text()
    assert "nan" not in html.split('id="regime"')[1].split("</p>")[0]


def test_regime_chart_names_the_index_it_plots() -> None:
    idx = pd.bdate_range("2020-01-01", periods=30)
    hist = pd.DataFrame(
        {"spx_close": np.linspace(100, 110, 30), "vix_close": np.nan, "label": "bull"}, index=idx
    )
    svg = regime_chart(hist, index_name="equal-weight index of the universe")
    assert "equal-weight" in svg and "S&amp;P 500" not in svg and "S&P 500" not in svg


def test_equity_chart_does_not_join_points_across_a_gap() -> None:
    ts = pd.to_datetime(["1999-10-20", "1999-10-21", "2018-02-09", "2018-02-12"], utc=True)
    curve = pd.DataFrame({"ts": ts, "equity": [1.0, 2.0, 3.0, 4.0], "cash": [1.0, 1.0, 1.0, 1.0]})
    out = break_gaps(curve)
    assert len(out) == 5 and out["equity"].isna().sum() == 1
    gap_row = out.index[out["equity"].isna()][0]
    assert out.loc[gap_row - 1, "ts"].year == 1999 and out.loc[gap_row + 1, "ts"].year == 2018
    assert break_gaps(curve.iloc[:2]).equals(curve.iloc[:2].reset_index(drop=True).assign(ts=ts[:2]))
