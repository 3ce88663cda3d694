"""The backtest report's SVG charts (`joe.backtest.charts`): well-formed, one point per value, a NaN
breaks the line, every month with a return has a labelled cell coloured on the ±max scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.backtest.charts import cell_colour, heat_map, line_chart

NS = "{http://www.w3.org/2000/svg}"


def _points(svg: str, tag: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg)
    return [
        [tuple(float(v) for v in p.split(",")) for p in el.attrib["points"].split()]  # type: ignore[misc]
        for el in root.iter(f"{NS}{tag}")
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=0, max_size=60))
def test_line_is_well_formed_and_breaks_at_gaps(values: list[float]) -> None:
    index = pd.date_range("2020-12-20", periods=len(values), freq="D")
    svg = line_chart("Equity <&>", index, values, "#123456")
    lines = _points(svg, "polyline")
    y = np.array(values, dtype=float)
    runs = np.diff(np.r_[0, np.isfinite(y).astype(int), 0])
    assert len(lines) == int((runs == 1).sum())  # one polyline per run of finite values
    assert sum(len(line) for line in lines) == int(np.isfinite(y).sum())
    for line in lines:
        for x, yy in line:
            assert 72 - 1e-6 <= x <= 900 - 16 + 1e-6 and 30 - 1e-6 <= yy <= 220 - 26 + 1e-6


def test_higher_values_are_drawn_higher_and_time_runs_right() -> None:
    index = pd.DatetimeIndex(["2021-01-04", "2021-01-05", "2021-01-11"])
    (line,) = _points(line_chart("Equity", index, [1.0, 3.0, 2.0], "#000"), "polyline")
    xs, ys = [p[0] for p in line], [p[1] for p in line]
    assert xs[0] < xs[1] < xs[2] and xs[2] - xs[1] > 5 * (xs[1] - xs[0])  # spaced by time
    assert ys[1] < ys[2] < ys[0]  # SVG y grows downwards


def test_drawdown_area_reaches_zero() -> None:
    index = pd.date_range("2021-01-01", periods=4, freq="D")
    (area,) = _points(line_chart("Drawdown", index, [0.0, -5.0, -2.0, 0.0], "#d00", fill=True), "polygon")
    assert area[0][1] == area[-1][1] == area[1][1]  # closed along the zero line (the first value is 0)


def test_heat_map_cells_and_scale() -> None:
    monthly = pd.DataFrame(
        [[1.0, -2.0] + [np.nan] * 10, [0.0] * 12], index=[2020, 2021], columns=range(1, 13)
    )
    svg = heat_map("Monthly returns (%)", monthly)
    root = ET.fromstring(svg)
    cells = list(root.iter(f"{NS}rect"))
    assert len(cells) == 14
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert {"1.0", "-2.0", "0.0", "2020", "2021", "Jan", "Dec"} <= set(texts)
    assert cells[1].attrib["fill"] == cell_colour(-2.0, 2.0) == "#d73027"  # the largest loss: full red
    assert cell_colour(2.0, 2.0) == "#1a9850" and cell_colour(0.0, 2.0) == "#ffffbf"


def test_empty_inputs_draw_a_frame() -> None:
    assert ET.fromstring(line_chart("Exposure", pd.DatetimeIndex([]), [], "#000")) is not None
    assert ET.fromstring(heat_map("Monthly", pd.DataFrame(columns=range(1, 13)))) is not None


def _axis_labels(svg: str) -> list[str]:
    """The texts under the plot (the time axis), left to right."""
    root = ET.fromstring(svg)
    height = float(root.attrib["height"])
    return [t.text or "" for t in root.iter(f"{NS}text") if float(t.attrib["y"]) == height - 8]


def test_a_backtest_inside_one_year_has_dates_under_its_chart() -> None:
    # 2017-01-03 .. 2017-12-29 crosses no year end: labelled by month, as matplotlib's date axis was.
    index = pd.bdate_range("2017-01-03", "2017-12-29")
    labels = _axis_labels(line_chart("Equity", index, np.linspace(1e5, 1.2e5, len(index)), "#000"))
    assert labels == [f"2017-{m:02d}" for m in range(2, 13)]
    # Across a year end (6 months), still months; the year alone would be one label.
    index = pd.bdate_range("2020-10-07", "2021-04-07")
    labels = _axis_labels(line_chart("Equity", index, np.ones(len(index)), "#000"))
    assert labels == ["2020-11", "2020-12", "2021-01", "2021-02", "2021-03", "2021-04"]
    # Two years: every other month at most 12 labels; several years: the years.
    index = pd.bdate_range("2020-01-02", "2021-12-31")
    assert len(_axis_labels(line_chart("Equity", index, np.ones(len(index)), "#000"))) <= 12
    index = pd.bdate_range("2015-01-02", "2018-12-31")
    assert _axis_labels(line_chart("Equity", index, np.ones(len(index)), "#000")) == ["2016", "2017", "2018"]
    index = pd.bdate_range("2021-03-01", "2021-03-05")
    assert _axis_labels(line_chart("Equity", index, np.ones(len(index)), "#000")) == ["2021-03-01"]


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(1e-9, 1e6))
def test_a_value_axis_has_at_least_two_ticks(lo: float, span: float) -> None:
    from joe.backtest.charts import _ticks

    span = max(span, abs(lo) * 1e-6)  # a chart's range, not a few ulps of its values
    ticks = _ticks(lo, lo + span)
    assert len(ticks) >= 2
    assert all(lo - 1e-6 * span <= v <= lo + span * (1 + 1e-6) for v in ticks)
    assert len(ticks) <= 6


def test_exposure_of_8_to_99_percent_gets_gridlines() -> None:
    from joe.backtest.charts import _ticks

    assert _ticks(7.8357, 98.6528) == [20, 40, 60, 80]  # was [50]: one line on a 0-100 % chart
