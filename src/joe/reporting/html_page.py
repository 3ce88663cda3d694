"""The self-contained HTML report: inline CSS, inline SVG charts, no external URL of any kind.

Every piece of text from the run goes through `html.escape`; chart markup comes from
matplotlib (`charts.py`) and is stripped of its XML namespaces and RDF metadata so the page
references nothing outside itself. The favicon is a `data:` URL so the browser fetches nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

from joe.reporting import charts
from joe.reporting.context import ReportContext, SignalFacts
from joe.reporting.data_quality import html_regime_inputs, html_section
from joe.reporting.facts import plain_decimal
from joe.reporting.markdown import evidence_value
from joe.reporting.runjson import reward_risk
from joe.reporting.summary import AISummary

_CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--good:#2e7d32;--bad:#c62828}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}header{background:#102a43;color:#fff;padding:16px 24px}
header h1{margin:0 0 4px;font-size:20px}header .meta{color:#bcccdc;font-size:13px}
main{max-width:1100px;margin:0 auto;padding:16px}section{background:var(--card);border:1px solid var(--line);
border-radius:8px;padding:14px 18px;margin:14px 0}h2{font-size:16px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.badge{display:inline-block;padding:1px 8px;
border-radius:10px;font-size:12px;font-weight:600;background:#d9e2ec;color:#102a43}
.badge.live{background:#c62828;color:#fff}.badge.paper{background:#2e7d32;color:#fff}
.badge.shadow{background:#ef6c00;color:#fff}.badge.vetoed{background:#fde0e0;color:#8a1c1c}
.grade-A{color:#2e7d32;font-weight:700}.grade-B{color:#558b2f;font-weight:700}
.grade-C{color:#ef6c00;font-weight:700}.grade-D,.grade-F{color:#c62828;font-weight:700}
.pos{color:var(--good)}.neg{color:var(--bad)}figure{margin:8px 0}figure svg{max-width:100%;height:auto}
#regime-chart svg,#equity-chart svg{width:100%}
.signals{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:10px}
.signal{border:1px solid var(--line);border-radius:6px;padding:8px}.signal p{margin:4px 0;font-size:12px}
.ai-label{font-size:12px;color:var(--muted);font-style:italic}.ai-text{white-space:pre-wrap}
.warn{background:#fff8e1;border-color:#ffe082}.empty{color:var(--muted);font-style:italic}
footer{color:var(--muted);font-size:12px;text-align:center;padding:12px}
"""

_NS_ATTR = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)


def inline_svg(svg: str) -> str:
    """Make matplotlib SVG markup safe to inline: no namespace URLs, no RDF metadata."""
    return _NS_ATTR.sub("", _METADATA.sub("", svg))


def _e(value: object) -> str:
    if isinstance(value, Decimal):
        value = plain_decimal(value)
    return escape("" if value is None else str(value))


def _num(value: float | Decimal | None, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN: no reading (e.g. unknown volume)
        return "n/a"
    return f"{float(value):,.{digits}f}"


def _signed(value: float | Decimal | None) -> str:
    if value is None:
        return ""
    cls = "pos" if value > 0 else "neg" if value < 0 else ""
    return f'<span class="{cls}">{_num(value)}</span>'


def _table(
    table_id: str, headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int], empty: str
) -> str:
    """An HTML table; cells in `rows` are already-escaped HTML."""
    rows = list(rows)
    if not rows:
        return f'<p class="empty" id="{table_id}-empty">{_e(empty)}</p>'
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _ts(value: datetime | None) -> str:
    return "" if value is None else _e(value.strftime("%Y-%m-%d %H:%M:%S %Z").strip())


def _header(ctx: ReportContext) -> str:
    mode = ctx.mode.lower()
    badge_cls = mode if mode in {"paper", "live", "shadow"} else ""
    return (
        f"<header><h1>Joe report · {_e(ctx.as_of.isoformat())} "
        f'<span class="badge {badge_cls}" id="mode-badge">'
        f'{_e(ctx.mode.upper())}</span></h1><div class="meta">run {_e(ctx.run_id)} · broker {_e(ctx.broker)}'
        f" · data {_e(ctx.source)}</div></header>"
    )


def _metadata(ctx: ReportContext) -> str:
    rows = [
        ("Run id", _e(ctx.run_id)),
        ("Mode", _e(ctx.mode)),
        ("Broker", _e(ctx.broker)),
        ("Data source", f"{_e(ctx.source)} — {_e(ctx.source_description)}"),
        ("As of", _e(ctx.as_of.isoformat())),
        ("Started", _ts(ctx.started_at)),
        ("Finished", _ts(ctx.finished_at)),
        ("Duration", f"{ctx.duration_s:.2f} s"),
    ]
    for src, syms in ctx.price_source_groups():  # which broker each price came from (failover)
        rows.append((f"Prices from {src}", _e(", ".join(syms))))
    timings = ", ".join(f"{_e(k)} {v:.2f} s" for k, v in ctx.stage_timings.items())
    if timings:
        rows.append(("Stage timings", timings))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<section id="run-metadata"><h2>Run</h2><table>{body}</table></section>'


def _ai(ai: AISummary | None) -> str:
    if ai is None:
        return ""
    return (
        f'<section id="ai-summary"><h2>Summary</h2><p class="ai-label">{_e(ai.label)}</p>'
        f'<div class="ai-text">{_e(ai.text.strip())}</div></section>'
    )


def _regime(ctx: ReportContext) -> str:
    r = ctx.regime
    stressed = ' <span class="badge vetoed">stressed</span>' if r.stressed else ""
    evidence = ", ".join(f"{_e(k)} {evidence_value(v)}" for k, v in r.evidence.items() if math.isfinite(v))
    svg = charts.regime_chart(ctx.regime_history, index_name=ctx.index_name)
    chart = (
        f'<figure id="regime-chart">{inline_svg(svg)}</figure>'
        if svg
        else '<p class="empty" id="regime-chart-empty">No index history for a chart.</p>'
    )
    return (
        f'<section id="regime"><h2>Market regime: <span id="regime-label" style="color:'
        f'{charts.regime_colour(r.label)}">{_e(r.label)}</span>{stressed}</h2>'
        f"<p>Confidence {r.confidence:.0%}{'; evidence: ' + evidence if evidence else ''}</p>"
        f"{html_regime_inputs(ctx)}{chart}</section>"
    )


def _scores(ctx: ReportContext) -> str:
    comp_names = sorted({k for s in ctx.top_scores for k in s.components})
    headers = ["#", "Symbol", "Name", "Score", *comp_names, "Scans"]
    numeric = {0, 3, *range(4, 4 + len(comp_names))}
    rows = [
        [
            str(i),
            _e(s.symbol),
            _e(s.name),
            _num(s.total, 1),
            *[_num(s.components.get(c), 1) for c in comp_names],
            _e(", ".join(s.scans)),
        ]
        for i, s in enumerate(ctx.top_scores, start=1)
    ]
    return (
        '<section id="scores"><h2>Top scored instruments</h2>'
        + _table("scores-table", headers, rows, numeric, "No instrument was scored.")
        + "</section>"
    )


def _grade(grade: str) -> str:
    return f'<span class="grade-{_e(grade[:1].upper())}">{_e(grade)}</span>'


def _signal_row(sf: SignalFacts) -> list[str]:
    s = sf.signal
    qty = sf.quantity if sf.quantity is not None else s.quantity
    status = (
        f'<span class="badge vetoed">vetoed</span> {_e(sf.veto_reason or "")}'
        if sf.vetoed
        else '<span class="badge">accepted</span>' + (f" {_e(sf.execution)}" if sf.execution else "")
    )
    rr = reward_risk(sf)
    return [
        _e(s.symbol),
        _e(s.direction.value),
        _e(s.strategy),
        _e(s.entry),
        _e(s.stop_loss),
        _e(s.take_profit),
        "" if rr is None else f"{rr:.2f}",
        _grade(sf.risk_grade),
        f"{s.confidence:.0%}",
        _e(qty),
        status,
    ]


def _dim(value: float) -> str:
    """A risk dimension's score; one the data cannot give (no volume → no liquidity) reads n/a."""
    return f"{value:.2f}" if math.isfinite(value) else "n/a"


def _signal_card(sf: SignalFacts, n: int) -> str:
    s = sf.signal
    svg = charts.signal_chart(sf, salt=f"signal-{n}")
    chart = f'<figure class="signal-chart">{inline_svg(svg)}</figure>' if svg else ""
    dims = ", ".join(f"{_e(k)} {_dim(v)}" for k, v in sorted(sf.risk_dimensions.items()))
    return (
        f'<div class="signal" id="signal-{n}">{chart}<p><b>{_e(s.symbol)}</b> {_e(s.direction.value)} · '
        f"grade {_grade(sf.risk_grade)}{' · <b>vetoed</b>: ' + _e(sf.veto_reason) if sf.vetoed else ''}</p>"
        f"<p>{_e(s.reason)}</p>{f'<p>Risk: {dims}</p>' if dims else ''}</div>"
    )


def _signals(ctx: ReportContext) -> str:
    headers = [
        "Symbol",
        "Dir",
        "Strategy",
        "Entry",
        "Stop",
        "Target",
        "R:R",
        "Grade",
        "Conf.",
        "Qty",
        "Status",
    ]
    table = _table(
        "signals-table",
        headers,
        (_signal_row(sf) for sf in ctx.signals),
        {3, 4, 5, 6, 8, 9},
        "No signals this run.",
    )
    cards = "".join(_signal_card(sf, i) for i, sf in enumerate(ctx.signals, start=1))
    return f'<section id="signals"><h2>Signals</h2>{table}<div class="signals">{cards}</div></section>'


def _positions(ctx: ReportContext) -> str:
    headers = [
        "Symbol",
        "Dir",
        "Qty",
        "Avg price",
        "Market",
        "Unrealized P&L",
        "Stop",
        "Target",
        "Opened",
        "Marked",
    ]
    rows = [
        [
            _e(p.symbol),
            _e(p.direction.value),
            _e(p.quantity),
            _e(p.avg_price),
            _e(p.market_price),
            _signed(p.unrealized_pnl),
            _e(p.stop_loss),
            _e(p.take_profit),
            _ts(p.opened_at),
            _ts(p.marked_at),
        ]
        for p in ctx.positions
    ]
    fills = [
        [
            _ts(f.ts),
            _e(f.symbol),
            _e(f.side.value),
            _e(f.quantity),
            _e(f.price),
            _e(f.commission),
            _e(f.client_order_id),
        ]
        for f in ctx.fills
    ]
    title = "Live positions" if ctx.mode.lower() == "live" else f"{ctx.mode.capitalize()} positions"
    return (
        f'<section id="positions"><h2>{_e(title)}</h2>'
        + _table("positions-table", headers, rows, {2, 3, 4, 5, 6, 7}, "No open positions.")
        + '<h2 style="margin-top:12px">Fills</h2>'
        + _table(
            "fills-table",
            ["Time", "Symbol", "Side", "Qty", "Price", "Commission", "Order"],
            fills,
            {3, 4, 5},
            "No fills this run.",
        )
        + "</section>"
    )


def _equity(ctx: ReportContext) -> str:
    acct = " · ".join(
        f"{_e(k.replace('_', ' '))} {_signed(v) if 'pnl' in k else _num(v)}" for k, v in ctx.account.items()
    )
    svg = charts.equity_chart(ctx.equity_curve)
    chart = (
        f'<figure id="equity-chart">{inline_svg(svg)}</figure>'
        if svg
        else '<p class="empty">No equity history yet.</p>'
    )
    return f'<section id="equity"><h2>Account and equity</h2><p>{acct}</p>{chart}</section>'


def render_html(ctx: ReportContext, ai: AISummary | None = None, generated_at: datetime | None = None) -> str:
    """The complete HTML document for a run."""
    warnings = ""
    if ctx.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in ctx.warnings)
        warnings = f'<section id="warnings" class="warn"><h2>Warnings</h2><ul>{items}</ul></section>'
    footer = f"Generated {_ts(generated_at)} by Joe" if generated_at else "Generated by Joe"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>Joe report {_e(ctx.run_id)}</title><style>{_CSS}</style></head><body>"
        + _header(ctx)
        + "<main>"
        + warnings
        + _ai(ai)
        + _regime(ctx)
        + _signals(ctx)
        + _scores(ctx)
        + _positions(ctx)
        + html_section(ctx)
        + _equity(ctx)
        + _metadata(ctx)
        + f"</main><footer>{footer}</footer></body></html>"
    )
