"""Issue 14: data-quality findings and regime-input freshness in run.json, facts.json, md and html."""

from __future__ import annotations

import dataclasses
from datetime import date

import jsonschema

from joe.reporting.context import DataFindingFacts, DataQualityFacts, RegimeInputFacts, ReportContext
from joe.reporting.facts import context_from_facts, context_to_facts
from joe.reporting.html_page import render_html
from joe.reporting.markdown import render_markdown
from joe.reporting.runjson import build_run_json, load_json_schema

from .sample_context import make_context

FINDINGS = [
    DataFindingFacts(
        "JUMP",
        "error",
        "extreme_move",
        "close 10000 after 100 (×100 in one bar)",
        "JUMP.csv",
        301,
        "2023-03-01",
    ),
    DataFindingFacts(
        "SPLT",
        "warning",
        "split",
        "looks like a 4-for-1 split; earlier bars adjusted",
        "SPLT.csv",
        272,
        "2023-01-18",
    ),
    DataFindingFacts("BRK", "warning", "close_only", "close-only series", None, None, None),
]
INPUTS = [
    RegimeInputFacts("S&P 500", "SPX", date(2023, 3, 1), 0, False),
    RegimeInputFacts("VIX", "VIX", date(2023, 2, 10), 19, True),
]


def _ctx() -> ReportContext:
    return dataclasses.replace(
        make_context(), data_quality=DataQualityFacts(12, list(FINDINGS)), regime_inputs=list(INPUTS)
    )


def test_run_json_carries_findings_and_inputs_and_validates() -> None:
    doc = build_run_json(_ctx())
    jsonschema.validate(doc, load_json_schema())
    dq = doc["data_quality"]
    assert dq["checked"] == 12 and dq["excluded"] == ["JUMP"] and dq["flagged"] == ["BRK", "SPLT"]
    assert dq["findings"][0] == {
        "symbol": "JUMP",
        "severity": "error",
        "check": "extreme_move",
        "message": FINDINGS[0].message,
        "file": "JUMP.csv",
        "row": 301,
        "date": "2023-03-01",
    }
    vix = doc["regime"]["inputs"][1]
    assert vix == {
        "name": "VIX",
        "symbol": "VIX",
        "last_date": "2023-02-10",
        "age_days": 19,
        "stale": True,
        "proxy": False,
    }


def test_facts_round_trip_keeps_findings_and_inputs() -> None:
    ctx = _ctx()
    back = context_from_facts(context_to_facts(ctx))
    assert back.data_quality == ctx.data_quality and back.regime_inputs == ctx.regime_inputs


def test_html_and_markdown_show_file_row_and_freshness() -> None:
    ctx = _ctx()
    html = render_html(ctx)
    assert 'id="data-quality"' in html and 'id="regime-inputs"' in html
    assert "JUMP.csv" in html and ">301<" in html and "<b>STALE</b>" in html
    assert "1 excluded</b>" in html
    md = render_markdown(ctx)
    assert "## Data quality" in md and "| JUMP | error | extreme_move | JUMP.csv row 301 2023-03-01 |" in md
    assert "| VIX | VIX | 2023-02-10 | 19 days | STALE |" in md


def test_a_context_without_quality_facts_renders_as_before() -> None:
    ctx = make_context()
    assert 'id="data-quality"' not in render_html(ctx)
    assert "## Data quality" not in render_markdown(ctx)
    jsonschema.validate(build_run_json(ctx), load_json_schema())
