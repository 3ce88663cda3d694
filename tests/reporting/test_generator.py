"""ReportGenerator: every output written, self-contained HTML, escaping, facts round trip, find_report."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from joe.reporting.context import ReportContext
from joe.reporting.facts import context_from_facts, context_to_facts, load_facts
from joe.reporting.generator import ReportGenerator, find_report
from joe.reporting.html_page import render_html
from joe.reporting.summary import AISummary

from .sample_context import make_context, minimal_context

GEN_AT = datetime(2024, 6, 14, 20, 1, tzinfo=UTC)


def test_write_produces_every_file(tmp_path: Path, ctx: ReportContext) -> None:
    paths = ReportGenerator(tmp_path).write(ctx, generated_at=GEN_AT)
    assert paths.dir == tmp_path / ctx.run_id
    for p in (
        paths.markdown,
        paths.html,
        paths.json,
        paths.signals_csv,
        paths.positions_csv,
        paths.scores_csv,
        paths.ai_summary,
        paths.facts,
    ):
        assert p.exists() and p.stat().st_size > 0, p
    assert not list(paths.dir.glob("*.tmp"))
    with paths.signals_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["symbol"] for r in rows] == [sf.signal.symbol for sf in ctx.signals]
    assert rows[0]["entry"] == str(ctx.signals[0].signal.entry)
    assert [r["vetoed"] for r in rows].count("True") == sum(sf.vetoed for sf in ctx.signals)
    with paths.scores_csv.open() as f:
        scores = list(csv.DictReader(f))
    assert scores[0]["rank"] == "1" and scores[0]["symbol"] == ctx.top_scores[0].symbol
    assert "momentum" in scores[0]
    with paths.positions_csv.open() as f:
        assert [r["symbol"] for r in csv.DictReader(f)] == ["MSFT", "XOM"]
    summary = paths.ai_summary.read_text()
    assert "Rule-based summary (AI unavailable: AI analysis not run)" in summary
    run = json.loads(paths.json.read_text())
    assert run["schema"] == "joe.report/1"
    assert run["ai_summary"]["source"] == "rule-based"


def test_html_is_self_contained(tmp_path: Path, ctx: ReportContext) -> None:
    page = ReportGenerator(tmp_path).write(ctx).html.read_text()
    # Nothing is loaded from anywhere: no src/href pointing outside, no scheme-relative URLs, no CDN.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert "@import" not in page
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", page))  # only in-page refs
    assert page.count("<svg") == 1 + len(ctx.signals) + 1  # regime, one per signal, equity
    assert 'id="regime-chart"' in page and 'id="signals-table"' in page
    assert len(page.encode()) < 600_000


def test_html_escapes_all_text(ctx: ReportContext) -> None:
    hostile = replace(
        ctx,
        warnings=['<script>alert("x")</script> & <img src=x onerror=1>'],
        source_description="<b>bold</b>",
    )
    page = render_html(hostile, AISummary("<i>ai</i> says & <b>hi</b>", "gemini", "gemini-2.5-flash"))
    assert "<script>" not in page and "<img" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=1&gt;" in page
    assert "&lt;i&gt;ai&lt;/i&gt; says &amp; &lt;b&gt;hi&lt;/b&gt;" in page
    assert "AI-generated (Gemini gemini-2.5-flash)" in page
    # The name with markup from the sample universe and the reason's <2x> stay literal text.
    assert "Tesla &lt;Inc&gt; &amp; &quot;Co&quot;" in page
    assert "&lt;2x&gt;" in page


def test_minimal_context_renders(tmp_path: Path) -> None:
    paths = ReportGenerator(tmp_path).write(minimal_context())
    page = paths.html.read_text()
    assert "No signals this run." in page and "No open positions." in page
    assert "<svg" not in page
    md = paths.markdown.read_text()
    assert "No signals this run." in md
    assert load_facts(paths.facts) == minimal_context()


def test_markdown_escapes_table_cells(tmp_path: Path, ctx: ReportContext) -> None:
    sf = ctx.signals[0]
    odd = replace(ctx, signals=[replace(sf, signal=replace(sf.signal, reason="a | b\nc"))])
    md = ReportGenerator(tmp_path).write(odd).markdown.read_text()
    row = next(line for line in md.splitlines() if line.startswith(f"| {sf.signal.symbol} |"))
    assert row.count(" | ") == 10  # 11 cells, the pipe in the reason did not add one
    assert "Market regime: bull" in md and "AI unavailable" in md


def _assert_same_context(a: ReportContext, b: ReportContext) -> None:
    assert a == b  # every field except the frames (compare=False)
    for fa, fb in ((a.regime_history, b.regime_history), (a.equity_curve, b.equity_curve)):
        assert list(fa.columns) == list(fb.columns)
        assert fa.index.equals(fb.index)
        for col in fa.columns:
            assert list(fa[col]) == list(fb[col]), col
    for sa, sb in zip(a.signals, b.signals, strict=True):
        assert sa.price_history.index.equals(sb.price_history.index)
        assert (sa.price_history.to_numpy() == sb.price_history.to_numpy()).all()


def test_facts_round_trip(ctx: ReportContext) -> None:
    again = context_from_facts(json.loads(json.dumps(context_to_facts(ctx))))
    _assert_same_context(ctx, again)


def test_facts_reject_unknown_schema(ctx: ReportContext) -> None:
    facts = context_to_facts(ctx) | {"schema": "joe.facts/999"}
    with pytest.raises(ValueError, match="unsupported facts schema"):
        context_from_facts(facts)


def test_rerender_from_facts_keeps_ai_summary(tmp_path: Path, ctx: ReportContext) -> None:
    gen = ReportGenerator(tmp_path)
    ai = AISummary("Bull regime; two longs.\n\nWatch VIX.", "gemini", "gemini-2.5-flash")
    paths = gen.write(ctx, ai)
    paths.html.unlink()
    paths.markdown.unlink()
    again = gen.rerender(paths.dir)
    page = again.html.read_text()
    assert "AI-generated (Gemini gemini-2.5-flash)" in page and "Watch VIX." in page
    assert again.markdown.exists()
    assert json.loads(again.json.read_text())["ai_summary"]["source"] == "gemini"


def test_find_report(tmp_path: Path) -> None:
    gen = ReportGenerator(tmp_path)
    base = make_context(n_signals=1)
    older = replace(base, run_id="run-old")
    newer = replace(base, run_id="run-new", finished_at=base.finished_at + timedelta(days=1))
    gen.write(newer)
    gen.write(older)  # written last, but its run finished earlier
    assert find_report(tmp_path, "latest") == tmp_path / "run-new"
    assert find_report(tmp_path, "run-old") == tmp_path / "run-old"
    with pytest.raises(FileNotFoundError):
        find_report(tmp_path, "run-missing")
    with pytest.raises(FileNotFoundError):
        find_report(tmp_path / "nowhere", "latest")


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden", "x" * 200])
def test_unsafe_run_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="unsafe run id"):
        ReportGenerator(tmp_path).run_dir(bad)
